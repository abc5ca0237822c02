//! Who may connect to a VIP: Azure's endpoint access control list
//! (`NetworkConfiguration/AccessControls` and `EndpointAcls` in a cscfg).
//!
//! The rules are tried from the lowest `order` up; the first whose remote
//! subnet holds the client's address decides. When none matches, the
//! client is refused if the list has any permit rule (permitting some
//! ranges denies all others) and let in otherwise (denying some ranges
//! permits all others). No rules: everyone is let in.

use std::net::IpAddr;

use ipnet::Ipv4Net;

use crate::LbError;

/// What a rule does with the clients of its subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum AclAction {
    Permit,
    Deny,
}

/// One `Rule order action remoteSubnet`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AclRule {
    pub order: u64,
    pub action: AclAction,
    /// An IPv4 block, as Azure's rules are IPv4 only.
    pub remote_subnet: Ipv4Net,
}

impl AclRule {
    /// A rule from the text of a cscfg `remoteSubnet` (`10.0.0.0/8`, or a
    /// single address `203.0.113.7`, meaning `/32`).
    pub fn parse(order: u64, action: AclAction, remote_subnet: &str) -> Result<AclRule, LbError> {
        let text = remote_subnet.trim();
        let remote_subnet = text
            .parse::<Ipv4Net>()
            .or_else(|_| text.parse::<std::net::Ipv4Addr>().map(Ipv4Net::from))
            .map_err(|_| LbError::BadRemoteSubnet {
                subnet: remote_subnet.to_owned(),
            })?;
        Ok(AclRule {
            order,
            action,
            remote_subnet: remote_subnet.trunc(),
        })
    }
}

/// An endpoint's access control list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessControl {
    /// Sorted by order (stable: equal orders keep the given sequence).
    rules: Vec<AclRule>,
}

impl AccessControl {
    /// Everyone is let in.
    pub fn permit_all() -> AccessControl {
        AccessControl::default()
    }

    pub fn new(mut rules: Vec<AclRule>) -> AccessControl {
        rules.sort_by_key(|r| r.order);
        AccessControl { rules }
    }

    pub fn rules(&self) -> &[AclRule] {
        &self.rules
    }

    /// Whether a client at `client` may connect.
    pub fn permits(&self, client: IpAddr) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let v4 = match client {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        if let Some(v4) = v4
            && let Some(rule) = self.rules.iter().find(|r| r.remote_subnet.contains(&v4))
        {
            return rule.action == AclAction::Permit;
        }
        !self.rules.iter().any(|r| r.action == AclAction::Permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rules<'a> = &'a [(u64, AclAction, &'a str)];

    fn acl(rules: Rules<'_>) -> AccessControl {
        AccessControl::new(
            rules
                .iter()
                .map(|(order, action, subnet)| AclRule::parse(*order, *action, subnet).unwrap())
                .collect(),
        )
    }

    /// (rules, client, let in?)
    #[test]
    fn rules_decide_by_lowest_order_first_match_then_by_kind() {
        use AclAction::{Deny, Permit};
        let cases: &[(Rules<'_>, &str, bool)] = &[
            (&[], "203.0.113.9", true),
            (&[(100, Permit, "10.0.0.0/8")], "10.1.2.3", true),
            (&[(100, Permit, "10.0.0.0/8")], "192.168.1.1", false),
            (&[(100, Deny, "10.0.0.0/8")], "10.1.2.3", false),
            (&[(100, Deny, "10.0.0.0/8")], "192.168.1.1", true),
            // Carve a hole: deny one address inside a permitted block.
            (
                &[(200, Permit, "10.0.0.0/8"), (100, Deny, "10.0.0.5/32")],
                "10.0.0.5",
                false,
            ),
            (
                &[(200, Permit, "10.0.0.0/8"), (100, Deny, "10.0.0.5/32")],
                "10.0.0.6",
                true,
            ),
            // The other way round the permit, tried first, wins.
            (
                &[(100, Permit, "10.0.0.0/8"), (200, Deny, "10.0.0.5")],
                "10.0.0.5",
                true,
            ),
            (&[(100, Permit, "127.0.0.1")], "::ffff:127.0.0.1", true),
            (&[(100, Permit, "0.0.0.0/0")], "::1", false),
            (&[(100, Deny, "0.0.0.0/0")], "::1", true),
            // Host bits in the block are ignored, as Azure does.
            (&[(100, Permit, "10.1.2.3/16")], "10.1.200.1", true),
        ];
        for (rules, client, expected) in cases {
            let got = acl(rules).permits(client.parse().unwrap());
            assert_eq!(got, *expected, "rules {rules:?}, client {client}");
        }
    }

    #[test]
    fn a_subnet_that_is_not_ipv4_cidr_is_a_clear_error() {
        for bad in ["10.0.0.0/33", "fe80::/10", "ten", ""] {
            let err = AclRule::parse(1, AclAction::Permit, bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid access control remote subnet `{bad}`: expected an IPv4 block such as 10.0.0.0/8"
                )
            );
        }
    }
}
