//! An ordered parallel map: workers run `work` on items ahead of a consumer
//! that takes the results strictly in input order, with a bound on how much
//! work (by weight, e.g. bytes) is done ahead and not yet consumed.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use crate::error::Result;

struct State<R> {
    next: usize,
    ahead: u64,
    done: BTreeMap<usize, R>,
    stop: bool,
}

/// Runs `work` over `items` on `threads` workers and feeds every result to
/// `consume` in order. At most `window` weight units (plus one item) are
/// claimed and not yet consumed. The first error from `consume` stops the
/// workers and is returned.
pub fn ordered_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    window: u64,
    weight: impl Fn(&T) -> u64 + Sync,
    work: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(&T, R) -> Result<()>,
) -> Result<()> {
    let state = Mutex::new(State {
        next: 0,
        ahead: 0,
        done: BTreeMap::new(),
        stop: false,
    });
    let changed = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut s = lock();
                        loop {
                            if s.stop || s.next >= items.len() {
                                return;
                            }
                            let w = weight(&items[s.next]);
                            if s.ahead == 0 || s.ahead + w <= window {
                                s.ahead += w;
                                s.next += 1;
                                break s.next - 1;
                            }
                            s = changed.wait(s).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    let result = work(&items[index]);
                    lock().done.insert(index, result);
                    changed.notify_all();
                }
            });
        }
        let mut outcome = Ok(());
        for (index, item) in items.iter().enumerate() {
            let result = {
                let mut s = lock();
                loop {
                    if let Some(r) = s.done.remove(&index) {
                        s.ahead -= weight(item);
                        break r;
                    }
                    s = changed.wait(s).unwrap_or_else(|p| p.into_inner());
                }
            };
            changed.notify_all();
            if let Err(e) = consume(item, result) {
                outcome = Err(e);
                break;
            }
        }
        lock().stop = true;
        changed.notify_all();
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_arrive_in_order() {
        let items: Vec<u64> = (0..500).collect();
        let mut seen = Vec::new();
        ordered_map(
            &items,
            4,
            10,
            |_| 3,
            |x| x * 2,
            |x, r| {
                assert_eq!(r, x * 2);
                seen.push(*x);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, items);
    }

    #[test]
    fn consumer_error_stops_early() {
        let items: Vec<u64> = (0..100).collect();
        let err = ordered_map(
            &items,
            2,
            1000,
            |_| 1,
            |x| *x,
            |x, _| {
                if *x == 10 {
                    Err(crate::PackageError::DuplicateRole { name: "x".into() })
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "role x is given more than once");
    }
}
