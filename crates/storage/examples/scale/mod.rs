//! What the `*_scale` examples share: p50/p99 of each operation's
//! samples, and the table comparing them near empty and at scale.

use std::time::Duration;

/// One operation's name, p50 and p99.
pub type Row = (String, Duration, Duration);

/// p50 and p99 of each operation's samples.
pub fn summarise<const N: usize>(samples: [(&str, Vec<Duration>); N]) -> Vec<Row> {
    samples
        .into_iter()
        .map(|(name, mut d)| {
            d.sort();
            (name.to_string(), d[d.len() / 2], d[d.len() * 99 / 100])
        })
        .collect()
}

/// The markdown table: each operation near empty and at `at` (`1000000
/// rows`), with the p50 ratio.
pub fn print_table(at: &str, empty: &[Row], full: &[Row]) {
    println!("| operation | p50 empty | p99 empty | p50 at {at} | p99 at {at} | p50 ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for ((name, e50, e99), (_, f50, f99)) in empty.iter().zip(full) {
        println!(
            "| {name} | {e50:.1?} | {e99:.1?} | {f50:.1?} | {f99:.1?} | {:.2}x |",
            f50.as_secs_f64() / e50.as_secs_f64()
        );
    }
}
