//! BAT parsing with an entry count taken from the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let entries = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    if let Ok(bat) = weft_vhd::parse_bat(&data[4..], entries) {
        assert_eq!(bat.len() as u64, u64::from(entries));
        let bytes = weft_vhd::bat_to_bytes(&bat);
        assert_eq!(weft_vhd::parse_bat(&bytes, entries).unwrap(), bat);
    }
});
