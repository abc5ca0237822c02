//! Footer parsing: never panics; what parses re-encodes to the same footer.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = weft_vhd::Footer::parse(data) {
        let again = weft_vhd::Footer::parse(&f.to_bytes()).expect("re-encoded footer parses");
        assert_eq!(again, f);
    }
});
