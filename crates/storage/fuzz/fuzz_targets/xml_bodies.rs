//! Any bytes as a Put Block List, Set Container ACL or Put Message body: parsing never
//! panics, and whatever parses as signed identifiers survives a write and
//! re-parse unchanged.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = weft_storage::xml::parse_block_list(data);
    let _ = weft_storage::queue::parse_message(data);
    if let Ok(ids) = weft_storage::xml::parse_signed_identifiers(data) {
        let written = weft_storage::xml::write_signed_identifiers(&ids);
        let again = weft_storage::xml::parse_signed_identifiers(written.as_bytes())
            .expect("written signed identifiers parse");
        assert_eq!(again, ids);
    }
});
