//! Upgrade planning (Azure's Upgrade Deployment): from the deployment as it
//! runs and the deployment the new package and configuration describe, the
//! instances each step takes down, the Ready capacity each role keeps, and
//! the changes an in-place upgrade refuses. Pure functions over plain data.
//!
//! Steps follow the upgrade domains: `Auto` and `Manual` walk UD 0, 1, …
//! one at a time (every UD is a step, even one with nothing to change, as
//! Azure walks them all); `Simultaneous` is one step over every UD.
//!
//! An instance whose new spec equals its current one (ignoring the
//! incarnation) is not recycled: a role whose package and settings did not
//! change keeps running through the upgrade.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft_agent::protocol::{EndpointSpec, InstanceSpec};

use crate::spec::{DeploymentPlan, VipPlan};

/// Azure's upgrade `Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpgradeMode {
    /// UD after UD, each once the previous one is healthy.
    Auto,
    /// UD after UD, each when asked (Walk Upgrade Domain).
    Manual,
    /// Every instance at once: the service is down until they are Ready.
    Simultaneous,
}

impl std::fmt::Display for UpgradeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpgradeMode::Auto => "auto",
            UpgradeMode::Manual => "manual",
            UpgradeMode::Simultaneous => "simultaneous",
        })
    }
}

/// When a walked upgrade domain counts as healthy, and how long it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthGate {
    /// Every instance of the step must be Ready and stay Ready this long.
    pub min_healthy_ms: u64,
    /// A step not healthy by then fails the gate.
    pub domain_timeout_ms: u64,
    /// The whole upgrade (every step) must finish by then.
    pub timeout_ms: u64,
}

impl Default for HealthGate {
    /// 5 s healthy, 5 minutes per UD, 1 hour overall.
    fn default() -> HealthGate {
        HealthGate {
            min_healthy_ms: 5_000,
            domain_timeout_ms: 300_000,
            timeout_ms: 3_600_000,
        }
    }
}

impl HealthGate {
    pub fn min_healthy(&self) -> Duration {
        Duration::from_millis(self.min_healthy_ms)
    }
    pub fn domain_timeout(&self) -> Duration {
        Duration::from_millis(self.domain_timeout_ms)
    }
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// What an upgrade will do, before it does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePlan {
    #[serde(default)]
    pub kind: ChangeKind,
    pub mode: UpgradeMode,
    /// Only this role is upgraded (Azure's `RoleToUpgrade`).
    pub role: Option<String>,
    pub upgrade_domain_count: u32,
    pub steps: Vec<UpgradeStep>,
    /// Why the upgrade cannot be done in place; empty when it can.
    pub refused: Vec<String>,
    /// Things to know that do not stop it.
    pub notes: Vec<String>,
}

/// One step: the upgrade domains it walks and what it takes down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStep {
    pub upgrade_domains: Vec<u32>,
    /// The instances out of their VIPs during the step: recycled, or
    /// removed for good (a smaller instance count).
    pub instances: Vec<String>,
    /// New instances started (a larger instance count).
    #[serde(default)]
    pub added: Vec<String>,
    /// Instances given new settings while they keep running (a
    /// configuration change).
    #[serde(default)]
    pub changed_in_place: Vec<String>,
    /// Per role: the instances that stay Ready during the step (assuming
    /// all were Ready before it) and the count after it.
    pub capacity: Vec<RoleCapacity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleCapacity {
    pub role: String,
    pub ready: u32,
    pub total: u32,
}

/// The upgrade domains each step walks.
pub fn steps(mode: UpgradeMode, upgrade_domain_count: u32) -> Vec<Vec<u32>> {
    let uds = upgrade_domain_count.max(1);
    match mode {
        UpgradeMode::Simultaneous => vec![(0..uds).collect()],
        UpgradeMode::Auto | UpgradeMode::Manual => (0..uds).map(|ud| vec![ud]).collect(),
    }
}

/// What is being changed: Azure's Upgrade Deployment recycles every
/// instance whose spec changes; Change Deployment Configuration changes
/// settings in place (the instance gets Changing/Changed and keeps running)
/// and recycles only for other changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ChangeKind {
    #[default]
    Upgrade,
    Configuration,
}

/// The deployment after the change: `target`'s instances for the changed
/// roles — a changed spec recycled (incarnation bumped past the current
/// one) unless `kind` lets it change in place, instances beyond the new
/// count gone, new ones added — and the current spec for everything else.
pub fn target_plan(
    current: &DeploymentPlan,
    target: &DeploymentPlan,
    role: Option<&str>,
    kind: ChangeKind,
) -> DeploymentPlan {
    let mut out = current.clone();
    for role_plan in &mut out.roles {
        if role.is_some_and(|r| r != role_plan.name) {
            continue;
        }
        let Some(new) = target.roles.iter().find(|r| r.name == role_plan.name) else {
            continue;
        };
        // The instances that stay are the current ones with the lowest
        // numbers (a smaller count removes the highest, as Azure does);
        // each keeps its name and domains, whatever gaps Delete Role
        // Instances left. New ones take the lowest free names.
        let mut now: Vec<&InstanceSpec> = role_plan.instances.iter().collect();
        now.sort_by_key(|i| index(&i.instance_id));
        let mut instances: Vec<InstanceSpec> = now
            .iter()
            .take(new.instances.len())
            .map(|spec| {
                let template = new
                    .instances
                    .iter()
                    .find(|n| n.instance_id == spec.instance_id)
                    .unwrap_or(&new.instances[0]);
                let next = InstanceSpec {
                    instance_id: spec.instance_id.clone(),
                    update_domain: spec.update_domain,
                    fault_domain: spec.fault_domain,
                    ..template.clone()
                };
                let mut spec = (*spec).clone();
                replace(&mut spec, &next, kind);
                spec
            })
            .collect();
        let missing = new.instances.len().saturating_sub(instances.len());
        let added: Vec<InstanceSpec> = new
            .instances
            .iter()
            .filter(|n| !now.iter().any(|i| i.instance_id == n.instance_id))
            .take(missing)
            .cloned()
            .collect();
        instances.extend(added);
        instances.sort_by_key(|i| index(&i.instance_id));
        role_plan.instances = instances;
    }
    out.vips = instance_vips_by_name(current, target, &out);
    out.access = target.access.clone();
    out.notes = target.notes.clone();
    out
}

/// `target`'s VIPs, with the instance input endpoints' VIPs following the
/// instances `after` has (kept names, whatever gaps Delete Role Instances
/// left), not the fresh names `_IN_0..N-1` the target was built with: a
/// kept instance keeps its public port (from `current`), a name only the
/// target has gets the target's.
fn instance_vips_by_name(
    current: &DeploymentPlan,
    target: &DeploymentPlan,
    after: &DeploymentPlan,
) -> Vec<VipPlan> {
    let has = |role: &str, instance: &str| {
        after
            .roles
            .iter()
            .any(|r| r.name == role && r.instances.iter().any(|i| i.instance_id == instance))
    };
    let mut out: Vec<VipPlan> = Vec::new();
    for vip in &target.vips {
        if vip.instance.is_none() {
            out.push(vip.clone());
            continue;
        }
        let group =
            |v: &&VipPlan| v.role == vip.role && v.endpoint == vip.endpoint && v.instance.is_some();
        if out.iter().any(|v| group(&v)) {
            continue; // the group is done
        }
        let Some(role) = after.roles.iter().find(|r| r.name == vip.role) else {
            continue;
        };
        for instance in &role.instances {
            let name = Some(instance.instance_id.clone());
            let own = target
                .vips
                .iter()
                .filter(group)
                .find(|v| v.instance == name)
                .cloned()
                .or_else(|| {
                    current
                        .vips
                        .iter()
                        .filter(group)
                        .find(|v| v.instance == name)
                        .map(|kept| VipPlan {
                            instance: name.clone(),
                            requested_port: kept.requested_port,
                            ..vip.clone()
                        })
                });
            out.extend(own.filter(|v| has(&v.role, &instance.instance_id)));
        }
    }
    out
}

/// How one instance changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replaced {
    Unchanged,
    InPlace,
    Recycled,
}

/// Puts `next` in place of `spec` when they differ beyond the incarnation:
/// in place (same incarnation) when only settings differ and `kind` allows
/// it, else with an incarnation above the current one.
fn replace(spec: &mut InstanceSpec, next: &InstanceSpec, kind: ChangeKind) -> Replaced {
    // What the instance's own history decided (its reimage count, whether
    // it is stopped) is not the package's or the configuration's to change.
    let rebased = InstanceSpec {
        incarnation: spec.incarnation,
        reimage: spec.reimage,
        stopped: spec.stopped,
        deployment_id: spec.deployment_id.clone(),
        ..next.clone()
    };
    if *spec == rebased {
        return Replaced::Unchanged;
    }
    let settings_only = InstanceSpec {
        settings: spec.settings.clone(),
        ..rebased.clone()
    } == *spec;
    if kind == ChangeKind::Configuration && settings_only && next.incarnation <= spec.incarnation {
        *spec = rebased;
        return Replaced::InPlace;
    }
    let incarnation = next.incarnation.max(spec.incarnation + 1);
    *spec = InstanceSpec {
        incarnation,
        ..rebased
    };
    Replaced::Recycled
}

/// What a switch did to the instances of its upgrade domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switched {
    /// Stopped and started again with the new spec.
    pub recycled: Vec<String>,
    /// Given new settings while they run.
    pub in_place: Vec<String>,
    /// New instances (a larger count).
    pub added: Vec<String>,
    /// Instances gone (a smaller count).
    pub removed: Vec<String>,
}

impl Switched {
    /// The instances that leave their VIPs (drained first).
    pub fn going_down(&self) -> Vec<String> {
        self.recycled.iter().chain(&self.removed).cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.recycled.is_empty()
            && self.in_place.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
    }
}

fn index(id: &str) -> u32 {
    id.rsplit('_')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Gives the instances of `plan` in `upgrade_domains` their spec from
/// `source`: changed ones replaced, missing ones added, extra ones removed.
pub fn switch(
    plan: &mut DeploymentPlan,
    source: &DeploymentPlan,
    upgrade_domains: &[u32],
    kind: ChangeKind,
) -> Switched {
    let mut out = Switched::default();
    for role_plan in &mut plan.roles {
        let Some(from) = source.roles.iter().find(|r| r.name == role_plan.name) else {
            continue;
        };
        let wanted: BTreeMap<&str, &InstanceSpec> = from
            .instances
            .iter()
            .filter(|i| upgrade_domains.contains(&i.update_domain))
            .map(|i| (i.instance_id.as_str(), i))
            .collect();
        role_plan.instances.retain(|spec| {
            let keep = !upgrade_domains.contains(&spec.update_domain)
                || wanted.contains_key(spec.instance_id.as_str());
            if !keep {
                out.removed.push(spec.instance_id.clone());
            }
            keep
        });
        for spec in &mut role_plan.instances {
            if let Some(next) = wanted.get(spec.instance_id.as_str()) {
                match replace(spec, next, kind) {
                    Replaced::Unchanged => {}
                    Replaced::InPlace => out.in_place.push(spec.instance_id.clone()),
                    Replaced::Recycled => out.recycled.push(spec.instance_id.clone()),
                }
            }
        }
        for (id, next) in &wanted {
            if !role_plan.instances.iter().any(|i| i.instance_id == *id) {
                role_plan.instances.push((*next).clone());
                out.added.push((*id).to_owned());
            }
        }
        role_plan.instances.sort_by_key(|i| index(&i.instance_id));
    }
    out
}

/// Plans upgrading `current` to `target` (planned from the new package and
/// configuration with the same deployment id).
pub fn plan(
    current: &DeploymentPlan,
    target: &DeploymentPlan,
    mode: UpgradeMode,
    role: Option<&str>,
    kind: ChangeKind,
) -> UpgradePlan {
    let uds = current
        .roles
        .iter()
        .map(|r| r.upgrade_domain_count)
        .max()
        .unwrap_or(1);
    let mut refused = refusals(current, target, role);
    let mut notes = Vec::new();
    if mode == UpgradeMode::Simultaneous {
        notes.push(
            "simultaneous: every changed instance stops at once; the service is unavailable until they are Ready again"
                .to_owned(),
        );
    }
    let after = target_plan(current, target, role, kind);
    let mut steps_out = Vec::new();
    let mut working = current.clone();
    for domains in steps(mode, uds) {
        let before = working.clone();
        let switched = switch(&mut working, &after, &domains, kind);
        let down = switched.going_down();
        let capacity = before
            .roles
            .iter()
            .zip(&working.roles)
            .map(|(r, next)| {
                let up = r
                    .instances
                    .iter()
                    .filter(|i| !down.contains(&i.instance_id))
                    .count() as u32;
                RoleCapacity {
                    role: r.name.clone(),
                    ready: up,
                    total: next.instances.len() as u32,
                }
            })
            .collect();
        steps_out.push(UpgradeStep {
            upgrade_domains: domains,
            instances: down,
            added: switched.added,
            changed_in_place: switched.in_place,
            capacity,
        });
    }
    if refused.is_empty()
        && steps_out
            .iter()
            .all(|s| s.instances.is_empty() && s.added.is_empty() && s.changed_in_place.is_empty())
    {
        notes.push(
            "nothing changes: the deployment already runs this package and configuration"
                .to_owned(),
        );
    }
    for role_plan in &current.roles {
        if role.is_none_or(|r| r == role_plan.name)
            && role_plan.instances.len() == 1
            && steps_out.iter().any(|s| !s.instances.is_empty())
        {
            notes.push(format!(
                "role {} has one instance: it is unavailable while its upgrade domain is walked (Azure's SLA needs two)",
                role_plan.name
            ));
        }
    }
    refused.dedup();
    UpgradePlan {
        kind,
        mode,
        role: role.map(str::to_owned),
        upgrade_domain_count: uds,
        steps: steps_out,
        refused,
        notes,
    }
}

/// What an in-place upgrade cannot do, in words.
fn refusals(current: &DeploymentPlan, target: &DeploymentPlan, role: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let old: BTreeSet<&str> = current.roles.iter().map(|r| r.name.as_str()).collect();
    let new: BTreeSet<&str> = target.roles.iter().map(|r| r.name.as_str()).collect();
    if let Some(r) = role
        && !old.contains(r)
    {
        out.push(format!("the deployment has no role `{r}` to upgrade"));
    }
    for gone in old.difference(&new) {
        out.push(format!(
            "role {gone} is not in the new service definition: weft does not remove roles in an upgrade yet (and Azure does not rename them): delete and deploy again"
        ));
    }
    for added in new.difference(&old) {
        out.push(format!(
            "role {added} is new in the service definition: weft does not add roles in an upgrade yet: delete and deploy again"
        ));
    }
    for now in &current.roles {
        let Some(next) = target.roles.iter().find(|r| r.name == now.name) else {
            continue;
        };
        if now.upgrade_domain_count != next.upgrade_domain_count {
            out.push(format!(
                "the upgrade domain count changes from {} to {}: Azure does not change it in place",
                now.upgrade_domain_count, next.upgrade_domain_count
            ));
        }
        if role.is_some_and(|r| r != now.name) {
            continue;
        }
        let (Some(a), Some(b)) = (now.instances.first(), next.instances.first()) else {
            continue;
        };
        if endpoint_shape(&a.endpoints) != endpoint_shape(&b.endpoints) {
            out.push(format!(
                "role {} changes its endpoints ({} → {}): weft does not change endpoints in place yet: deploy to staging and swap, or delete and deploy",
                now.name,
                describe_endpoints(&a.endpoints),
                describe_endpoints(&b.endpoints)
            ));
        }
        for res in &a.local_resources {
            if let Some(n) = b.local_resources.iter().find(|r| r.name == res.name)
                && n.size_mb < res.size_mb
            {
                out.push(format!(
                    "local storage {}/{} shrinks from {} MB to {} MB: Azure does not decrease local storage in place",
                    now.name, res.name, res.size_mb, n.size_mb
                ));
            }
        }
    }
    if current.access != target.access {
        out.push(
            "the endpoint access control lists change: weft does not change them on running VIPs yet: delete and deploy again".to_owned(),
        );
    }
    let target_vips = target_plan(current, target, role, ChangeKind::Upgrade).vips;
    if role.is_none() && current.vips != target_vips && out.iter().all(|m| !m.contains("endpoints"))
    {
        out.push(
            "the public endpoints (VIPs) change: weft does not change them in place yet".to_owned(),
        );
    }
    out
}

fn endpoint_shape(eps: &[EndpointSpec]) -> Vec<(String, String, String, Option<u16>)> {
    let mut v: Vec<_> = eps
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                format!("{:?}", e.kind),
                format!("{:?}", e.protocol),
                e.local_port,
            )
        })
        .collect();
    v.sort();
    v
}

fn describe_endpoints(eps: &[EndpointSpec]) -> String {
    if eps.is_empty() {
        return "none".to_owned();
    }
    eps.iter()
        .map(|e| {
            let port = e
                .local_port
                .map_or_else(|| "*".to_owned(), |p| p.to_string());
            let shape = format!("{:?}/{:?}", e.kind, e.protocol).to_lowercase();
            format!("{} {shape}:{port}", e.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use weft_agent::protocol::{
        EndpointKind, EndpointProtocol, LocalResourceSpec, PackageRef, ResourceLimits,
    };

    use super::*;
    use crate::spec::RolePlan;

    fn instance(role: &str, n: u32, uds: u32, version: &str) -> InstanceSpec {
        InstanceSpec {
            deployment_id: "d".into(),
            role: role.into(),
            instance_id: format!("{role}_IN_{n}"),
            update_domain: n % uds,
            fault_domain: n % 2,
            incarnation: 1,
            reimage: 0,
            stopped: false,
            package: PackageRef {
                path: PathBuf::from(format!("/p/{version}.cspkg")),
                digest: version.into(),
            },
            startup: Vec::new(),
            entry_point: Some("./run".into()),
            set_ready_on_process_start: true,
            environment: Vec::new(),
            settings: BTreeMap::new(),
            local_resources: vec![LocalResourceSpec {
                name: "Scratch".into(),
                size_mb: 100,
                clean_on_role_recycle: true,
            }],
            endpoints: vec![EndpointSpec {
                name: "HttpIn".into(),
                kind: EndpointKind::Input,
                protocol: EndpointProtocol::Http,
                local_port: None,
                ignore_role_instance_status: false,
                probe: None,
            }],
            elevated: false,
            limits: ResourceLimits::default(),
        }
    }

    /// Roles given as (name, instances), all over `uds` domains.
    fn deployment(roles: &[(&str, u32)], uds: u32, version: &str) -> DeploymentPlan {
        DeploymentPlan {
            roles: roles
                .iter()
                .map(|(name, count)| RolePlan {
                    name: (*name).into(),
                    upgrade_domain_count: uds,
                    instances: (0..*count)
                        .map(|n| instance(name, n, uds, version))
                        .collect(),
                })
                .collect(),
            vips: Vec::new(),
            access: Vec::new(),
            notes: Vec::new(),
        }
    }

    type Capacity = Vec<(String, u32, u32)>;

    fn summary(plan: &UpgradePlan) -> Vec<(Vec<u32>, usize, Capacity)> {
        plan.steps
            .iter()
            .map(|s| {
                (
                    s.upgrade_domains.clone(),
                    s.instances.len(),
                    s.capacity
                        .iter()
                        .map(|c| (c.role.clone(), c.ready, c.total))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn auto_takes_down_one_upgrade_domain_per_step() {
        let now = deployment(&[("Web", 10), ("Worker", 3)], 5, "v1");
        let next = deployment(&[("Web", 10), ("Worker", 3)], 5, "v2");
        let plan = plan(&now, &next, UpgradeMode::Auto, None, ChangeKind::Upgrade);
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        let w = |ready: u32, workers: u32| {
            vec![
                ("Web".to_owned(), ready, 10),
                ("Worker".to_owned(), workers, 3),
            ]
        };
        assert_eq!(
            summary(&plan),
            [
                (vec![0], 3, w(8, 2)),
                (vec![1], 3, w(8, 2)),
                (vec![2], 3, w(8, 2)),
                (vec![3], 2, w(8, 3)),
                (vec![4], 2, w(8, 3)),
            ]
        );
        assert_eq!(
            plan.steps[0].instances,
            ["Web_IN_0", "Web_IN_5", "Worker_IN_0"]
        );
    }

    #[test]
    fn simultaneous_is_one_step_and_says_it_means_downtime() {
        let now = deployment(&[("Web", 4)], 2, "v1");
        let next = deployment(&[("Web", 4)], 2, "v2");
        let plan = plan(
            &now,
            &next,
            UpgradeMode::Simultaneous,
            None,
            ChangeKind::Upgrade,
        );
        assert_eq!(
            summary(&plan),
            [(vec![0, 1], 4, vec![("Web".to_owned(), 0, 4)])]
        );
        assert!(plan.notes[0].starts_with("simultaneous: every changed instance stops at once"));
    }

    #[test]
    fn one_role_upgrades_alone_and_unchanged_instances_keep_running() {
        let now = deployment(&[("Web", 4), ("Worker", 2)], 2, "v1");
        let next = deployment(&[("Web", 4), ("Worker", 2)], 2, "v2");
        let plan = plan(
            &now,
            &next,
            UpgradeMode::Auto,
            Some("Worker"),
            ChangeKind::Upgrade,
        );
        assert_eq!(plan.steps[0].instances, ["Worker_IN_0"]);
        assert_eq!(plan.steps[1].instances, ["Worker_IN_1"]);
        let after = target_plan(&now, &next, Some("Worker"), ChangeKind::Upgrade);
        assert_eq!(after.roles[0], now.roles[0], "the web role was touched");
        assert!(after.roles[1].instances.iter().all(|i| i.incarnation == 2));
        // Same package and configuration: nothing to do.
        let same = super::plan(&now, &now, UpgradeMode::Auto, None, ChangeKind::Upgrade);
        assert!(same.steps.iter().all(|s| s.instances.is_empty()));
        assert!(same.notes.iter().any(|n| n.starts_with("nothing changes")));
    }

    #[test]
    fn what_cannot_change_in_place_is_refused_with_the_reason() {
        let now = deployment(&[("Web", 4), ("Worker", 1)], 2, "v1");
        // (what changes, the refusal)
        let mut cases: Vec<(DeploymentPlan, Option<&str>, &str)> = vec![(
            deployment(&[("Web", 4), ("Worker", 1)], 3, "v2"),
            None,
            "the upgrade domain count changes from 2 to 3: Azure does not change it in place",
        )];
        cases.push((
            deployment(&[("Web", 4)], 2, "v2"),
            None,
            "role Worker is not in the new service definition: weft does not remove roles in an upgrade yet (and Azure does not rename them): delete and deploy again",
        ));
        cases.push((
            deployment(&[("Web", 4), ("Worker", 1)], 2, "v2"),
            Some("Api"),
            "the deployment has no role `Api` to upgrade",
        ));
        let mut shrunk = deployment(&[("Web", 4), ("Worker", 1)], 2, "v2");
        for i in &mut shrunk.roles[0].instances {
            i.local_resources[0].size_mb = 50;
        }
        cases.push((
            shrunk,
            None,
            "local storage Web/Scratch shrinks from 100 MB to 50 MB: Azure does not decrease local storage in place",
        ));
        let mut ports = deployment(&[("Web", 4), ("Worker", 1)], 2, "v2");
        for i in &mut ports.roles[0].instances {
            i.endpoints[0].local_port = Some(8080);
        }
        cases.push((
            ports,
            None,
            "role Web changes its endpoints (HttpIn input/http:* → HttpIn input/http:8080): weft does not change endpoints in place yet: deploy to staging and swap, or delete and deploy",
        ));
        for (next, role, refusal) in cases {
            let plan = plan(&now, &next, UpgradeMode::Auto, role, ChangeKind::Upgrade);
            assert_eq!(plan.refused, [refusal]);
        }
    }

    #[test]
    fn a_configuration_change_changes_settings_in_place_and_scales_by_domain() {
        let now = deployment(&[("Web", 10)], 5, "v1");
        let mut next = deployment(&[("Web", 4)], 5, "v1");
        for i in &mut next.roles[0].instances {
            i.settings.insert("Greeting".into(), "bonjour".into());
        }
        let plan = plan(
            &now,
            &next,
            UpgradeMode::Auto,
            None,
            ChangeKind::Configuration,
        );
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        let steps: Vec<(Vec<&str>, Vec<&str>)> = plan
            .steps
            .iter()
            .map(|s| {
                (
                    s.instances.iter().map(String::as_str).collect(),
                    s.changed_in_place.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            [
                (vec!["Web_IN_5"], vec!["Web_IN_0"]),
                (vec!["Web_IN_6"], vec!["Web_IN_1"]),
                (vec!["Web_IN_7"], vec!["Web_IN_2"]),
                (vec!["Web_IN_8"], vec!["Web_IN_3"]),
                (vec!["Web_IN_4", "Web_IN_9"], vec![]),
            ]
        );
        // Ready while walked: all but the removed; the count shrinks.
        let capacity: Vec<(u32, u32)> = plan
            .steps
            .iter()
            .map(|s| (s.capacity[0].ready, s.capacity[0].total))
            .collect();
        assert_eq!(capacity, [(9, 9), (8, 8), (7, 7), (6, 6), (4, 4)]);
        let after = target_plan(&now, &next, None, ChangeKind::Configuration);
        assert!(after.roles[0].instances.iter().all(|i| i.incarnation == 1));
        // The same change as an upgrade recycles.
        let upgrade = super::plan(&now, &next, UpgradeMode::Auto, None, ChangeKind::Upgrade);
        assert_eq!(upgrade.steps[0].instances, ["Web_IN_0", "Web_IN_5"]);
        // Scaling out adds the new instances to their domains.
        let more = deployment(&[("Web", 12)], 5, "v1");
        let plan = super::plan(
            &now,
            &more,
            UpgradeMode::Auto,
            None,
            ChangeKind::Configuration,
        );
        let added: Vec<Vec<String>> = plan.steps.iter().map(|s| s.added.clone()).collect();
        assert_eq!(added[0], ["Web_IN_10"]);
        assert_eq!(added[1], ["Web_IN_11"]);
        assert!(plan.steps.iter().all(|s| s.instances.is_empty()));
    }

    proptest::proptest! {
        /// Whatever the counts: every changed instance goes down in exactly
        /// one step, the step of its upgrade domain, and a role keeps all but
        /// one domain's worth of instances Ready.
        #[test]
        fn every_instance_goes_down_once_in_its_domain(
            web in 0u32..30, worker in 0u32..30, uds in 1u32..20,
        ) {
            let now = deployment(&[("Web", web), ("Worker", worker)], uds, "v1");
            let next = deployment(&[("Web", web), ("Worker", worker)], uds, "v2");
            let plan = plan(&now, &next, UpgradeMode::Auto, None, ChangeKind::Upgrade);
            proptest::prop_assert!(plan.refused.is_empty());
            proptest::prop_assert_eq!(plan.steps.len(), uds as usize);
            let mut down = BTreeSet::new();
            for (ud, step) in plan.steps.iter().enumerate() {
                for id in &step.instances {
                    proptest::prop_assert!(down.insert(id.clone()), "{} down twice", id);
                    let n: u32 = id.rsplit('_').next().unwrap().parse().unwrap();
                    proptest::prop_assert_eq!(n % uds, ud as u32);
                }
                for c in &step.capacity {
                    proptest::prop_assert!(c.ready + c.total.div_ceil(uds) >= c.total, "{:?}", c);
                }
            }
            proptest::prop_assert_eq!(down.len(), (web + worker) as usize);
            // Walking every step gives the target plan.
            let after = target_plan(&now, &next, None, ChangeKind::Upgrade);
            let mut walked = now.clone();
            for step in &plan.steps {
                switch(&mut walked, &after, &step.upgrade_domains, ChangeKind::Upgrade);
            }
            proptest::prop_assert_eq!(walked, after);
        }
    }
}
