//! Where each role instance goes: its id, upgrade domain and fault domain.
//! Pure functions over plain data.
//!
//! Azure numbers a role's instances from 0 and deals them round-robin over
//! the upgrade domains (`n % upgradeDomainCount`: 14 instances over 5 UDs
//! are 3,3,3,3,2) and, independently, over the fault domains (`n % 2` by
//! default).

use serde::{Deserialize, Serialize};

/// One instance's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// `n` in `<Role>_IN_<n>`.
    pub index: u32,
    pub instance_id: String,
    pub update_domain: u32,
    pub fault_domain: u32,
}

/// `<Role>_IN_<n>`, Azure's role instance id.
pub fn instance_id(role: &str, index: u32) -> String {
    format!("{role}_IN_{index}")
}

/// Places `count` instances of `role` over `upgrade_domains` and
/// `fault_domains` (each treated as at least 1).
pub fn place(role: &str, count: u32, upgrade_domains: u32, fault_domains: u32) -> Vec<Placement> {
    let (uds, fds) = (upgrade_domains.max(1), fault_domains.max(1));
    (0..count)
        .map(|n| Placement {
            index: n,
            instance_id: instance_id(role, n),
            update_domain: n % uds,
            fault_domain: n % fds,
        })
        .collect()
}

/// How many of `placements` fall in each upgrade domain `0..upgrade_domains`.
pub fn per_upgrade_domain(placements: &[Placement], upgrade_domains: u32) -> Vec<u32> {
    let mut counts = vec![0; upgrade_domains.max(1) as usize];
    for p in placements {
        if let Some(c) = counts.get_mut(p.update_domain as usize) {
            *c += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_spread_over_upgrade_domains_as_azure_does() {
        // (instances, upgrade domains) → instances per UD
        let cases: &[(u32, u32, &[u32])] = &[
            (14, 5, &[3, 3, 3, 3, 2]),
            (2, 5, &[1, 1, 0, 0, 0]),
            (5, 5, &[1, 1, 1, 1, 1]),
            (7, 3, &[3, 2, 2]),
            (1, 1, &[1]),
            (0, 5, &[0, 0, 0, 0, 0]),
            (20, 20, &[1; 20]),
        ];
        for &(count, uds, expected) in cases {
            let placed = place("Web", count, uds, 2);
            assert_eq!(
                per_upgrade_domain(&placed, uds),
                expected,
                "{count} over {uds}"
            );
        }
    }

    #[test]
    fn ids_and_domains_follow_the_instance_number() {
        let placed = place("WorkerRole1", 4, 3, 2);
        let got: Vec<_> = placed
            .iter()
            .map(|p| (p.instance_id.as_str(), p.update_domain, p.fault_domain))
            .collect();
        assert_eq!(
            got,
            [
                ("WorkerRole1_IN_0", 0, 0),
                ("WorkerRole1_IN_1", 1, 1),
                ("WorkerRole1_IN_2", 2, 0),
                ("WorkerRole1_IN_3", 0, 1),
            ]
        );
    }

    #[test]
    fn fault_domain_count_is_a_parameter() {
        let fds: Vec<_> = place("W", 6, 5, 3).iter().map(|p| p.fault_domain).collect();
        assert_eq!(fds, [0, 1, 2, 0, 1, 2]);
        // Zero domains cannot divide by zero: treated as one.
        let one = place("W", 3, 0, 0);
        assert!(
            one.iter()
                .all(|p| p.update_domain == 0 && p.fault_domain == 0)
        );
    }

    proptest::proptest! {
        #[test]
        fn domains_are_balanced_and_ids_unique(count in 0u32..200, uds in 1u32..20, fds in 1u32..4) {
            let placed = place("R", count, uds, fds);
            let per = per_upgrade_domain(&placed, uds);
            proptest::prop_assert_eq!(per.iter().sum::<u32>(), count);
            let (min, max) = (per.iter().min().unwrap(), per.iter().max().unwrap());
            proptest::prop_assert!(max - min <= 1, "unbalanced: {:?}", per);
            // Lower domains fill first, as Azure's numbering does.
            proptest::prop_assert!(per.windows(2).all(|w| w[0] >= w[1]));
            let ids: std::collections::BTreeSet<_> = placed.iter().map(|p| &p.instance_id).collect();
            proptest::prop_assert_eq!(ids.len(), count as usize);
            proptest::prop_assert!(placed.iter().all(|p| p.update_domain < uds && p.fault_domain < fds));
        }
    }
}
