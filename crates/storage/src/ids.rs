//! Unique ids without a system call each: request ids, message ids, pop
//! receipts and inline-data ids are asked for thousands of times a second,
//! and `Uuid::new_v4` reads the kernel's random source every time.
//!
//! An id is a random 128-bit base, drawn once per process, plus a counter,
//! shaped as a version 4 UUID. Ids are unique within a process by the
//! counter and across processes by the base (two runs collide only if
//! their random bases land within a few billion of each other). One
//! process's ids also sort in the order they were made, so database keys
//! made from them append to their index instead of landing anywhere.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

fn base() -> (u64, u64) {
    static BASE: OnceLock<(u64, u64)> = OnceLock::new();
    *BASE.get_or_init(|| {
        let r = Uuid::new_v4().as_u128();
        // Room for 2^62 ids before the counter could reach the version bits.
        ((r >> 64) as u64, (r as u64) & (u64::MAX >> 2))
    })
}

/// A fresh id.
pub fn unique() -> Uuid {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let (hi, lo) = base();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let v = (u128::from(hi) << 64) | u128::from(lo.wrapping_add(n));
    uuid::Builder::from_random_bytes(v.to_be_bytes()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids never repeat, are valid version 4 UUIDs, and sort in the order
    /// they were made.
    #[test]
    fn ids_are_distinct_v4_and_ordered() {
        let ids: Vec<Uuid> = (0..10_000).map(|_| unique()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "ids sort in the order they were made");
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "no id repeats");
        assert!(ids.iter().all(|u| u.get_version_num() == 4));
        let text: Vec<String> = ids.iter().map(|u| u.simple().to_string()).collect();
        assert!(
            text.windows(2).all(|w| w[0] < w[1]),
            "text keys keep the order"
        );
    }
}
