//! What an instance's status and readiness are, from what the agent knows
//! about it: a pure function, so the rules are tested with plain data.

use std::collections::{BTreeMap, BTreeSet};

use weft_runtime::protocol::RoleStatus;

use crate::protocol::InstanceStatus;

/// The facts about a running entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// `setReadyOnProcessStart`.
    pub(crate) ready_on_start: bool,
    /// What the instance said on its runtime endpoint since it started.
    pub(crate) said: Option<RoleStatus>,
    /// The first failing probe's reason, if any probe fails.
    pub(crate) probe_failure: Option<String>,
    /// Whether every probe has passed at least once since the start.
    pub(crate) probes_passed_once: bool,
    /// Crashes within the window reached the cycling threshold.
    pub(crate) cycling: bool,
}

/// The status, whether the load balancer may use the instance, and why not.
pub(crate) fn assess(f: &Facts) -> (InstanceStatus, bool, Option<String>) {
    let not_ready = |status: InstanceStatus, why: String| {
        let status = if f.cycling {
            InstanceStatus::CyclingRole
        } else {
            status
        };
        (status, false, Some(why))
    };
    if f.said == Some(RoleStatus::Busy) {
        return not_ready(
            InstanceStatus::BusyRole,
            "the instance reported Busy".into(),
        );
    }
    if !f.ready_on_start && f.said != Some(RoleStatus::Ready) {
        return not_ready(
            InstanceStatus::StartingRole,
            "waiting for the instance to report Ready (setReadyOnProcessStart is false)".into(),
        );
    }
    if let Some(why) = &f.probe_failure {
        let status = if f.probes_passed_once {
            InstanceStatus::UnresponsiveRole
        } else {
            InstanceStatus::StartingRole
        };
        return not_ready(status, why.clone());
    }
    (InstanceStatus::ReadyRole, true, None)
}

/// Endpoints the load balancer may use whatever the instance says of
/// itself: those marked `ignoreRoleInstanceStatus` whose own probe, if they
/// have one, passes. `verdicts` holds the probed endpoints' last results.
pub(crate) fn serving_regardless<'a>(
    ignoring: impl IntoIterator<Item = &'a str>,
    verdicts: &BTreeMap<String, Result<(), String>>,
) -> BTreeSet<String> {
    ignoring
        .into_iter()
        .filter(|name| verdicts.get(*name).is_none_or(|v| v.is_ok()))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceStatus::*;

    fn facts() -> Facts {
        Facts {
            ready_on_start: true,
            said: None,
            probe_failure: None,
            probes_passed_once: true,
            cycling: false,
        }
    }

    #[test]
    fn rules() {
        let probe = Some("probe Http on 127.0.0.1:80 failing: connection refused".to_owned());
        let cases: Vec<(&str, Facts, InstanceStatus, bool)> = vec![
            ("running, nothing else", facts(), ReadyRole, true),
            (
                "busy",
                Facts {
                    said: Some(RoleStatus::Busy),
                    ..facts()
                },
                BusyRole,
                false,
            ),
            (
                "waits for Ready",
                Facts {
                    ready_on_start: false,
                    ..facts()
                },
                StartingRole,
                false,
            ),
            (
                "said Ready",
                Facts {
                    ready_on_start: false,
                    said: Some(RoleStatus::Ready),
                    ..facts()
                },
                ReadyRole,
                true,
            ),
            (
                "probe not passed yet",
                Facts {
                    probe_failure: probe.clone(),
                    probes_passed_once: false,
                    ..facts()
                },
                StartingRole,
                false,
            ),
            (
                "probe failing after passing",
                Facts {
                    probe_failure: probe.clone(),
                    ..facts()
                },
                UnresponsiveRole,
                false,
            ),
            (
                "cycling and not ready",
                Facts {
                    probe_failure: probe,
                    probes_passed_once: false,
                    cycling: true,
                    ..facts()
                },
                CyclingRole,
                false,
            ),
            (
                "cycling but ready",
                Facts {
                    cycling: true,
                    ..facts()
                },
                ReadyRole,
                true,
            ),
        ];
        for (name, f, status, ready) in cases {
            let (s, r, why) = assess(&f);
            assert_eq!((s, r), (status, ready), "{name}");
            assert_eq!(
                why.is_some(),
                !ready,
                "{name}: a reason exactly when not ready"
            );
        }
    }

    #[test]
    fn ignoring_endpoints_follow_only_their_probe() {
        let verdicts = BTreeMap::from([
            ("Probed".to_owned(), Ok(())),
            (
                "Failing".to_owned(),
                Err("probe Failing: refused".to_owned()),
            ),
        ]);
        let got = serving_regardless(["Probed", "Failing", "Unprobed"], &verdicts);
        assert_eq!(
            got,
            BTreeSet::from(["Probed".to_owned(), "Unprobed".to_owned()])
        );
        assert!(serving_regardless([], &verdicts).is_empty());
    }
}
