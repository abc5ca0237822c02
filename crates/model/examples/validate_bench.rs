//! Validation time per fixture file: run by `bench/validate.sh`.
//!
//! For every file under shared/fixtures/service-models, times the full
//! pipeline (decode, parse, typed model, validation against the other file
//! of its folder) and, side by side, a bare quick-xml event scan of the same
//! bytes (the floor any XML-based validator pays), and prints the ratio.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn mean(iters: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

fn scan(bytes: &[u8]) -> usize {
    let text = weft_model::SourceFile::decode("f", bytes)
        .map(|s| s.text().to_owned())
        .unwrap_or_default();
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut n = 0;
    while let Ok(ev) = reader.read_event() {
        if matches!(ev, quick_xml::events::Event::Eof) {
            break;
        }
        n += 1;
    }
    n
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/service-models")
        });
    let iters: u32 = std::env::var("ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    println!("| file | bytes | weft validate (µs) | quick-xml scan only (µs) | ratio |");
    println!("|---|---:|---:|---:|---:|");
    let (mut total_v, mut total_s) = (Duration::ZERO, Duration::ZERO);
    for dir in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let def = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "csdef"))
            .cloned();
        let def_bytes = def
            .as_ref()
            .map(|d| std::fs::read(d).unwrap())
            .unwrap_or_default();
        let cfg = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "cscfg"))
            .cloned();
        let cfg_bytes = cfg
            .as_ref()
            .map(|c| std::fs::read(c).unwrap())
            .unwrap_or_default();
        for f in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "csdef" || e == "cscfg"))
        {
            let bytes = std::fs::read(f).unwrap();
            let is_def = f.extension().is_some_and(|e| e == "csdef");
            let v = mean(iters, || {
                let r = if is_def {
                    weft_model::check(("d", &bytes), Some(("c", &cfg_bytes)))
                } else {
                    // The configuration is validated against its definition.
                    let (d, _) = weft_model::ServiceDefinition::parse("d", &def_bytes);
                    let (c, mut diags) = weft_model::ServiceConfiguration::parse("c", &bytes);
                    if let (Some(d), Some(c)) = (d, c) {
                        diags.extend(weft_model::validate(&d, &c));
                    }
                    weft_model::CheckReport {
                        definition: None,
                        configuration: None,
                        diagnostics: diags,
                        sources: Default::default(),
                    }
                };
                std::hint::black_box(r.diagnostics.len());
            });
            let s = mean(iters, || {
                std::hint::black_box(scan(&bytes));
            });
            total_v += v;
            total_s += s;
            let name = format!(
                "{}/{}",
                dir.file_name().unwrap().to_string_lossy(),
                f.file_name().unwrap().to_string_lossy()
            );
            println!(
                "| {name} | {} | {:.1} | {:.1} | {:.1}x |",
                bytes.len(),
                v.as_secs_f64() * 1e6,
                s.as_secs_f64() * 1e6,
                v.as_secs_f64() / s.as_secs_f64()
            );
        }
    }
    println!(
        "| **total** | | {:.1} | {:.1} | {:.1}x |",
        total_v.as_secs_f64() * 1e6,
        total_s.as_secs_f64() * 1e6,
        total_v.as_secs_f64() / total_s.as_secs_f64()
    );
    println!(
        "\n{iters} iterations per file (mean); csdef rows include validating against the folder's first cscfg, cscfg rows include parsing and validating against the folder's csdef."
    );
}
