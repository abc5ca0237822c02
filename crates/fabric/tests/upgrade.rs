//! In-place upgrades with the fake agent: auto walks one upgrade domain at
//! a time behind its health gate, manual waits for walks in order, a failed
//! gate stops (and with auto-rollback restores), rollback walks back only
//! what was touched, and a controller killed mid-upgrade resumes it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::*;
use weft_fabric::events::{Event, EventKind};
use weft_fabric::upgrade::{HealthGate, UpgradeMode};
use weft_fabric::view::{OperationKind, OperationStatus, UpgradeDomainState};
use weft_fabric::{ChangeConfigurationRequest, Controller, FabricError, Slot, UpgradeRequest};

const GATE: HealthGate = HealthGate {
    min_healthy_ms: 30,
    domain_timeout_ms: 3_000,
    timeout_ms: 20_000,
};

/// A web role of `web` instances over 5 UDs (and one worker), plus a v2
/// package of it.
struct Two {
    f: Fixture,
    v2: PathBuf,
}

fn two(web: u32) -> Two {
    let mut f = fixture();
    let definition = csdef_with(f.port, 5);
    f.package = build(f.dir.path(), "v1", &definition, "v1");
    f.cscfg = cscfg(web, 1);
    let v2 = build(f.dir.path(), "v2", &definition, "v2");
    Two { f, v2 }
}

fn upgrade(t: &Two, mode: UpgradeMode) -> UpgradeRequest {
    UpgradeRequest {
        service: "shop".to_owned(),
        slot: Slot::Production,
        package: t.v2.clone(),
        configuration: cscfg_greeting(10, 1, "hello again"),
        mode,
        role: None,
        auto_rollback: false,
        gate: Some(GATE),
    }
}

async fn deployed(t: &Two, agent: &FakeAgent) -> Controller<FakeAgent> {
    let dir = state_dir(&t.f);
    let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
        .await
        .unwrap();
    let op = c.deploy(request(&t.f, "shop")).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    c
}

/// Replays instance events: the most UDs of `role` down at once and the
/// fewest Ready instances, after the first moment all were Ready.
fn worst(events: &[Event], role: &str, total: usize) -> (usize, usize) {
    let mut ready: BTreeMap<String, (bool, u32)> = BTreeMap::new();
    let (mut most_down, mut fewest) = (0, usize::MAX);
    let mut started = false;
    for e in events {
        let (Some(id), Some(r), Some(ud)) = (&e.instance, e.ready, e.upgrade_domain) else {
            continue;
        };
        if !id.starts_with(&format!("{role}_IN_")) {
            continue;
        }
        ready.insert(id.clone(), (r, ud));
        let up = ready.values().filter(|(r, _)| *r).count();
        if up == total {
            started = true;
        }
        if started {
            let down: BTreeSet<u32> = ready
                .values()
                .filter(|(r, _)| !r)
                .map(|(_, ud)| *ud)
                .collect();
            most_down = most_down.max(down.len());
            fewest = fewest.min(up);
        }
    }
    (most_down, fewest)
}

fn kinds(events: &[Event], kind: EventKind) -> Vec<Option<u32>> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.upgrade_domain)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_upgrade_walks_one_upgrade_domain_at_a_time() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let before = c.services()[0].deployments[0].package_digest.clone();
    let op = c.upgrade(upgrade(&t, UpgradeMode::Auto)).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");

    let d = &c.services()[0].deployments[0];
    assert_ne!(
        d.package_digest, before,
        "the deployment still names the old package"
    );
    assert!(d.upgrade_status.is_none());
    let events = c.events("shop", Slot::Production);
    let (most_down, fewest) = worst(&events, "Web", 10);
    assert_eq!(most_down, 1, "two upgrade domains were down together");
    assert!(
        fewest >= 8,
        "only {fewest} web instances were ready at one point"
    );
    assert_eq!(
        kinds(&events, EventKind::DomainHealthy),
        [Some(0), Some(1), Some(2), Some(3), Some(4)]
    );
    // Every instance recycled exactly once, to incarnation 2, UD by UD.
    let upgraded: Vec<(String, u64)> = agent
        .incarnations()
        .into_iter()
        .filter(|(_, inc)| *inc == 2)
        .collect();
    assert_eq!(upgraded.len(), 11, "{upgraded:?}");
    let order: Vec<u32> = upgraded
        .iter()
        .filter_map(|(id, _)| id.strip_prefix("Web_IN_")?.parse::<u32>().ok())
        .map(|n| n % 5)
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "not walked in UD order: {order:?}"
    );
    assert!(who(d.vips[0].address).await.starts_with("Web_IN_"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_upgrade_is_refused_while_one_runs() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let first = c.upgrade(upgrade(&t, UpgradeMode::Manual)).await.unwrap();
    let err = c.upgrade(upgrade(&t, UpgradeMode::Auto)).await.unwrap_err();
    assert_eq!(err.http_status(), 409);
    assert!(
        matches!(&err, FabricError::UpgradeInProgress { operation, .. } if *operation == first),
        "{err}"
    );
    assert!(
        err.to_string().contains("manual mode, at upgrade domain 0"),
        "{err}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_upgrade_walks_when_asked_and_in_order() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let op = c.upgrade(upgrade(&t, UpgradeMode::Manual)).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let status = c.services()[0].deployments[0]
        .upgrade_status
        .clone()
        .unwrap();
    assert_eq!(
        (
            status.current_upgrade_domain,
            status.current_upgrade_domain_state
        ),
        (0, UpgradeDomainState::Before)
    );
    // Nothing recycled until walked.
    assert!(agent.incarnations().iter().all(|(_, i)| *i == 1));
    let err = c.walk("shop", Slot::Production, 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot walk upgrade domain 1: upgrade domains are walked in order: the next is 0"
    );
    for ud in 0..5 {
        let walk = c.walk("shop", Slot::Production, ud).await.unwrap();
        let done = c.wait(&walk).await.unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
        let upgraded: BTreeSet<String> = agent
            .incarnations()
            .into_iter()
            .filter(|(_, i)| *i == 2)
            .map(|(id, _)| id)
            .collect();
        let expected: BTreeSet<String> = (0..10)
            .filter(|n| n % 5 <= ud)
            .map(|n| format!("Web_IN_{n}"))
            .chain(std::iter::once("Worker_IN_0".to_owned()))
            .collect();
        assert_eq!(upgraded, expected, "after walking UD {ud}");
    }
    assert!(c.services()[0].deployments[0].upgrade_status.is_none());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_health_gate_stops_at_the_first_domain_and_says_why() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    agent.behave(
        "Web",
        Behaviour::Fail("entry point exited with status 3".into()),
    );
    let op = c.upgrade(upgrade(&t, UpgradeMode::Auto)).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Failed);
    assert_eq!(
        done.error.as_deref(),
        Some(
            "upgrade domain(s) [0]: role instance Web_IN_0 is FailedStartingRole: entry point exited with status 3"
        )
    );
    let status = c.services()[0].deployments[0]
        .upgrade_status
        .clone()
        .unwrap();
    assert_eq!(status.walked, Vec::<u32>::new());
    assert!(status.failed.is_some());
    // Only UD 0 was touched.
    let touched: BTreeSet<String> = agent
        .incarnations()
        .into_iter()
        .filter(|(_, i)| *i > 1)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        touched,
        ["Web_IN_0", "Web_IN_5", "Worker_IN_0"]
            .map(String::from)
            .into()
    );
    // A new upgrade waits for the stopped one to be rolled back.
    let err = c.upgrade(upgrade(&t, UpgradeMode::Auto)).await.unwrap_err();
    assert!(
        err.to_string().contains("stopped by a failed health gate"),
        "{err}"
    );
    // Every other admission says the same (one check for all).
    let err = c
        .update_status(
            "shop",
            Slot::Production,
            weft_fabric::view::DeploymentStatus::Suspended,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("stopped by a failed health gate"),
        "{err}"
    );
    agent.behave("Web", Behaviour::Ready);
    let rb = c.rollback("shop", Slot::Production).await.unwrap();
    let done = c.wait(&rb).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert_eq!(done.messages, ["walking back upgrade domain(s) [0]"]);
    let d = &c.services()[0].deployments[0];
    assert!(d.upgrade_status.is_none());
    assert!(d.roles.iter().flat_map(|r| &r.instances).all(|i| i.ready));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_rollback_restores_only_the_failed_domain() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let before = c.services()[0].deployments[0].package_digest.clone();
    // Instances of the new package never get Ready; the old one's do.
    agent.behave(&digest(&t.v2), Behaviour::Hold);
    let mut req = upgrade(&t, UpgradeMode::Auto);
    req.auto_rollback = true;
    req.gate = Some(HealthGate {
        domain_timeout_ms: 300,
        ..GATE
    });
    let op = c.upgrade(req).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Failed);
    let error = done.error.unwrap();
    assert!(
        error.starts_with("upgrade domain(s) [0]: not ready before the deadline: Web_IN_0 is StartingRole: starting"),
        "{error}"
    );
    assert!(
        error.ends_with(&format!(
            "; upgrade domain(s) [0] restored to package {}",
            &before[..12]
        )),
        "{error}"
    );
    let d = &c.services()[0].deployments[0];
    assert_eq!(d.package_digest, before);
    assert!(d.upgrade_status.is_none());
    let touched: BTreeSet<String> = agent
        .incarnations()
        .into_iter()
        .filter(|(_, i)| *i > 1)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        touched,
        ["Web_IN_0", "Web_IN_5", "Worker_IN_0"]
            .map(String::from)
            .into()
    );
    let events = c.events("shop", Slot::Production);
    assert_eq!(kinds(&events, EventKind::DomainRestored), [Some(0)]);
    until("the restored instances are ready", || {
        c.services()[0].deployments[0]
            .roles
            .iter()
            .flat_map(|r| &r.instances)
            .all(|i| i.ready)
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_walks_back_only_the_walked_domains_in_reverse() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    c.upgrade(upgrade(&t, UpgradeMode::Manual)).await.unwrap();
    for ud in 0..2 {
        let walk = c.walk("shop", Slot::Production, ud).await.unwrap();
        assert_eq!(
            c.wait(&walk).await.unwrap().status,
            OperationStatus::Succeeded
        );
    }
    let rb = c.rollback("shop", Slot::Production).await.unwrap();
    assert_eq!(
        c.wait(&rb).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let events = c.events("shop", Slot::Production);
    assert_eq!(
        kinds(&events, EventKind::DomainRestored),
        [Some(1), Some(0)]
    );
    // UDs 2..4 were never recycled; 0 and 1 twice (up, then back).
    let mut starts: BTreeMap<String, usize> = BTreeMap::new();
    for (id, _) in agent.incarnations() {
        *starts.entry(id).or_default() += 1;
    }
    for n in 0..10 {
        let expected = if n % 5 < 2 { 3 } else { 1 };
        assert_eq!(
            starts[&format!("Web_IN_{n}")],
            expected,
            "Web_IN_{n}: {starts:?}"
        );
    }
    let err = c.rollback("shop", Slot::Production).await.unwrap_err();
    assert_eq!(err.http_status(), 409);
    c.shutdown().await;
}

#[test]
fn an_upgrade_killed_mid_way_resumes_without_walking_a_domain_twice() {
    let t = two(10);
    let dir = state_dir(&t.f);
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let op = first.block_on(async {
        let agent = FakeAgent::new();
        let c = deployed(&t, &agent).await;
        // UD 2's new instances hang: the upgrade sits in UD 2.
        agent.behave("Web_IN_2", Behaviour::Hold);
        let mut req = upgrade(&t, UpgradeMode::Auto);
        req.gate = Some(HealthGate {
            domain_timeout_ms: 60_000,
            ..GATE
        });
        let op = c.upgrade(req).await.unwrap();
        until("the upgrade is in UD 2", || {
            c.services()[0].deployments[0]
                .upgrade_status
                .as_ref()
                .is_some_and(|s| {
                    s.current_upgrade_domain == 2
                        && s.current_upgrade_domain_state == UpgradeDomainState::During
                })
        })
        .await;
        op
    });
    drop(first); // SIGKILL: no shutdown
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let agent = FakeAgent::new();
            let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
                .await
                .unwrap();
            let done = c.wait(&op).await.unwrap();
            assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
            let events = c.events("shop", Slot::Production);
            assert_eq!(
                kinds(&events, EventKind::DomainHealthy),
                [Some(0), Some(1), Some(2), Some(3), Some(4)],
                "a domain was walked twice or skipped"
            );
            let recycling: Vec<Option<u32>> = events
                .iter()
                .filter(|e| {
                    e.kind == EventKind::DomainWalking && e.message.contains("recycling Web_IN_")
                })
                .map(|e| e.upgrade_domain)
                .collect();
            assert_eq!(recycling, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
            // The second agent got UDs 0 to 2 upgraded already and walked
            // only 3 and 4.
            let mut started: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            for (id, inc) in agent.incarnations() {
                started.entry(id).or_default().push(inc);
            }
            for n in 0..10 {
                let expected: &[u64] = if n % 5 <= 2 { &[2] } else { &[1, 2] };
                assert_eq!(started[&format!("Web_IN_{n}")], expected, "Web_IN_{n}");
            }
            c.shutdown().await;
        });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_an_upgrade_cannot_make_are_refused_before_anything_changes() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let mut req = upgrade(&t, UpgradeMode::Auto);
    req.package = build(t.f.dir.path(), "uds", &csdef_with(t.f.port, 3), "v2");
    let err = c.upgrade(req.clone()).await.unwrap_err();
    assert_eq!(err.http_status(), 400);
    assert_eq!(
        err.to_string(),
        "the upgrade cannot be done in place: the upgrade domain count changes from 5 to 3: Azure does not change it in place"
    );
    let other = build(t.f.dir.path(), "ports", &csdef_with(t.f.port + 1, 5), "v3");
    req.configuration = cscfg(10, 1);
    req.package = other;
    let plan = c.plan_upgrade(&req).await.unwrap();
    assert_eq!(plan.refused.len(), 1, "{:?}", plan.refused);
    assert!(
        plan.refused[0].starts_with("the public endpoints (VIPs) change"),
        "{:?}",
        plan.refused
    );
    assert!(agent.incarnations().iter().all(|(_, i)| *i == 1));
    assert!(c.services()[0].deployments[0].upgrade_status.is_none());
    c.shutdown().await;
}

fn configuration(t: &Two, cscfg: Vec<u8>) -> ChangeConfigurationRequest {
    let _ = t;
    ChangeConfigurationRequest {
        service: "shop".to_owned(),
        slot: Slot::Production,
        configuration: cscfg,
        mode: UpgradeMode::Auto,
        auto_rollback: false,
        gate: Some(GATE),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_change_reaches_running_instances_without_recycling() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let op = c
        .change_configuration(configuration(&t, cscfg_greeting(10, 1, "bonjour")))
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert_eq!(done.kind, OperationKind::ChangeDeploymentConfiguration);
    // Nobody recycled; every web instance got the new Greeting, UD by UD.
    assert!(agent.incarnations().iter().all(|(_, i)| *i == 1));
    let changed: Vec<(String, String)> = agent
        .in_place()
        .into_iter()
        .map(|(id, settings)| (id, settings["Greeting"].clone()))
        .collect();
    let uds: Vec<u32> = changed
        .iter()
        .map(|(id, _)| id.strip_prefix("Web_IN_").unwrap().parse::<u32>().unwrap() % 5)
        .collect();
    assert_eq!(changed.len(), 10, "{changed:?}");
    assert!(changed.iter().all(|(_, g)| g == "bonjour"));
    assert!(
        uds.windows(2).all(|w| w[0] <= w[1]),
        "not walked in UD order: {uds:?}"
    );
    let events = c.events("shop", Slot::Production);
    let (most_down, fewest) = worst(&events, "Web", 10);
    assert_eq!((most_down, fewest), (0, 10), "an instance left its VIP");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_in_drains_and_removes_the_highest_instances_and_scale_out_adds_them_back() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let vip = c.services()[0].deployments[0].vips[0].address;
    // An open connection to Web_IN_9 keeps it draining until closed.
    let (mut line, mut conn) = hold(vip).await;
    while line != "Web_IN_9" {
        (line, conn) = hold(vip).await;
    }
    let plan = c
        .plan_configuration_change(configuration(&t, cscfg(4, 1)))
        .await
        .unwrap();
    let down: Vec<Vec<String>> = plan.steps.iter().map(|s| s.instances.clone()).collect();
    assert_eq!(
        down,
        [
            vec!["Web_IN_5"],
            vec!["Web_IN_6"],
            vec!["Web_IN_7"],
            vec!["Web_IN_8"],
            vec!["Web_IN_4", "Web_IN_9"]
        ]
    );
    let op = c
        .change_configuration(configuration(&t, cscfg(4, 1)))
        .await
        .unwrap();
    until("UD 4 drains", || {
        c.events("shop", Slot::Production).iter().any(|e| {
            e.kind == EventKind::DomainWalking && e.message.contains("removing Web_IN_4, Web_IN_9")
        })
    })
    .await;
    assert!(
        agent.running().contains("Web_IN_9"),
        "Web_IN_9 stopped while a connection was open"
    );
    drop(conn);
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    let ids: Vec<String> = c.services()[0].deployments[0].roles[0]
        .instances
        .iter()
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(ids, ["Web_IN_0", "Web_IN_1", "Web_IN_2", "Web_IN_3"]);
    until("the agent stopped the removed ones", || {
        agent.running().len() == 5
    })
    .await;
    let events = c.events("shop", Slot::Production);
    let removed: Vec<&str> = events
        .iter()
        .filter(|e| e.message.contains("removed from the deployment"))
        .filter_map(|e| e.instance.as_deref())
        .collect();
    assert_eq!(
        removed,
        [
            "Web_IN_5", "Web_IN_6", "Web_IN_7", "Web_IN_8", "Web_IN_4", "Web_IN_9"
        ]
    );

    // Scale out again: new instances in their own domains, nobody recycled.
    let op = c
        .change_configuration(configuration(&t, cscfg(7, 1)))
        .await
        .unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let d = &c.services()[0].deployments[0];
    let placed: Vec<(String, u32)> = d.roles[0]
        .instances
        .iter()
        .map(|i| (i.id.clone(), i.upgrade_domain))
        .collect();
    assert_eq!(placed.len(), 7);
    assert_eq!(placed[6], ("Web_IN_6".to_owned(), 1));
    assert!(d.roles[0].instances.iter().all(|i| i.ready));
    assert!(agent.incarnations().iter().all(|(_, i)| *i == 1));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_upgrades_every_domain_at_once_and_says_it_means_downtime() {
    let t = two(10);
    let agent = FakeAgent::new();
    let c = deployed(&t, &agent).await;
    let op = c
        .upgrade(upgrade(&t, UpgradeMode::Simultaneous))
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert!(
        done.messages[0].starts_with("simultaneous: every changed instance stops at once"),
        "{:?}",
        done.messages
    );
    let events = c.events("shop", Slot::Production);
    let walking: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == EventKind::DomainWalking)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(walking.len(), 1, "{walking:?}");
    assert!(
        walking[0]
            .starts_with("walking upgrade domain(s) [0, 1, 2, 3, 4]: recycling Web_IN_0, Web_IN_1")
    );
    let (most_down, fewest) = worst(&events, "Web", 10);
    assert_eq!(most_down, 5);
    assert!(fewest < 10);
    assert!(agent.incarnations().iter().filter(|(_, i)| *i == 2).count() == 11);
    c.shutdown().await;
}
