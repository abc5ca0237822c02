//! Every real service model under `shared/fixtures/service-models/` parses
//! without panic, and the diagnostics for each (definition, configuration)
//! pair in a folder are pinned as rendered text.

use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/service-models"
);

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(FIXTURES);
    assert!(
        root.is_dir(),
        "fixtures not found at {FIXTURES}: clone the repo beside shared/"
    );
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    f.sort();
    f
}

fn name(dir: &Path, file: &Path) -> String {
    format!(
        "{}/{}",
        dir.file_name().unwrap().to_string_lossy(),
        file.file_name().unwrap().to_string_lossy()
    )
}

#[test]
fn every_fixture_file_parses() {
    let mut count = 0;
    for dir in fixture_dirs() {
        for f in files(&dir, "csdef") {
            let bytes = std::fs::read(&f).unwrap();
            let (def, diags) = weft_model::ServiceDefinition::parse(&name(&dir, &f), &bytes);
            assert!(def.is_some(), "{}: {diags:#?}", f.display());
            assert!(
                !diags.iter().any(|d| d.is_error()),
                "{}: {diags:#?}",
                f.display()
            );
            count += 1;
        }
        for f in files(&dir, "cscfg") {
            let bytes = std::fs::read(&f).unwrap();
            let (cfg, diags) = weft_model::ServiceConfiguration::parse(&name(&dir, &f), &bytes);
            assert!(cfg.is_some(), "{}: {diags:#?}", f.display());
            assert!(
                !diags.iter().any(|d| d.is_error()),
                "{}: {diags:#?}",
                f.display()
            );
            count += 1;
        }
    }
    assert!(count >= 50, "only {count} fixture files found");
}

#[test]
fn fixture_diagnostics() {
    for dir in fixture_dirs() {
        let mut out = String::new();
        for def in files(&dir, "csdef") {
            let def_bytes = std::fs::read(&def).unwrap();
            for cfg in files(&dir, "cscfg") {
                let cfg_bytes = std::fs::read(&cfg).unwrap();
                let (dn, cn) = (name(&dir, &def), name(&dir, &cfg));
                let report = weft_model::check((&dn, &def_bytes), Some((&cn, &cfg_bytes)));
                // Real files written for Azure validate without errors; what
                // weft cannot run is a warning (policy in DIAGNOSTICS.md).
                assert!(
                    !report.diagnostics.iter().any(|d| d.is_error()),
                    "{dn} + {cn}: {:#?}",
                    report.diagnostics
                );
                out.push_str(&format!(
                    "=== {dn} + {cn}: {}\n",
                    weft_model::summary(&report.diagnostics)
                ));
                out.push_str(&weft_model::render_text(
                    &report.diagnostics,
                    &report.sources,
                    false,
                ));
            }
        }
        let snap = dir.file_name().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({ snapshot_path => "snapshots/fixtures", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(snap, out);
        });
    }
}
