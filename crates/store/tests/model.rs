//! SqliteStore against a plain in-memory model: any sequence of
//! transactions gives the same values, revisions and CAS outcomes, and a
//! watch from revision 1 replays exactly the changes that were made.

use std::collections::BTreeMap;

use proptest::prelude::*;
use weft_store::{Compare, EventKind, Op, SqliteStore, StateStore};

#[derive(Debug, Clone)]
enum Step {
    Txn(Vec<(u8, Option<u8>)>, Vec<(u8, Option<u8>)>),
}

/// Keys k0..k4; values v0..v3; a compare is (key, None = absent | Some(delta)
/// = mod revision of the model plus delta, 0 meaning the right one).
fn step() -> impl Strategy<Value = Step> {
    let compare = (0u8..5, prop::option::of(0u8..2));
    let op = (0u8..5, prop::option::of(0u8..4));
    (
        prop::collection::vec(compare, 0..2),
        prop::collection::vec(op, 1..4),
    )
        .prop_map(|(c, o)| Step::Txn(c, o))
}

#[derive(Default, Clone)]
struct Model {
    kv: BTreeMap<String, (Vec<u8>, u64, u64)>, // value, create, mod
    revision: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn store_matches_the_model(steps in prop::collection::vec(step(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("m.db")).unwrap();
        let mut model = Model::default();
        let mut expected_events = Vec::new();
        for Step::Txn(compares, ops) in steps {
            // Deduplicate op keys (the store refuses duplicates; tested elsewhere).
            let mut seen = std::collections::BTreeSet::new();
            let ops: Vec<_> = ops.into_iter().filter(|(k, _)| seen.insert(*k)).collect();
            let compares: Vec<Compare> = compares
                .iter()
                .map(|(k, c)| {
                    let key = format!("k{k}");
                    match c {
                        None => Compare::Absent(key),
                        Some(delta) => {
                            let rev = model.kv.get(&key).map_or(0, |e| e.2) + u64::from(*delta);
                            Compare::ModRevision(key, rev)
                        }
                    }
                })
                .collect();
            let holds = compares.iter().all(|c| match c {
                Compare::Absent(k) => !model.kv.contains_key(k),
                Compare::ModRevision(k, r) => model.kv.get(k).is_some_and(|e| e.2 == *r),
            });
            let store_ops: Vec<Op> = ops
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => Op::Put(format!("k{k}"), vec![*v]),
                    None => Op::Delete(format!("k{k}")),
                })
                .collect();
            let result = store.txn(compares, store_ops).unwrap();
            prop_assert_eq!(result.succeeded, holds);
            if holds {
                let next = model.revision + 1;
                let mut changed = false;
                for (k, v) in &ops {
                    let key = format!("k{k}");
                    match v {
                        Some(v) => {
                            let create = model.kv.get(&key).map_or(next, |e| e.1);
                            model.kv.insert(key.clone(), (vec![*v], create, next));
                            expected_events.push((EventKind::Put, key, next));
                            changed = true;
                        }
                        None => {
                            if model.kv.remove(&key).is_some() {
                                expected_events.push((EventKind::Delete, key, next));
                                changed = true;
                            }
                        }
                    }
                }
                if changed {
                    model.revision = next;
                }
            }
            prop_assert_eq!(result.revision, model.revision);
        }
        let (kvs, rev) = store.range("k").unwrap();
        prop_assert_eq!(rev, model.revision);
        let got: Vec<_> = kvs.into_iter().map(|kv| (kv.key, (kv.value, kv.create_revision, kv.mod_revision))).collect();
        let want: Vec<_> = model.kv.clone().into_iter().collect();
        prop_assert_eq!(got, want);

        let mut watcher = store.watch("k", 1).unwrap();
        let mut events = Vec::new();
        while let Some(e) = watcher.try_next() {
            events.push((e.kind, e.kv.key, e.kv.mod_revision));
        }
        prop_assert_eq!(events, expected_events);
    }
}
