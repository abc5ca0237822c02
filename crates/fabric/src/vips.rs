//! The deployment's VIPs: binding (with remapping when a port is taken) and
//! each VIP's backend set, computed from the agent's reports.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use weft_agent::protocol::InstanceSpec;
use weft_lb::{AccessControl, AclAction, AclRule, Backend, Distribution, LbError, Vip, VipConfig};

use crate::controller::{Reports, report_for};
use crate::spec::{EndpointAccess, VipPlan};
use crate::{FabricError, Slot};

/// A bound VIP and the backends it was last given.
#[derive(Debug, Clone)]
pub struct LiveVip {
    pub vip: Vip,
    pub backends: Vec<Backend>,
}

fn describe(plan: &VipPlan) -> String {
    match &plan.instance {
        Some(instance) => format!(
            "instance input endpoint {}/{} of {instance}",
            plan.role, plan.endpoint
        ),
        None => format!("input endpoint {}/{}", plan.role, plan.endpoint),
    }
}

/// Binds `plan` on `host` for a deployment in `slot`. The addresses belong
/// to the slot: production listens at the endpoint's requested port (if
/// that is taken, at `previous`, the port a former run fell back to, so
/// clients keep it, else at any free port — saying so); staging listens at
/// `previous` (its address, kept across restarts) or, the first time, at a
/// free port chosen now.
pub async fn bind(
    host: IpAddr,
    plan: &VipPlan,
    access: Option<&EndpointAccess>,
    slot: Slot,
    previous: Option<u16>,
    config: &VipConfig,
) -> Result<(Vip, Option<String>), FabricError> {
    let err = |source| FabricError::Vip {
        endpoint: describe(plan),
        source,
    };
    let access_control = match access {
        None => config.access_control.clone(),
        Some(_) => access_control(plan, access)?,
    };
    // An http endpoint speaks request/response: a request in flight on an
    // instance that dies goes to the next instance instead of failing.
    let config = &VipConfig {
        replay_in_flight: plan.protocol == "http",
        access_control,
        distribution: if plan.source_ip_affinity {
            Distribution::SourceIp
        } else {
            config.distribution
        },
        idle_timeout: match plan.idle_timeout_minutes {
            Some(minutes) => Some(Duration::from_secs(minutes * 60)),
            None => config.idle_timeout,
        },
        ..config.clone()
    };
    let wanted = match slot {
        Slot::Production => Some(plan.requested_port),
        Slot::Staging => previous,
    };
    let mut candidates: Vec<u16> = wanted.into_iter().collect();
    candidates.extend(previous.filter(|p| Some(*p) != wanted));
    let mut bound = None;
    for port in candidates {
        match Vip::bind(SocketAddr::new(host, port), config.clone()).await {
            Ok(vip) => {
                bound = Some(vip);
                break;
            }
            Err(LbError::AddrInUse { .. }) => continue,
            Err(source) => return Err(err(source)),
        }
    }
    let vip = match bound {
        Some(vip) => vip,
        None => Vip::bind(SocketAddr::new(host, 0), config.clone())
            .await
            .map_err(err)?,
    };
    let Some(wanted) = wanted.filter(|w| *w != vip.local_addr().port()) else {
        return Ok((vip, None));
    };
    let message = match slot {
        Slot::Production => format!(
            "{}: port {wanted} on {host} is in use; listening on {} instead",
            describe(plan),
            vip.local_addr()
        ),
        Slot::Staging => format!(
            "{}: the staging address {host}:{wanted} is in use; listening on {} instead",
            describe(plan),
            vip.local_addr()
        ),
    };
    tracing::warn!(endpoint = %describe(plan), %slot, wanted, bound = %vip.local_addr(), "vip port remapped");
    Ok((vip, Some(message)))
}

/// The load balancer's access control for `plan` from the cscfg's list
/// (everyone when there is none).
pub fn access_control(
    plan: &VipPlan,
    access: Option<&EndpointAccess>,
) -> Result<AccessControl, FabricError> {
    let Some(a) = access else {
        return Ok(AccessControl::default());
    };
    let rules = a
        .rules
        .iter()
        .map(|r| {
            let action = if r.permit {
                AclAction::Permit
            } else {
                AclAction::Deny
            };
            AclRule::parse(r.order, action, &r.remote_subnet)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| FabricError::Vip {
            endpoint: describe(plan),
            source,
        })?;
    Ok(AccessControl::new(rules))
}

/// The backends `plan` should have: the instances of its role (or its one
/// instance) that serve the endpoint — Ready, or its probe passing when it
/// ignores the role instance status — at the address it actually listens on.
pub fn backends(plan: &VipPlan, instances: &[InstanceSpec], reports: &Reports) -> Vec<Backend> {
    instances
        .iter()
        .filter(|spec| spec.role == plan.role)
        .filter(|spec| {
            plan.instance
                .as_ref()
                .is_none_or(|i| *i == spec.instance_id)
        })
        .filter_map(|spec| {
            let report = report_for(reports, spec)?;
            let current = report.deployment_id == spec.deployment_id
                && report.incarnation == spec.incarnation
                && report.serves(&plan.endpoint);
            let addr = *report.endpoints.get(&plan.endpoint)?;
            current.then(|| Backend {
                id: backend_id(&spec.deployment_id, &spec.instance_id),
                addr: reachable(addr),
            })
        })
        .collect()
}

/// The load balancer's id for `spec`'s instance: its deployment and its
/// instance id, so that after a swap the connections a VIP still holds to
/// one deployment's `Web_IN_0` are never mistaken for the other's.
pub fn backend_id(deployment_id: &str, instance_id: &str) -> String {
    format!("{instance_id}/{deployment_id}")
}

/// An instance listening on every address is reached over loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    }
}
