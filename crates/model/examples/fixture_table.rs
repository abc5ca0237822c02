//! Prints the fixture table for the closing note: for every file
//! under shared/fixtures/service-models, its diagnostics by code.
//! Each csdef is validated against each cscfg of its folder; a file's row
//! counts the diagnostics pointing into that file (for a csdef, from its
//! check against the folder's first cscfg).
//!
//! `cargo run -p weft-model --example fixture_table [FIXTURE_DIR]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/service-models")
        });
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let ext = |p: &Path, e: &str| p.extension().is_some_and(|x| x == e);
    println!("| file | errors | warnings | diagnostics by code |");
    println!("|---|---:|---:|---|");
    let mut totals: BTreeMap<&'static str, usize> = BTreeMap::new();
    for dir in dirs {
        let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let defs: Vec<&PathBuf> = files.iter().filter(|p| ext(p, "csdef")).collect();
        let cfgs: Vec<&PathBuf> = files.iter().filter(|p| ext(p, "cscfg")).collect();
        let name = |p: &Path| format!("{folder}/{}", p.file_name().unwrap().to_string_lossy());
        let mut per_file: BTreeMap<String, Vec<weft_model::Diagnostic>> = BTreeMap::new();
        for d in &defs {
            let db = std::fs::read(d).unwrap();
            for (i, c) in cfgs.iter().enumerate() {
                let cb = std::fs::read(c).unwrap();
                let report = weft_model::check((&name(d), &db), Some((&name(c), &cb)));
                for diag in report.diagnostics {
                    if diag.file == name(c) || i == 0 {
                        per_file.entry(diag.file.clone()).or_default().push(diag);
                    }
                }
            }
        }
        for f in defs.iter().chain(cfgs.iter()) {
            let diags = per_file.remove(&name(f)).unwrap_or_default();
            let (e, w) = weft_model::count(&diags);
            let mut by: BTreeMap<&'static str, usize> = BTreeMap::new();
            for d in &diags {
                *by.entry(d.code.as_str()).or_default() += 1;
                *totals.entry(d.code.as_str()).or_default() += 1;
            }
            let codes: Vec<String> = by.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            let codes = if codes.is_empty() {
                "—".to_owned()
            } else {
                codes.join(", ")
            };
            println!("| {} | {e} | {w} | {codes} |", name(f));
        }
    }
    let all: Vec<String> = totals.iter().map(|(c, n)| format!("{c}×{n}")).collect();
    println!("| **all files** | | | {} |", all.join(", "));
}
