//! Dynamic header parsing: never panics; what parses re-encodes to the same header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = weft_vhd::DynamicHeader::parse(data) {
        let _ = h.bitmap_size();
        for l in &h.locators {
            let _ = l.reserved_bytes();
        }
        if let Ok(bytes) = h.to_bytes() {
            let again = weft_vhd::DynamicHeader::parse(&bytes).expect("re-encoded header parses");
            assert_eq!(again.block_size, h.block_size);
            assert_eq!(again.max_table_entries, h.max_table_entries);
        }
    }
});
