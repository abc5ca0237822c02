//! Any text as a `$filter`: parsing never panics, evaluation never panics,
//! and the key range the store scans always contains every entity the
//! filter matches (so pushing the range into SQL never loses a result).
#![no_main]
use weft_storage::table::edm::Value;
use weft_storage::table::filter::{Filter, KeyRange};

fn within(r: &KeyRange, k: &str) -> bool {
    let lower = r.lower.as_ref().is_none_or(|(v, inc)| if *inc { k >= v.as_str() } else { k > v.as_str() });
    let upper = r.upper.as_ref().is_none_or(|(v, inc)| if *inc { k <= v.as_str() } else { k < v.as_str() });
    lower && upper
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(f) = Filter::parse(text) else { return };
    let bounds = f.key_bounds();
    for (pk, rk) in [("", ""), ("a", "b"), ("p1", "r1"), ("m", "m"), ("z", "a")] {
        let get = |n: &str| -> Option<Value> {
            Some(match n {
                "PartitionKey" => Value::String(pk.into()),
                "RowKey" => Value::String(rk.into()),
                "Age" => Value::Int32(30),
                "Big" => Value::Int64(1 << 40),
                "Price" => Value::Double(9.5),
                "Active" => Value::Bool(true),
                "Born" => Value::DateTime(0),
                "Id" => Value::Guid(uuid::Uuid::nil()),
                "Blob" => Value::Binary(vec![1, 2]),
                _ => return None,
            })
        };
        if f.matches(&get) {
            assert!(within(&bounds.partition, pk), "{text:?} matches pk {pk:?} outside {:?}", bounds.partition);
            assert!(within(&bounds.row, rk), "{text:?} matches rk {rk:?} outside {:?}", bounds.row);
        }
    }
});
