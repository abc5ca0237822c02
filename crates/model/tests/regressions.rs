//! Inputs the fuzzers found that once panicked: each must now give
//! diagnostics, never a panic.

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/regressions");

#[test]
fn fuzz_findings_no_longer_panic() {
    let mut n = 0;
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let def = weft_model::check((&name, &bytes), None);
        let _ = weft_model::render_text(&def.diagnostics, &def.sources, false);
        let (_, diags) = weft_model::ServiceConfiguration::parse(&name, &bytes);
        assert!(!diags.is_empty(), "{name}: a broken file must say why");
        n += 1;
    }
    assert!(n >= 1);
}
