//! Validation time per fixture file: run by `bench/validate.sh`.
//!
//! For every file under shared/fixtures/service-models it times, as a mean
//! over many iterations:
//! - `weft`: the whole pipeline for that file alone — decode, XML, typed
//!   model, every rule that needs only that file, diagnostics;
//! - `scan`: the same bytes decoded and tokenized by a bare quick-xml event
//!   loop, the floor any XML-based validator pays (the peer, side by side).
//!
//! And for every folder, `weft validate csdef cscfg` (both files and the
//! cross-file rules) against scanning both files.

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
    let Ok(src) = weft_model::SourceFile::decode("f", bytes) else {
        return 0;
    };
    let mut reader = quick_xml::Reader::from_str(src.text());
    let mut n = 0;
    while let Ok(ev) = reader.read_event() {
        if matches!(ev, quick_xml::events::Event::Eof) {
            break;
        }
        n += 1;
    }
    n
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
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
    let ext = |p: &Path, e: &str| p.extension().is_some_and(|x| x == e);
    println!("Per file (that file alone):\n");
    println!("| file | bytes | weft parse+validate (µs) | quick-xml scan (µs) | weft / scan |");
    println!("|---|---:|---:|---:|---:|");
    let (mut tw, mut ts) = (Duration::ZERO, Duration::ZERO);
    let mut pairs = Vec::new();
    for dir in &dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for f in files.iter().filter(|p| ext(p, "csdef") || ext(p, "cscfg")) {
            let bytes = std::fs::read(f).unwrap();
            let w = if ext(f, "csdef") {
                mean(iters, || {
                    std::hint::black_box(weft_model::check(("d", &bytes), None).diagnostics.len());
                })
            } else {
                mean(iters, || {
                    std::hint::black_box(
                        weft_model::ServiceConfiguration::parse("c", &bytes).1.len(),
                    );
                })
            };
            let s = mean(iters, || {
                std::hint::black_box(scan(&bytes));
            });
            tw += w;
            ts += s;
            let name = format!(
                "{}/{}",
                dir.file_name().unwrap().to_string_lossy(),
                f.file_name().unwrap().to_string_lossy()
            );
            println!(
                "| {name} | {} | {:.1} | {:.1} | {:.1}x |",
                bytes.len(),
                us(w),
                us(s),
                us(w) / us(s)
            );
        }
        let def = files.iter().find(|p| ext(p, "csdef"));
        let cfg = files.iter().find(|p| ext(p, "cscfg"));
        if let (Some(d), Some(c)) = (def, cfg) {
            pairs.push((
                dir.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(d).unwrap(),
                std::fs::read(c).unwrap(),
            ));
        }
    }
    println!(
        "| **all files** | | {:.1} | {:.1} | {:.1}x |",
        us(tw),
        us(ts),
        us(tw) / us(ts)
    );
    println!("\nPer folder (`weft validate csdef cscfg`: both files and the cross-file rules):\n");
    println!("| folder | weft validate pair (µs) | quick-xml scan of both (µs) | weft / scan |");
    println!("|---|---:|---:|---:|");
    for (name, d, c) in &pairs {
        let w = mean(iters, || {
            std::hint::black_box(
                weft_model::check(("d", d), Some(("c", c)))
                    .diagnostics
                    .len(),
            );
        });
        let s = mean(iters, || {
            std::hint::black_box(scan(d) + scan(c));
        });
        println!(
            "| {name} | {:.1} | {:.1} | {:.1}x |",
            us(w),
            us(s),
            us(w) / us(s)
        );
    }
    println!("\n{iters} iterations per row (mean), release build.");
}
