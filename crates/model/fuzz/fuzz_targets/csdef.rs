//! Any bytes as a csdef: parse and validate must never panic, and every
//! diagnostic must render.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let report = weft_model::check(("ServiceDefinition.csdef", data), None);
    let _ = weft_model::render_text(&report.diagnostics, &report.sources, false);
});
