//! Slots and VIP swap, instance operations (reboot, reimage, delete),
//! suspend and start, against the fake agent.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_fabric::events::EventKind;
use weft_fabric::view::{
    DeploymentStatus, DeploymentView, OperationKind, OperationStatus, SwapRequest,
};
use weft_fabric::{Controller, DeployRequest, FabricError, Slot};

async fn open(f: &Fixture, agent: &FakeAgent) -> Controller<FakeAgent> {
    let dir = state_dir(f);
    Controller::open(config(&dir), store_at(&dir), agent.clone())
        .await
        .unwrap()
}

fn deploy_to(f: &Fixture, slot: Slot, package: &std::path::Path) -> DeployRequest {
    DeployRequest {
        service: "shop".into(),
        slot,
        package: package.to_owned(),
        configuration: f.cscfg.clone(),
        label: String::new(),
    }
}

async fn deployed(c: &Controller<FakeAgent>, req: DeployRequest) -> String {
    let op = c.deploy(req).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    done.deployment_id
}

fn slot_view(c: &Controller<FakeAgent>, slot: Slot) -> Option<DeploymentView> {
    c.services()
        .into_iter()
        .flat_map(|s| s.deployments)
        .find(|d| d.slot == slot)
}

/// The Swap Deployment body naming the deployments in the slots now.
fn seen(c: &Controller<FakeAgent>) -> SwapRequest {
    SwapRequest {
        production: slot_view(c, Slot::Production).map(|d| d.id),
        source_deployment: slot_view(c, Slot::Staging).map_or_else(String::new, |d| d.id),
    }
}

/// Production (v1) and staging (v2) of the fixture service.
async fn both(f: &Fixture, c: &Controller<FakeAgent>) -> (String, String) {
    let v2 = build(f.dir.path(), "shop-v2", &csdef(f.port), "v2");
    let prod = deployed(c, deploy_to(f, Slot::Production, &f.package)).await;
    let stage = deployed(c, deploy_to(f, Slot::Staging, &v2)).await;
    (prod, stage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_runs_beside_production_with_the_same_instance_names_on_its_own_vip() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let (prod, stage) = both(&f, &c).await;
    let names = BTreeSet::from(["Web_IN_0".into(), "Web_IN_1".into(), "Worker_IN_0".into()]);
    assert_eq!(agent.running_in(&prod), names);
    assert_eq!(agent.running_in(&stage), names);
    let p = slot_view(&c, Slot::Production).unwrap();
    let s = slot_view(&c, Slot::Staging).unwrap();
    assert_eq!(
        p.vips[0].address.port(),
        f.port,
        "production keeps its port"
    );
    assert_ne!(s.vips[0].address.port(), f.port, "staging has its own");
    assert_eq!(s.vips[0].requested_port, f.port);
    assert!(
        s.notes.is_empty(),
        "a staging address is no remap: {:?}",
        s.notes
    );
    assert_eq!(
        who_full(p.vips[0].address).await.split('@').nth(1),
        Some(&prod[..8])
    );
    assert_eq!(
        who_full(s.vips[0].address).await.split('@').nth(1),
        Some(&stage[..8])
    );
    c.shutdown().await;

    // The staging address is the slot's: a restarted controller binds it
    // again.
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let again = slot_view(&c, Slot::Staging).unwrap();
    assert_eq!(again.vips[0].address, s.vips[0].address);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_exchanges_the_vips_and_open_connections_stay_where_they_were() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let (prod, stage) = both(&f, &c).await;
    let prod_vip = slot_view(&c, Slot::Production).unwrap().vips[0].address;
    let stage_vip = slot_view(&c, Slot::Staging).unwrap().vips[0].address;
    let (before, mut held) = hold_full(prod_vip).await;
    assert!(before.ends_with(&prod[..8]), "{before}");

    let op = c.swap("shop", &seen(&c)).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(
        (done.kind, done.status),
        (OperationKind::SwapDeployment, OperationStatus::Succeeded),
        "{done:?}"
    );
    let p = slot_view(&c, Slot::Production).unwrap();
    let s = slot_view(&c, Slot::Staging).unwrap();
    assert_eq!(
        (p.id.as_str(), s.id.as_str()),
        (stage.as_str(), prod.as_str())
    );
    assert_eq!(
        (p.vips[0].address, s.vips[0].address),
        (prod_vip, stage_vip)
    );
    assert_eq!(
        (p.status, s.status),
        (DeploymentStatus::Running, DeploymentStatus::Running)
    );
    // New connections: each VIP reaches the deployment now in its slot.
    for _ in 0..4 {
        assert!(who_full(prod_vip).await.ends_with(&stage[..8]));
        assert!(who_full(stage_vip).await.ends_with(&prod[..8]));
    }
    // The connection opened before the swap is still open to the old one.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(200), held.read(&mut byte)).await;
    assert!(read.is_err(), "the held connection was closed: {read:?}");
    drop(held);
    // No instance was restarted.
    assert_eq!(
        agent.starts().values().copied().collect::<Vec<_>>(),
        [2, 2, 2]
    );
    // Both histories say it.
    for slot in [Slot::Production, Slot::Staging] {
        let swapped: Vec<_> = c
            .events("shop", slot)
            .into_iter()
            .filter(|e| e.kind == EventKind::Swapped)
            .collect();
        assert_eq!(swapped.len(), 1, "{slot}: {swapped:?}");
    }
    c.shutdown().await;

    // Durable: a restarted controller has the slots swapped, each on its
    // slot's address.
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let p = slot_view(&c, Slot::Production).unwrap();
    let s = slot_view(&c, Slot::Staging).unwrap();
    assert_eq!(
        (p.id.as_str(), s.id.as_str()),
        (stage.as_str(), prod.as_str())
    );
    assert_eq!(
        (p.vips[0].address, s.vips[0].address),
        (prod_vip, stage_vip)
    );
    // Once its instances are back, production serves the swapped-in one
    // (and never the other).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = who_full(prod_vip).await;
        assert!(!answer.ends_with(&prod[..8]), "{answer}");
        if answer.ends_with(&stage[..8]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "production never answered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_history_belongs_to_the_deployment_and_follows_it_through_a_swap() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let (prod, stage) = both(&f, &c).await;
    let op = c.swap("shop", &seen(&c)).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    // Production now shows the deployment that came from staging: its own
    // past, from its deploy to staging on.
    let history = |c: &Controller<FakeAgent>, slot| -> Vec<(String, Slot, EventKind)> {
        c.events("shop", slot)
            .into_iter()
            .map(|e| (e.deployment_id, e.slot, e.kind))
            .collect()
    };
    let p = history(&c, Slot::Production);
    assert!(p.iter().all(|(id, _, _)| *id == stage), "{p:?}");
    assert_eq!(
        p.first().map(|(_, slot, kind)| (*slot, *kind)),
        Some((Slot::Staging, EventKind::DeployStarted)),
        "{p:?}"
    );
    assert_eq!(
        p.last().map(|(_, slot, kind)| (*slot, *kind)),
        Some((Slot::Production, EventKind::Swapped)),
        "{p:?}"
    );
    let s = history(&c, Slot::Staging);
    assert!(s.iter().all(|(id, _, _)| *id == prod), "{s:?}");
    assert_eq!(
        s.first().map(|(_, slot, kind)| (*slot, *kind)),
        Some((Slot::Production, EventKind::DeployStarted))
    );
    c.shutdown().await;
    // Durable.
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    assert_eq!(history(&c, Slot::Production), p);

    // A deleted deployment's history stays while its slot is empty...
    let op = c.delete_deployment("shop", Slot::Staging).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let gone = history(&c, Slot::Staging);
    assert!(gone.iter().all(|(id, _, _)| *id == prod), "{gone:?}");
    assert_eq!(gone.last().map(|(_, _, k)| *k), Some(EventKind::Deleted));
    // ...and goes when a new deployment takes the slot, from the store too.
    let v3 = build(f.dir.path(), "shop-v3", &csdef(f.port), "v3");
    let third = deployed(&c, deploy_to(&f, Slot::Staging, &v3)).await;
    let s = history(&c, Slot::Staging);
    assert!(s.iter().all(|(id, _, _)| *id == third), "{s:?}");
    c.shutdown().await;
    let (stored, _) = store_at(&state_dir(&f))
        .range(weft_fabric::events::EVENTS)
        .unwrap();
    let stored: Vec<weft_fabric::events::Event> = stored
        .iter()
        .map(|kv| serde_json::from_slice(&kv.value).unwrap())
        .collect();
    assert!(!stored.is_empty());
    assert!(
        stored.iter().all(|e| e.deployment_id != prod),
        "the deleted deployment's history is still stored"
    );
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    assert_eq!(history(&c, Slot::Staging), s);
    assert!(
        history(&c, Slot::Production)
            .iter()
            .all(|(id, _, _)| *id == stage)
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_swap_is_refused_instead_of_swapping_back() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let (prod, stage) = both(&f, &c).await;
    let request = seen(&c);
    assert_eq!(
        (
            request.production.as_deref(),
            request.source_deployment.as_str()
        ),
        (Some(prod.as_str()), stage.as_str())
    );
    let op = c.swap("shop", &request).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let after = c.services();
    // The same request again (a client retrying after a lost answer).
    let err = c.swap("shop", &request).await.unwrap_err();
    assert!(matches!(err, FabricError::SwapMismatch { .. }), "{err}");
    assert_eq!(err.http_status(), 409);
    assert!(
        err.to_string().contains(&format!(
            "the source deployment is {stage} but deployment {prod} is in staging"
        )),
        "{err}"
    );
    assert_eq!(c.services(), after);
    assert_eq!(slot_view(&c, Slot::Production).unwrap().id, stage);
    // The request naming the slots as they are now swaps back.
    let fresh = SwapRequest {
        production: Some(stage.clone()),
        source_deployment: prod.clone(),
    };
    let op = c.swap("shop", &fresh).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let wrong_production = SwapRequest {
        production: None,
        ..seen(&c)
    };
    let err = c.swap("shop", &wrong_production).await.unwrap_err();
    assert!(
        err.to_string().contains("names no production deployment"),
        "{err}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_swap_into_the_empty_production_slot_never_overwrites_a_production_deploy_in_flight() {
    let f = fixture();
    let agent = FakeAgent::new();
    let dir = state_dir(&f);
    let store = GatedStore::new(store_at(&dir));
    let c = std::sync::Arc::new(
        Controller::open(config(&dir), store.clone(), agent.clone())
            .await
            .unwrap(),
    );
    let v2 = build(f.dir.path(), "shop-v2", &csdef(f.port), "v2");
    let stage = deployed(&c, deploy_to(&f, Slot::Staging, &v2)).await;
    let seen_empty = seen(&c);
    assert_eq!(seen_empty.production, None);
    // A production deploy that has written its record but not yet shown
    // it in memory.
    let (reached, release) = store.arm();
    let deploying = tokio::spawn({
        let (c, req) = (c.clone(), deploy_to(&f, Slot::Production, &f.package));
        async move { c.deploy(req).await }
    });
    tokio::task::spawn_blocking(move || reached.recv().unwrap())
        .await
        .unwrap();
    // A swap asked meanwhile waits for it (it is admitted after it).
    let swapping = tokio::spawn({
        let c = c.clone();
        async move { c.swap("shop", &seen_empty).await }
    });
    let early = tokio::time::timeout(Duration::from_millis(500), async {
        while !swapping.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    release.send(()).unwrap();
    let op = deploying.await.unwrap().unwrap();
    let prod = c.wait(&op).await.unwrap().deployment_id;
    let swapped = swapping.await.unwrap();
    assert!(
        early.is_err(),
        "the swap was decided while the deploy was being written: {swapped:?}"
    );
    let err = swapped.unwrap_err();
    assert!(matches!(err, FabricError::SwapMismatch { .. }), "{err}");
    assert_eq!(slot_view(&c, Slot::Production).unwrap().id, prod);
    assert_eq!(slot_view(&c, Slot::Staging).unwrap().id, stage);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_of_deployments_with_other_endpoints_is_refused_and_changes_nothing() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let other = build(f.dir.path(), "shop-port", &csdef(free_port()), "v2");
    deployed(&c, deploy_to(&f, Slot::Production, &f.package)).await;
    deployed(&c, deploy_to(&f, Slot::Staging, &other)).await;
    let before = c.services();
    let err = c.swap("shop", &seen(&c)).await.unwrap_err();
    assert!(matches!(err, FabricError::SwapRefused { .. }), "{err}");
    assert_eq!(err.http_status(), 409);
    let msg = err.to_string();
    assert!(
        msg.contains("input endpoint Web/HttpIn is http on port")
            && msg.contains("in production but http on port"),
        "{msg}"
    );
    assert_eq!(c.services(), before);
    assert!(
        c.operations()
            .iter()
            .all(|o| o.kind != OperationKind::SwapDeployment)
    );
    // No staging deployment: nothing to swap.
    let err = c.swap("nothing", &seen(&c)).await.unwrap_err();
    assert_eq!(err.http_status(), 404, "{err}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_with_only_staging_moves_it_to_production_on_the_production_port() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let stage = deployed(&c, deploy_to(&f, Slot::Staging, &f.package)).await;
    let stage_vip = slot_view(&c, Slot::Staging).unwrap().vips[0].address;
    assert_ne!(stage_vip.port(), f.port);
    let op = c.swap("shop", &seen(&c)).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    assert!(slot_view(&c, Slot::Staging).is_none());
    let p = slot_view(&c, Slot::Production).unwrap();
    assert_eq!(
        (p.id.as_str(), p.vips[0].address.port()),
        (stage.as_str(), f.port)
    );
    assert!(who_full(p.vips[0].address).await.ends_with(&stage[..8]));
    until("the staging VIP is closed", || {
        std::net::TcpStream::connect(stage_vip).is_err()
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_is_refused_while_an_upgrade_is_in_progress() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    both(&f, &c).await;
    let v3 = build(f.dir.path(), "shop-v3", &csdef(f.port), "v3");
    let op = c
        .upgrade(weft_fabric::UpgradeRequest {
            service: "shop".into(),
            slot: Slot::Production,
            package: v3,
            configuration: f.cscfg.clone(),
            mode: weft_fabric::upgrade::UpgradeMode::Manual,
            role: None,
            auto_rollback: false,
            gate: None,
        })
        .await
        .unwrap();
    c.wait(&op).await.unwrap();
    let before = c.services();
    let err = c.swap("shop", &seen(&c)).await.unwrap_err();
    assert!(
        matches!(err, FabricError::UpgradeInProgress { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("before swapping"), "{err}");
    assert_eq!(c.services(), before);
    c.shutdown().await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A controller killed after accepting a swap and before committing it
/// leaves the operation in progress and both deployments held by it; the
/// next one swaps on open.
#[test]
fn a_swap_accepted_by_a_killed_controller_completes_on_open() {
    let f = fixture();
    let dir = state_dir(&f);
    let first = runtime();
    let (prod, stage) = first.block_on(async {
        let agent = FakeAgent::new();
        let c = open(&f, &agent).await;
        let ids = both(&f, &c).await;
        c.shutdown().await;
        ids
    });
    drop(first);
    // What the accepting step commits, as the killed controller left it.
    let store = store_at(&dir);
    let op_id = "0123456789abcdef0123456789abcdef";
    let mut ops = Vec::new();
    for slot in ["production", "staging"] {
        let key = format!("/weft/deployments/shop/{slot}");
        let (kvs, _) = store.range(&key).unwrap();
        let mut record: serde_json::Value = serde_json::from_slice(&kvs[0].value).unwrap();
        record["operation"] = op_id.into();
        ops.push(weft_store::Op::Put(
            key,
            serde_json::to_vec(&record).unwrap(),
        ));
    }
    let op = serde_json::json!({
        "id": op_id, "kind": "swapDeployment", "status": "InProgress",
        "service": "shop", "slot": "staging", "deployment_id": stage,
        "error": null, "messages": [], "started_ms": 1, "ended_ms": null
    });
    ops.push(weft_store::Op::Put(
        format!("/weft/operations/{op_id}"),
        serde_json::to_vec(&op).unwrap(),
    ));
    store.txn(Vec::new(), ops).unwrap();
    drop(store);

    let second = runtime();
    second.block_on(async {
        let agent = FakeAgent::new();
        let c = open(&f, &agent).await;
        let done = c.wait(op_id).await.unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
        let p = slot_view(&c, Slot::Production).unwrap();
        let s = slot_view(&c, Slot::Staging).unwrap();
        assert_eq!(
            (p.id.as_str(), s.id.as_str()),
            (stage.as_str(), prod.as_str())
        );
        assert_eq!(p.vips[0].address.port(), f.port);
        // Nothing is left busy: another swap is accepted and swaps back.
        let op = c.swap("shop", &seen(&c)).await.unwrap();
        assert_eq!(
            c.wait(&op).await.unwrap().status,
            OperationStatus::Succeeded
        );
        assert_eq!(slot_view(&c, Slot::Production).unwrap().id, prod);
        c.shutdown().await;
    });
}

/// A controller killed after accepting a reboot leaves it in progress; the
/// next one waits for the rebooted instance only, not for an unrelated one
/// that fails meanwhile.
#[test]
fn a_resumed_reboot_waits_for_its_own_instance_only() {
    let f = fixture();
    let dir = state_dir(&f);
    let first = runtime();
    let prod = first.block_on(async {
        let agent = FakeAgent::new();
        let c = open(&f, &agent).await;
        let prod = deployed(&c, deploy_to(&f, Slot::Production, &f.package)).await;
        c.shutdown().await;
        prod
    });
    drop(first);
    // What accepting `weft reboot Web_IN_1` commits, as the killed
    // controller left it.
    let store = store_at(&dir);
    let op_id = "0123456789abcdef0123456789abcdee";
    let key = "/weft/deployments/shop/production".to_owned();
    let (kvs, _) = store.range(&key).unwrap();
    let mut record: serde_json::Value = serde_json::from_slice(&kvs[0].value).unwrap();
    record["operation"] = op_id.into();
    let web1 = &mut record["plan"]["roles"][0]["instances"][1];
    assert_eq!(web1["instance_id"], "Web_IN_1");
    web1["incarnation"] = 2.into();
    let op = serde_json::json!({
        "id": op_id, "kind": "rebootRoleInstance", "status": "InProgress",
        "service": "shop", "slot": "production", "deployment_id": prod,
        "error": null, "messages": [], "started_ms": 1, "ended_ms": null,
        "instances": ["Web_IN_1"]
    });
    store
        .txn(
            Vec::new(),
            vec![
                weft_store::Op::Put(key, serde_json::to_vec(&record).unwrap()),
                weft_store::Op::Put(
                    format!("/weft/operations/{op_id}"),
                    serde_json::to_vec(&op).unwrap(),
                ),
            ],
        )
        .unwrap();
    drop(store);

    runtime().block_on(async {
        let agent = FakeAgent::new();
        agent.behave("Worker", Behaviour::Fail("the disk is full".into()));
        let c = open(&f, &agent).await;
        let done = c.wait(op_id).await.unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
        assert!(
            agent.incarnations().contains(&("Web_IN_1".to_owned(), 2)),
            "{:?}",
            agent.incarnations()
        );
        c.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_and_reimage_recycle_one_instance_and_the_vip_drains_it_first() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let prod = deployed(&c, deploy_to(&f, Slot::Production, &f.package)).await;
    let vip = slot_view(&c, Slot::Production).unwrap().vips[0].address;

    let op = c
        .reboot("shop", Slot::Production, "Web_IN_1")
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(
        (done.kind, done.status),
        (
            OperationKind::RebootRoleInstance,
            OperationStatus::Succeeded
        ),
        "{done:?}"
    );
    assert_eq!(
        agent.incarnations(),
        [
            ("Web_IN_0".into(), 1),
            ("Web_IN_1".into(), 1),
            ("Worker_IN_0".into(), 1),
            ("Web_IN_1".into(), 2)
        ]
    );
    assert!(agent.reimages().is_empty(), "a reboot is no reimage");

    let op = c
        .reimage("shop", Slot::Production, "Web_IN_0")
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert_eq!(agent.reimages(), [("Web_IN_0".into(), 1)]);
    assert_eq!(
        agent.incarnations().last().unwrap(),
        &("Web_IN_0".into(), 2)
    );
    // Both serve again, and the history says what happened.
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        seen.insert(who(vip).await);
    }
    assert_eq!(seen, BTreeSet::from(["Web_IN_0".into(), "Web_IN_1".into()]));
    let kinds: Vec<EventKind> = c
        .events("shop", Slot::Production)
        .iter()
        .map(|e| e.kind)
        .filter(|k| {
            matches!(
                k,
                EventKind::InstanceOperationStarted | EventKind::InstanceOperationCompleted
            )
        })
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");

    // An unknown instance, a missing slot: refused, nothing changes.
    let err = c
        .reboot("shop", Slot::Production, "Web_IN_7")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the production deployment of service `shop` has no role instance `Web_IN_7`"
    );
    let err = c
        .reimage("shop", Slot::Staging, "Web_IN_0")
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 404);
    assert_eq!(agent.incarnations().len(), 5);
    assert_eq!(agent.running_in(&prod).len(), 3);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_instances_drains_removes_and_lowers_the_count_but_never_the_last_one() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let prod = deployed(&c, deploy_to(&f, Slot::Production, &f.package)).await;
    let vip = slot_view(&c, Slot::Production).unwrap().vips[0].address;
    let (first, mut held) = hold(vip).await;
    let gone = if first == "Web_IN_0" {
        "Web_IN_0"
    } else {
        "Web_IN_1"
    };
    let stays = if gone == "Web_IN_0" {
        "Web_IN_1"
    } else {
        "Web_IN_0"
    };
    let op = c
        .delete_instances("shop", Slot::Production, &[gone.to_owned()])
        .await
        .unwrap();
    // The deleted instance waits for its open connection (drain) before
    // the agent stops it; new connections go to the other one.
    until("it is out of the VIP", || {
        slot_view(&c, Slot::Production).unwrap().roles[0]
            .instances
            .len()
            == 1
    })
    .await;
    assert_eq!(who(vip).await, stays);
    drop(held.shutdown().await);
    drop(held);
    let done = c.wait(&op).await.unwrap();
    assert_eq!(
        (done.kind, done.status),
        (
            OperationKind::DeleteRoleInstances,
            OperationStatus::Succeeded
        ),
        "{done:?}"
    );
    assert_eq!(
        agent.running_in(&prod),
        BTreeSet::from([stays.to_owned(), "Worker_IN_0".to_owned()])
    );
    let d = slot_view(&c, Slot::Production).unwrap();
    assert_eq!(
        d.roles
            .iter()
            .map(|r| (r.name.as_str(), r.instance_count))
            .collect::<Vec<_>>(),
        [("Web", 1), ("Worker", 1)]
    );
    // The kept configuration says so: only the Web count changed.
    let text = String::from_utf8(f.cscfg.clone()).unwrap();
    assert_eq!(
        c.configuration("shop", Slot::Production).unwrap(),
        text.replacen("<Instances count=\"2\" />", "<Instances count=\"1\" />", 1)
    );

    // The last instance of a role is refused, named, and nothing changes.
    let before = c.services();
    let err = c
        .delete_instances("shop", Slot::Production, &[stays.to_owned()])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "it would delete every instance of role Web ({stays})"
        )),
        "{err}"
    );
    assert_eq!(err.http_status(), 409);
    assert_eq!(c.services(), before);
    c.shutdown().await;

    // Durable: a restarted controller still has one web instance.
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    until("the instances are back", || {
        agent.running_in(&prod).len() == 2
    })
    .await;
    assert_eq!(
        slot_view(&c, Slot::Production).unwrap().roles[0].instance_count,
        1
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_instances_closes_the_deleted_instances_own_vips_and_later_changes_are_accepted() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let min = free_port();
    let definition = csdef(f.port).replacen(
        "    </Endpoints>",
        &format!(
            r#"      <InstanceInputEndpoint name="Direct" protocol="tcp" localPort="9000">
        <AllocatePublicPortFrom><FixedPortRange min="{min}" max="{}" /></AllocatePublicPortFrom>
      </InstanceInputEndpoint>
    </Endpoints>"#,
            min + 4
        ),
        1,
    );
    assert!(definition.contains("InstanceInputEndpoint"));
    let package = build(f.dir.path(), "shop-direct", &definition, "v1");
    let mut req = deploy_to(&f, Slot::Production, &package);
    req.configuration = cscfg(3, 1);
    deployed(&c, req).await;
    let direct = |c: &Controller<FakeAgent>| -> Vec<(String, std::net::SocketAddr)> {
        slot_view(c, Slot::Production)
            .unwrap()
            .vips
            .into_iter()
            .filter_map(|v| v.instance.map(|i| (i, v.address)))
            .collect()
    };
    let before = direct(&c);
    assert_eq!(
        before.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        ["Web_IN_0", "Web_IN_1", "Web_IN_2"]
    );
    let op = c
        .delete_instances("shop", Slot::Production, &["Web_IN_1".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let kept = vec![before[0].clone(), before[2].clone()];
    assert_eq!(direct(&c), kept, "the deleted instance's VIP is gone");
    until("the deleted instance's port is closed", || {
        std::net::TcpStream::connect(before[1].1).is_err()
    })
    .await;
    // A later configuration change keeps the names and their ports.
    let op = c
        .change_configuration(weft_fabric::ChangeConfigurationRequest {
            service: "shop".into(),
            slot: Slot::Production,
            configuration: cscfg_greeting(2, 1, "changed"),
            mode: weft_fabric::upgrade::UpgradeMode::Simultaneous,
            auto_rollback: false,
            gate: Some(weft_fabric::upgrade::HealthGate {
                min_healthy_ms: 0,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    assert_eq!(direct(&c), kept);
    c.shutdown().await;

    // A restarted controller binds the same ones.
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    assert_eq!(direct(&c), kept);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_instances_keeps_a_configuration_whose_count_cannot_be_edited_in_place() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let text = String::from_utf8(f.cscfg.clone()).unwrap().replacen(
        "<Instances count=\"2\" />",
        "<Instances count=\"02\" />",
        1,
    );
    assert!(text.contains("count=\"02\""));
    let mut req = deploy_to(&f, Slot::Production, &f.package);
    req.configuration = text.clone().into_bytes();
    deployed(&c, req).await;
    let op = c
        .delete_instances("shop", Slot::Production, &["Web_IN_1".to_owned()])
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert!(
        done.messages
            .iter()
            .any(|m| m.contains("still gives role Web its old instance count")),
        "{done:?}"
    );
    assert_eq!(c.configuration("shop", Slot::Production).unwrap(), text);
    assert_eq!(
        slot_view(&c, Slot::Production).unwrap().roles[0].instance_count,
        1
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspend_that_fails_before_stopping_anything_leaves_the_deployment_running() {
    let f = fixture();
    let agent = FakeAgent::new();
    let dir = state_dir(&f);
    let store = FailingStore::new(store_at(&dir));
    let c = Controller::open(config(&dir), store.clone(), agent.clone())
        .await
        .unwrap();
    let prod = deployed(&c, deploy_to(&f, Slot::Production, &f.package)).await;
    let vip = slot_view(&c, Slot::Production).unwrap().vips[0].address;
    // The write that marks the instances stopped fails.
    store.fail_writes_containing(Some("\"stopped\":true"));
    let op = c
        .update_status("shop", Slot::Production, DeploymentStatus::Suspended)
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Failed, "{done:?}");
    assert!(
        done.error
            .as_deref()
            .is_some_and(|e| e.contains("failed to record the instances as stopped")),
        "{done:?}"
    );
    let d = slot_view(&c, Slot::Production).unwrap();
    assert_eq!(d.status, DeploymentStatus::Running, "nothing was suspended");
    assert_eq!(agent.running_in(&prod).len(), 3);
    // Back on its VIP.
    until("the VIP has a backend again", || {
        std::net::TcpStream::connect(vip).is_ok()
    })
    .await;
    assert!(!who(vip).await.is_empty());
    store.fail_writes_containing(None);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_every_instance_and_start_brings_them_back_ready() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let prod = deployed(&c, deploy_to(&f, Slot::Production, &f.package)).await;
    let vip = slot_view(&c, Slot::Production).unwrap().vips[0].address;

    let op = c
        .update_status("shop", Slot::Production, DeploymentStatus::Suspended)
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(
        (done.kind, done.status),
        (
            OperationKind::UpdateDeploymentStatus,
            OperationStatus::Succeeded
        ),
        "{done:?}"
    );
    let d = slot_view(&c, Slot::Production).unwrap();
    assert_eq!(d.status, DeploymentStatus::Suspended);
    assert!(d.roles.iter().flat_map(|r| &r.instances).all(|i| {
        i.status == weft_agent::protocol::InstanceStatus::StoppedVM && !i.ready && i.pid.is_none()
    }));
    assert!(agent.running_in(&prod).is_empty());
    assert_eq!(
        who(vip).await,
        "",
        "a suspended deployment's VIP has no backend"
    );

    // Upgrades, configuration changes, instance operations: refused.
    let err = c
        .change_configuration(weft_fabric::ChangeConfigurationRequest {
            service: "shop".into(),
            slot: Slot::Production,
            configuration: cscfg_greeting(2, 1, "changed"),
            mode: weft_fabric::upgrade::UpgradeMode::Auto,
            auto_rollback: false,
            gate: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "deployment {prod} is Suspended: a suspended deployment is not reconfigured: start it first with `weft start`"
        )
    );
    let err = c
        .reboot("shop", Slot::Production, "Web_IN_0")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("start it with `weft start`"),
        "{err}"
    );
    // Suspending a suspended deployment succeeds at once and changes
    // nothing (Azure documents no refusal).
    let before = c.services();
    let op = c
        .update_status("shop", Slot::Production, DeploymentStatus::Suspended)
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert!(
        done.messages
            .iter()
            .any(|m| m.contains("Suspended already: nothing to do")),
        "{done:?}"
    );
    assert_eq!(c.services(), before);
    c.shutdown().await;

    // Durable: a restarted controller keeps it suspended (nothing started).
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    assert_eq!(
        slot_view(&c, Slot::Production).unwrap().status,
        DeploymentStatus::Suspended
    );
    until("the agent has the stopped instances", || {
        agent.reports_now().len() == 3
    })
    .await;
    assert!(agent.running_in(&prod).is_empty());

    let op = c
        .update_status("shop", Slot::Production, DeploymentStatus::Running)
        .await
        .unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let d = slot_view(&c, Slot::Production).unwrap();
    assert_eq!(d.status, DeploymentStatus::Running);
    assert!(d.roles.iter().flat_map(|r| &r.instances).all(|i| i.ready));
    assert!(who(vip).await.starts_with("Web_IN_"));
    let kinds: Vec<EventKind> = c
        .events("shop", Slot::Production)
        .iter()
        .map(|e| e.kind)
        .filter(|k| matches!(k, EventKind::StatusChanged))
        .collect();
    assert_eq!(kinds.len(), 2);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_change_waits_until_every_instance_has_the_new_settings() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    deployed(&c, deploy_to(&f, Slot::Production, &f.package)).await;
    // Web_IN_1 cancels the change (recycled); Web_IN_0 never takes it.
    agent.cancel_changes("Web_IN_1");
    agent.ignore_changes("Web_IN_0");
    let gate = weft_fabric::upgrade::HealthGate {
        min_healthy_ms: 0,
        domain_timeout_ms: 500,
        ..Default::default()
    };
    let op = c
        .change_configuration(weft_fabric::ChangeConfigurationRequest {
            service: "shop".into(),
            slot: Slot::Production,
            configuration: cscfg_greeting(2, 1, "changed"),
            mode: weft_fabric::upgrade::UpgradeMode::Auto,
            auto_rollback: false,
            gate: Some(gate),
        })
        .await
        .unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Failed, "{done:?}");
    let error = done.error.unwrap();
    assert!(
        error.contains("upgrade domain(s) [0]")
            && error.contains("Web_IN_0 has not applied the new settings yet"),
        "{error}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_delete_instances_a_configuration_change_keeps_the_names_and_refills_the_gaps() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let mut req = deploy_to(&f, Slot::Production, &f.package);
    req.configuration = cscfg(3, 1);
    deployed(&c, req).await;
    let op = c
        .delete_instances("shop", Slot::Production, &["Web_IN_1".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let web = |c: &Controller<FakeAgent>| -> Vec<String> {
        slot_view(c, Slot::Production).unwrap().roles[0]
            .instances
            .iter()
            .map(|i| i.id.clone())
            .collect()
    };
    assert_eq!(web(&c), ["Web_IN_0", "Web_IN_2"]);
    let change = |cscfg: Vec<u8>| weft_fabric::ChangeConfigurationRequest {
        service: "shop".into(),
        slot: Slot::Production,
        configuration: cscfg,
        mode: weft_fabric::upgrade::UpgradeMode::Simultaneous,
        auto_rollback: false,
        gate: Some(weft_fabric::upgrade::HealthGate {
            min_healthy_ms: 0,
            ..Default::default()
        }),
    };
    // The same count with a new setting: changed in place, names kept.
    let plan = c
        .plan_configuration_change(change(cscfg_greeting(2, 1, "changed")))
        .await
        .unwrap();
    let step = &plan.steps[0];
    assert!(
        step.instances.is_empty() && step.added.is_empty(),
        "{plan:?}"
    );
    assert_eq!(step.changed_in_place, ["Web_IN_0", "Web_IN_2"]);
    let starts = agent.starts();
    let op = c
        .change_configuration(change(cscfg_greeting(2, 1, "changed")))
        .await
        .unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    assert_eq!(web(&c), ["Web_IN_0", "Web_IN_2"]);
    assert_eq!(agent.starts(), starts, "nothing was restarted");
    // One more instance takes the free name.
    let op = c
        .change_configuration(change(cscfg_greeting(3, 1, "changed")))
        .await
        .unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    assert_eq!(web(&c), ["Web_IN_0", "Web_IN_1", "Web_IN_2"]);
    c.shutdown().await;
}
