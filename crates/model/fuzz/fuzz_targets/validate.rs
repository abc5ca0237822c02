//! A csdef and a cscfg (split at the first NUL byte): cross-file validation
//! must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (def, cfg) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let report = weft_model::check(("d.csdef", def), Some(("c.cscfg", cfg)));
    let _ = weft_model::render_json(&report.diagnostics);
});
