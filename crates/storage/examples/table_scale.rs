//! Table latency at scale: point query, single insert (durable, with its
//! fsync) and a one-partition query (100 of a 200-row partition), on a
//! near-empty table and again after loading N rows (1,000,000 by
//! default), straight against the store; 500 samples each.
//!
//! cargo run --release -p weft-storage --example table_scale [-- ROWS]

mod scale;

use std::time::Instant;

use weft_storage::store::{EntityQuery, EntityWrite, Store};
use weft_storage::table::edm::Value;
use weft_storage::table::filter::Filter;

fn entity(pk: String, rk: String, v: i32) -> EntityWrite {
    EntityWrite::Insert {
        partition_key: pk,
        row_key: rk,
        props: vec![
            ("V".into(), Value::Int32(v)),
            ("Name".into(), Value::String(format!("entity number {v}"))),
        ],
    }
}

/// p50 and p99 of each operation, 500 samples each.
fn measure(s: &Store, label: &str, seq: &mut u64) -> Vec<scale::Row> {
    let mut get = Vec::new();
    let mut put = Vec::new();
    let mut scan = Vec::new();
    let f = Filter::parse("PartitionKey eq 'hot' and V ge 0").expect("filter parses");
    for i in 0..500 {
        *seq += 1;
        let t = Instant::now();
        s.write_entity("a", "t", entity("w".into(), format!("{label}-{seq:08}"), i))
            .expect("insert");
        put.push(t.elapsed());
        let t = Instant::now();
        s.get_entity("a", "t", "w", &format!("{label}-{seq:08}"))
            .expect("point query");
        get.push(t.elapsed());
        let t = Instant::now();
        let q = EntityQuery {
            filter: Some(&f),
            top: 100,
            resume: None,
        };
        s.query_entities("a", "t", &q).expect("partition query");
        scan.push(t.elapsed());
    }
    scale::summarise([
        ("insert", put),
        ("point query", get),
        ("partition query (100)", scan),
    ])
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ROWS is a number"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let s = Store::open(dir.path()).expect("open store");
    s.create_table("a", "t").expect("create table");
    // The queried partition holds 200 rows in both measurements.
    let hot = (0..200)
        .map(|i| entity("hot".into(), format!("{i:03}"), i))
        .collect();
    s.write_batch("a", "t", hot).expect("seed");
    let mut seq = 0;
    let empty = measure(&s, "empty", &mut seq);
    let t = Instant::now();
    for chunk in 0..rows.div_ceil(10_000) {
        let n = (rows - chunk * 10_000).min(10_000);
        let batch = (0..n)
            .map(|i| {
                let k = chunk * 10_000 + i;
                entity(format!("p{:05}", k % 10_007), format!("{k:09}"), k as i32)
            })
            .collect();
        s.write_batch("a", "t", batch).expect("load");
    }
    let load = t.elapsed();
    let full = measure(&s, "full", &mut seq);
    println!("loaded {rows} rows in {load:.1?}\n");
    scale::print_table(&format!("{rows} rows"), &empty, &full);
}
