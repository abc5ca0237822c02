//! Leases on containers and blobs: the state machine (acquire, renew,
//! change, release, break) and what a held lease demands of other writes.
//! Pure functions over a stored [`Lease`] and the current time.

use hyper::StatusCode;

use crate::api_error::ApiError;

/// A lease as stored (absent when the resource was never leased or the
/// lease was released).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub id: String,
    /// Seconds, or -1 for infinite.
    pub duration: i64,
    /// When a finite lease expires (ms since the epoch).
    pub expires_ms: Option<i64>,
    /// When a broken lease finishes breaking (ms since the epoch).
    pub broken_ms: Option<i64>,
}

/// Azure's lease states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Available,
    Leased,
    Expired,
    Breaking,
    Broken,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Available => "available",
            LeaseState::Leased => "leased",
            LeaseState::Expired => "expired",
            LeaseState::Breaking => "breaking",
            LeaseState::Broken => "broken",
        }
    }

    /// `x-ms-lease-status`: locked while leased or breaking.
    pub fn status(self) -> &'static str {
        match self {
            LeaseState::Leased | LeaseState::Breaking => "locked",
            _ => "unlocked",
        }
    }

    fn active(self) -> bool {
        matches!(self, LeaseState::Leased | LeaseState::Breaking)
    }
}

pub fn state(lease: Option<&Lease>, now_ms: i64) -> LeaseState {
    match lease {
        None => LeaseState::Available,
        Some(l) => match (l.broken_ms, l.expires_ms) {
            (Some(b), _) if now_ms < b => LeaseState::Breaking,
            (Some(_), _) => LeaseState::Broken,
            (None, Some(e)) if now_ms >= e => LeaseState::Expired,
            _ => LeaseState::Leased,
        },
    }
}

/// `x-ms-lease-duration` in responses: only for a held lease.
pub fn duration_header(lease: Option<&Lease>, now_ms: i64) -> Option<&'static str> {
    match (state(lease, now_ms), lease) {
        (LeaseState::Leased, Some(l)) => Some(if l.duration < 0 { "infinite" } else { "fixed" }),
        _ => None,
    }
}

/// A lease operation, from `x-ms-lease-action` and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    Acquire {
        duration: i64,
        proposed: Option<String>,
    },
    Renew {
        id: String,
    },
    Change {
        id: String,
        proposed: String,
    },
    Release {
        id: String,
    },
    Break {
        period: Option<i64>,
    },
}

/// What a lease operation answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOutcome {
    pub lease: Option<Lease>,
    /// `x-ms-lease-id` of the response (not for break and release).
    pub id: Option<String>,
    /// `x-ms-lease-time` (break only): seconds until the lease is broken.
    pub time: Option<i64>,
}

fn conflict(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// Reads the lease headers of a lease request.
pub fn parse_action(header: impl Fn(&str) -> Option<String>) -> Result<LeaseAction, ApiError> {
    let need = |name: &str| header(name).ok_or_else(|| ApiError::missing_header(name));
    // Lease ids are GUIDs: a proposed one that is not is 400 InvalidHeaderValue.
    let guid = |name: &str, v: String| match uuid::Uuid::try_parse(v.trim()) {
        Ok(_) => Ok(v),
        Err(_) => Err(ApiError::invalid_header(name)),
    };
    let action = need("x-ms-lease-action")?;
    match action.to_ascii_lowercase().as_str() {
        "acquire" => {
            let raw = need("x-ms-lease-duration")?;
            let duration: i64 = raw
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid_header("x-ms-lease-duration"))?;
            if duration != -1 && !(15..=60).contains(&duration) {
                return Err(ApiError::invalid_header("x-ms-lease-duration"));
            }
            Ok(LeaseAction::Acquire {
                duration,
                proposed: header("x-ms-proposed-lease-id")
                    .map(|p| guid("x-ms-proposed-lease-id", p))
                    .transpose()?,
            })
        }
        "renew" => Ok(LeaseAction::Renew {
            id: need("x-ms-lease-id")?,
        }),
        "change" => Ok(LeaseAction::Change {
            id: need("x-ms-lease-id")?,
            proposed: guid("x-ms-proposed-lease-id", need("x-ms-proposed-lease-id")?)?,
        }),
        "release" => Ok(LeaseAction::Release {
            id: need("x-ms-lease-id")?,
        }),
        "break" => {
            let period = match header("x-ms-lease-break-period") {
                None => None,
                Some(p) => {
                    let p: i64 = p
                        .trim()
                        .parse()
                        .map_err(|_| ApiError::invalid_header("x-ms-lease-break-period"))?;
                    if !(0..=60).contains(&p) {
                        return Err(ApiError::invalid_header("x-ms-lease-break-period"));
                    }
                    Some(p)
                }
            };
            Ok(LeaseAction::Break { period })
        }
        _ => Err(ApiError::invalid_header("x-ms-lease-action")),
    }
}

fn expiry(duration: i64, now_ms: i64) -> Option<i64> {
    (duration > 0).then(|| now_ms + duration * 1000)
}

/// Applies a lease operation to the current lease.
pub fn apply(
    current: Option<&Lease>,
    action: LeaseAction,
    now_ms: i64,
) -> Result<LeaseOutcome, ApiError> {
    let st = state(current, now_ms);
    let same = |id: &str| current.is_some_and(|l| l.id == id);
    match action {
        LeaseAction::Acquire { duration, proposed } => {
            let id = proposed.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            match st {
                LeaseState::Leased if !same(&id) => Err(conflict(
                    "LeaseAlreadyPresent",
                    "There is already a lease present.",
                )),
                LeaseState::Breaking => Err(conflict(
                    "LeaseIsBreakingAndCannotBeAcquired",
                    "There is already a breaking lease present and the lease cannot be acquired.",
                )),
                _ => {
                    let lease = Lease {
                        id: id.clone(),
                        duration,
                        expires_ms: expiry(duration, now_ms),
                        broken_ms: None,
                    };
                    Ok(LeaseOutcome {
                        lease: Some(lease),
                        id: Some(id),
                        time: None,
                    })
                }
            }
        }
        LeaseAction::Renew { id } => match (st, current) {
            (LeaseState::Available, _) | (_, None) => Err(conflict(
                "LeaseNotPresentWithLeaseOperation",
                "There is currently no lease.",
            )),
            (_, Some(l)) if l.id != id => Err(conflict(
                "LeaseIdMismatchWithLeaseOperation",
                "The lease ID specified did not match the lease ID.",
            )),
            (LeaseState::Breaking | LeaseState::Broken, _) => Err(conflict(
                "LeaseIsBrokenAndCannotBeRenewed",
                "The lease ID matched, but the lease has been broken explicitly and cannot be renewed.",
            )),
            (_, Some(l)) => {
                let lease = Lease {
                    expires_ms: expiry(l.duration, now_ms),
                    broken_ms: None,
                    ..l.clone()
                };
                Ok(LeaseOutcome {
                    lease: Some(lease),
                    id: Some(id),
                    time: None,
                })
            }
        },
        LeaseAction::Change { id, proposed } => match (st, current) {
            (LeaseState::Leased, Some(l)) if l.id == id || l.id == proposed => {
                let lease = Lease {
                    id: proposed.clone(),
                    ..l.clone()
                };
                Ok(LeaseOutcome {
                    lease: Some(lease),
                    id: Some(proposed),
                    time: None,
                })
            }
            (LeaseState::Leased, _) => Err(conflict(
                "LeaseIdMismatchWithLeaseOperation",
                "The lease ID specified did not match the lease ID.",
            )),
            (LeaseState::Breaking | LeaseState::Broken, _) => Err(conflict(
                "LeaseIsBrokenAndCannotBeChanged",
                "The lease ID matched, but the lease has been broken explicitly and cannot be changed.",
            )),
            _ => Err(conflict(
                "LeaseNotPresentWithLeaseOperation",
                "There is currently no lease.",
            )),
        },
        LeaseAction::Release { id } => match current {
            Some(l) if st != LeaseState::Available && l.id == id => Ok(LeaseOutcome {
                lease: None,
                id: None,
                time: None,
            }),
            Some(_) if st != LeaseState::Available => Err(conflict(
                "LeaseIdMismatchWithLeaseOperation",
                "The lease ID specified did not match the lease ID.",
            )),
            _ => Err(conflict(
                "LeaseNotPresentWithLeaseOperation",
                "There is currently no lease.",
            )),
        },
        LeaseAction::Break { period } => match (st, current) {
            (LeaseState::Available, _) | (_, None) => Err(conflict(
                "LeaseNotPresentWithLeaseOperation",
                "There is currently no lease.",
            )),
            (LeaseState::Leased, Some(l)) => {
                let remaining = match l.expires_ms {
                    Some(e) => (e - now_ms).max(0) / 1000,
                    None => i64::MAX,
                };
                let wait = period
                    .unwrap_or(if l.duration < 0 { 0 } else { remaining })
                    .min(remaining);
                let lease = Lease {
                    broken_ms: Some(now_ms + wait * 1000),
                    ..l.clone()
                };
                Ok(LeaseOutcome {
                    lease: Some(lease),
                    id: None,
                    time: Some(wait),
                })
            }
            (LeaseState::Breaking, Some(l)) => {
                let left = (l.broken_ms.unwrap_or(now_ms) - now_ms).max(0) / 1000;
                let wait = period.map_or(left, |p| p.min(left));
                let lease = Lease {
                    broken_ms: Some(now_ms + wait * 1000),
                    ..l.clone()
                };
                Ok(LeaseOutcome {
                    lease: Some(lease),
                    id: None,
                    time: Some(wait),
                })
            }
            (_, Some(l)) => Ok(LeaseOutcome {
                lease: Some(Lease {
                    broken_ms: Some(l.broken_ms.unwrap_or(now_ms)),
                    ..l.clone()
                }),
                id: None,
                time: Some(0),
            }),
        },
    }
}

/// What kind of resource a write targets, for the error code it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Blob,
    Container,
}

/// A write to a leased resource must name the lease; naming a lease that
/// is not held fails too. `required`: whether an active lease must be
/// named (blob writes, container delete) or only checked when given.
pub fn check_write(
    lease: Option<&Lease>,
    given: Option<&str>,
    target: Target,
    required: bool,
    now_ms: i64,
) -> Result<(), ApiError> {
    let st = state(lease, now_ms);
    let failed = |code: &'static str, message: &str| {
        ApiError::new(StatusCode::PRECONDITION_FAILED, code, message)
    };
    match (st.active(), given) {
        (true, None) if required => Err(failed(
            "LeaseIdMissing",
            "There is currently a lease on the resource and no lease ID was specified in the request.",
        )),
        (true, Some(id)) if lease.is_some_and(|l| l.id != id) => Err(failed(
            match target {
                Target::Blob => "LeaseIdMismatchWithBlobOperation",
                Target::Container => "LeaseIdMismatchWithContainerOperation",
            },
            "The lease ID specified did not match the lease ID for the resource.",
        )),
        (false, Some(_)) => Err(failed(
            match target {
                Target::Blob => "LeaseNotPresentWithBlobOperation",
                Target::Container => "LeaseNotPresentWithContainerOperation",
            },
            "There is currently no lease on the resource.",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_000_000;

    fn acquire(duration: i64, id: &str) -> LeaseAction {
        LeaseAction::Acquire {
            duration,
            proposed: Some(id.into()),
        }
    }

    #[test]
    fn lifecycle_of_a_fixed_lease() {
        let l = apply(None, acquire(15, "a"), T).unwrap().lease.unwrap();
        assert_eq!(state(Some(&l), T + 14_999), LeaseState::Leased);
        assert_eq!(state(Some(&l), T + 15_000), LeaseState::Expired);
        assert_eq!(
            apply(Some(&l), acquire(15, "b"), T).unwrap_err().code,
            "LeaseAlreadyPresent"
        );
        assert!(
            apply(Some(&l), acquire(15, "b"), T + 15_000).is_ok(),
            "an expired lease can be taken"
        );
        let renewed = apply(Some(&l), LeaseAction::Renew { id: "a".into() }, T + 15_000)
            .unwrap()
            .lease
            .unwrap();
        assert_eq!(state(Some(&renewed), T + 20_000), LeaseState::Leased);
        let b = apply(Some(&l), LeaseAction::Break { period: Some(5) }, T).unwrap();
        assert_eq!(b.time, Some(5));
        let broken = b.lease.unwrap();
        assert_eq!(state(Some(&broken), T + 4_000), LeaseState::Breaking);
        assert_eq!(state(Some(&broken), T + 5_000), LeaseState::Broken);
        assert_eq!(
            apply(Some(&broken), acquire(-1, "c"), T + 1_000)
                .unwrap_err()
                .code,
            "LeaseIsBreakingAndCannotBeAcquired"
        );
        assert!(apply(Some(&broken), acquire(-1, "c"), T + 6_000).is_ok());
    }

    #[test]
    fn change_and_release_need_the_right_id() {
        let l = apply(None, acquire(-1, "a"), T).unwrap().lease.unwrap();
        let err = |a| apply(Some(&l), a, T).unwrap_err().code;
        assert_eq!(
            err(LeaseAction::Release { id: "x".into() }),
            "LeaseIdMismatchWithLeaseOperation"
        );
        assert_eq!(
            err(LeaseAction::Change {
                id: "x".into(),
                proposed: "y".into()
            }),
            "LeaseIdMismatchWithLeaseOperation"
        );
        let changed = apply(
            Some(&l),
            LeaseAction::Change {
                id: "a".into(),
                proposed: "b".into(),
            },
            T,
        )
        .unwrap();
        assert_eq!(changed.id.as_deref(), Some("b"));
        assert_eq!(
            apply(Some(&l), LeaseAction::Release { id: "a".into() }, T)
                .unwrap()
                .lease,
            None
        );
        assert_eq!(
            apply(None, LeaseAction::Renew { id: "a".into() }, T)
                .unwrap_err()
                .code,
            "LeaseNotPresentWithLeaseOperation"
        );
    }

    #[test]
    fn writes_to_leased_resources() {
        let l = apply(None, acquire(-1, "a"), T).unwrap().lease.unwrap();
        let code = |lease: Option<&Lease>, given: Option<&str>, required| {
            check_write(lease, given, Target::Blob, required, T)
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code(Some(&l), None, true), Some("LeaseIdMissing"));
        assert_eq!(code(Some(&l), None, false), None);
        assert_eq!(code(Some(&l), Some("a"), true), None);
        assert_eq!(
            code(Some(&l), Some("b"), true),
            Some("LeaseIdMismatchWithBlobOperation")
        );
        assert_eq!(
            code(None, Some("a"), true),
            Some("LeaseNotPresentWithBlobOperation")
        );
        assert_eq!(code(None, None, true), None);
    }

    #[test]
    fn durations_and_actions_are_validated() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(
            parse_action(h(&[
                ("x-ms-lease-action", "acquire"),
                ("x-ms-lease-duration", "10")
            ]))
            .is_err()
        );
        assert!(
            parse_action(h(&[
                ("x-ms-lease-action", "acquire"),
                ("x-ms-lease-duration", "-1")
            ]))
            .is_ok()
        );
        assert!(parse_action(h(&[("x-ms-lease-action", "steal")])).is_err());
        assert!(
            parse_action(h(&[
                ("x-ms-lease-action", "break"),
                ("x-ms-lease-break-period", "61")
            ]))
            .is_err()
        );
        assert_eq!(
            parse_action(h(&[("x-ms-lease-action", "renew")]))
                .unwrap_err()
                .code,
            "MissingRequiredHeader"
        );
        // proposed lease ids are GUIDs
        let code = |pairs| parse_action(h(pairs)).map(|_| ()).map_err(|e| e.code);
        assert_eq!(
            code(&[
                ("x-ms-lease-action", "acquire"),
                ("x-ms-lease-duration", "-1"),
                ("x-ms-proposed-lease-id", "not-a-guid")
            ]),
            Err("InvalidHeaderValue")
        );
        assert_eq!(
            code(&[
                ("x-ms-lease-action", "acquire"),
                ("x-ms-lease-duration", "-1"),
                (
                    "x-ms-proposed-lease-id",
                    "9c5b1a5e-3f2d-4b8e-9a51-0c1d2e3f4a5b"
                )
            ]),
            Ok(())
        );
        assert_eq!(
            code(&[
                ("x-ms-lease-action", "change"),
                ("x-ms-lease-id", "9c5b1a5e-3f2d-4b8e-9a51-0c1d2e3f4a5b"),
                ("x-ms-proposed-lease-id", "x")
            ]),
            Err("InvalidHeaderValue")
        );
    }
}
