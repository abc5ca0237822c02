//! Queue latency at scale: Put Message (durable, with its fsync), Get
//! Messages + Delete Message of the oldest visible message (one operation)
//! and Peek Messages, on an empty queue and again on one holding N messages
//! (1,000,000 by default), straight against the store; 500 samples each.
//!
//! cargo run --release -p weft-storage --example queue_scale [-- MESSAGES]

mod scale;

use std::time::Instant;

use weft_storage::store::Store;

/// p50 and p99 of each operation, 500 samples each.
fn measure(s: &Store, label: &str) -> Vec<scale::Row> {
    let mut put = Vec::new();
    let mut take = Vec::new();
    let mut peek = Vec::new();
    for i in 0..500 {
        let t = Instant::now();
        s.put_message("a", "q", &format!("{label} message {i}"), 0, None)
            .expect("put");
        put.push(t.elapsed());
        let t = Instant::now();
        let got = s.get_messages("a", "q", 1, Some(30)).expect("get");
        let m = got.first().expect("a visible message");
        s.delete_message("a", "q", &m.id, &m.pop_receipt)
            .expect("delete");
        take.push(t.elapsed());
        let t = Instant::now();
        let seen = s.get_messages("a", "q", 1, None).expect("peek");
        assert_eq!(seen.len(), 1, "the queue is not empty");
        peek.push(t.elapsed());
    }
    scale::summarise([
        ("put message", put),
        ("get + delete message", take),
        ("peek message", peek),
    ])
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("MESSAGES is a number"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Store::open(dir.path()).expect("open store");
    s.create_queue("a", "q", &[]).expect("create queue");
    // Keeps one message in the queue so a peek always finds one.
    s.put_message("a", "q", "first", 0, None).expect("seed");
    let empty = measure(&s, "empty");
    let t = Instant::now();
    const CHUNK: usize = 10_000;
    for chunk in 0..count.div_ceil(CHUNK) {
        let n = (count - chunk * CHUNK).min(CHUNK);
        // Queued at once, they share group commits.
        let pending: Vec<_> = (0..n)
            .map(|i| {
                s.put_message_async(
                    "a",
                    "q",
                    &format!("message {} of the deep queue", chunk * CHUNK + i),
                    0,
                    None,
                )
            })
            .collect();
        for p in pending {
            p.wait().expect("load");
        }
    }
    let load = t.elapsed();
    let (_, stored) = s.queue_properties("a", "q").expect("properties");
    let full = measure(&s, "full");
    println!("loaded {count} messages in {load:.1?} ({stored} in the queue)\n");
    scale::print_table(&format!("{count} messages"), &empty, &full);
}
