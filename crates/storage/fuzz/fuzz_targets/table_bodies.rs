//! Any bytes as a table request's entity body, `$batch` body, resource
//! path, continuation token or query string (`$top`, `$select`,
//! `$filter`, `NextTableName`, `NextPartitionKey`): the parsers never
//! panic, an entity that parses stays within Azure's limits, and `$top`
//! stays within 1..=1000.
#![no_main]
use weft_storage::request::Query;
use weft_storage::table::{batch, edm, keys, params, stored};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(e) = edm::parse_entity(data) {
        assert!(e.props.len() + 3 <= edm::MAX_PROPERTIES);
        let bytes = stored::encode(&e.props);
        let back = stored::decode(&bytes).expect("stored properties decode");
        assert_eq!(back.len(), e.props.len());
    }
    let _ = batch::parse("multipart/mixed; boundary=batch_1", data);
    if let Ok(ops) = batch::parse("multipart/mixed; boundary=b", data) {
        assert!(ops.len() <= batch::MAX_OPERATIONS);
    }
    let text = String::from_utf8_lossy(data);
    let _ = keys::parse_resource(&text);
    if let Some(k) = keys::decode_token(&text) {
        assert_eq!(keys::decode_token(&keys::encode_token(&k)), Some(k));
    }
    let q = Query::parse(Some(&text));
    if let Ok(top) = params::top(&q) {
        assert!((1..=params::MAX_TOP).contains(&top));
    }
    if let Some(names) = params::select(&q) {
        assert!(names.iter().all(|n| !n.is_empty()));
    }
    let _ = params::filter(&q);
    for name in ["NextTableName", "NextPartitionKey", "NextRowKey"] {
        if let Ok(Some(k)) = params::token(&q, name) {
            assert_eq!(keys::decode_token(&keys::encode_token(&k)), Some(k));
        }
    }
});
