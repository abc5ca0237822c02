//! Any bytes as a cscfg: parsing must never panic, and every diagnostic
//! must render.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (_, diags) = weft_model::ServiceConfiguration::parse("ServiceConfiguration.cscfg", data);
    let mut sources = weft_model::Sources::default();
    if let Ok(src) = weft_model::SourceFile::decode("ServiceConfiguration.cscfg", data) {
        sources.add(src);
    }
    let _ = weft_model::render_text(&diags, &sources, false);
});
