//! The controller against a fake agent: deploy, readiness-driven VIPs,
//! failures rolled back, bad input refused, delete with drain, views.

mod common;

use std::collections::BTreeSet;

use common::*;
use weft_agent::protocol::{InstanceStatus, LogQuery, LogStream};
use weft_fabric::view::{DeploymentStatus, OperationKind, OperationStatus};
use weft_fabric::{Controller, FabricError, Slot};

async fn open(f: &Fixture, agent: &FakeAgent) -> Controller<FakeAgent> {
    let dir = state_dir(f);
    Controller::open(config(&dir), store_at(&dir), agent.clone())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_runs_every_instance_and_the_vip_reaches_each_ready_one() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert_eq!(done.kind, OperationKind::CreateDeployment);
    assert!(done.ended.is_some() && done.error.is_none());

    let services = c.services();
    assert_eq!(services.len(), 1);
    let d = &services[0].deployments[0];
    assert_eq!(
        (services[0].name.as_str(), d.slot, d.status),
        ("shop", Slot::Production, DeploymentStatus::Running)
    );
    assert_eq!(d.id.len(), 32);
    assert_eq!(d.id, done.deployment_id);
    assert_eq!(d.label, "shop");
    let instances: Vec<_> = d
        .roles
        .iter()
        .flat_map(|r| {
            r.instances.iter().map(|i| {
                (
                    i.id.as_str(),
                    i.upgrade_domain,
                    i.fault_domain,
                    i.status,
                    i.ready,
                )
            })
        })
        .collect();
    assert_eq!(
        instances,
        [
            ("Web_IN_0", 0, 0, InstanceStatus::ReadyRole, true),
            ("Web_IN_1", 1, 1, InstanceStatus::ReadyRole, true),
            ("Worker_IN_0", 0, 0, InstanceStatus::ReadyRole, true),
        ]
    );
    assert_eq!(d.vips.len(), 1);
    let vip = &d.vips[0];
    assert_eq!(
        (vip.role.as_str(), vip.endpoint.as_str(), vip.address.port()),
        ("Web", "HttpIn", f.port)
    );

    // Round-robin over both ready instances.
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        seen.insert(who(vip.address).await);
    }
    assert_eq!(
        seen,
        BTreeSet::from(["Web_IN_0".to_string(), "Web_IN_1".to_string()])
    );

    // The agent was given exactly the three instances, and the topology.
    assert_eq!(agent.last_apply(), ["Web_IN_0", "Web_IN_1", "Worker_IN_0"]);
    until("the topology names both web instances", || {
        agent
            .topologies()
            .last()
            .is_some_and(|(id, t)| *id == d.id && t.roles["Web"]["Web_IN_1"].contains_key("HttpIn"))
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_stops_being_ready_gets_no_new_connections() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let addr = c.services()[0].deployments[0].vips[0].address;

    agent.set_ready("Web_IN_0", false);
    until("Web_IN_0 shows not ready", || {
        !c.services()[0].deployments[0].roles[0].instances[0].ready
    })
    .await;
    for _ in 0..4 {
        assert_eq!(who(addr).await, "Web_IN_1");
    }
    assert_eq!(
        c.services()[0].deployments[0].roles[0].instances[0].status,
        InstanceStatus::BusyRole
    );

    agent.set_ready("Web_IN_1", false);
    until("no web instance ready", || {
        c.services()[0].deployments[0].roles[0]
            .instances
            .iter()
            .all(|i| !i.ready)
    })
    .await;
    assert_eq!(
        who(addr).await,
        "",
        "a VIP without ready instances must close the connection"
    );

    agent.set_ready("Web_IN_0", true);
    until("Web_IN_0 ready again", || {
        c.services()[0].deployments[0].roles[0].instances[0].ready
    })
    .await;
    assert_eq!(who(addr).await, "Web_IN_0");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_instance_fails_the_deploy_and_nothing_stays_deployed() {
    let f = fixture();
    let agent = FakeAgent::new();
    agent.behave(
        "Worker",
        Behaviour::Fail("startup task `./prepare.sh` exited with status 3".into()),
    );
    let c = open(&f, &agent).await;
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Failed);
    assert_eq!(
        done.error.as_deref(),
        Some(
            "role instance Worker_IN_0 is FailedStartingRole: startup task `./prepare.sh` exited with status 3"
        )
    );
    assert!(
        c.services().is_empty(),
        "a failed deploy left {:?}",
        c.services()
    );
    until("the agent has stopped every instance", || {
        agent.running().is_empty()
    })
    .await;
    assert!(agent.last_apply().is_empty());
    // The VIP's port is free again.
    std::net::TcpListener::bind(("127.0.0.1", f.port))
        .expect("the failed deployment's VIP still holds its port");
    // And the slot can be deployed again.
    agent.behave("Worker", Behaviour::Ready);
    let again = c.deploy(request(&f, "shop")).await.unwrap();
    assert_eq!(
        c.wait(&again).await.unwrap().status,
        OperationStatus::Succeeded
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_never_ready_fail_the_deploy_at_the_deadline_naming_them() {
    let f = fixture();
    let agent = FakeAgent::new();
    agent.behave("Web_IN_1", Behaviour::Hold);
    let dir = state_dir(&f);
    let mut cfg = config(&dir);
    cfg.deploy_timeout = std::time::Duration::from_millis(300);
    let c = Controller::open(cfg, store_at(&dir), agent.clone())
        .await
        .unwrap();
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Failed);
    assert_eq!(
        done.error.as_deref(),
        Some("not every role instance was ready after 0s: Web_IN_1 is StartingRole")
    );
    assert!(c.services().is_empty());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_at_once_and_change_nothing() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;

    // A configuration for another role set.
    let mut req = request(&f, "shop");
    req.configuration = String::from_utf8(cscfg(1, 1))
        .unwrap()
        .replace("\"Worker\"", "\"Backend\"")
        .into_bytes();
    let err = c.deploy(req).await.unwrap_err();
    assert!(matches!(err, FabricError::InvalidModel { .. }), "{err}");
    assert_eq!(err.http_status(), 400);
    assert!(err.to_string().contains("Backend"), "{err}");

    // Not XML at all.
    let mut req = request(&f, "shop");
    req.configuration = b"hello".to_vec();
    assert!(matches!(
        c.deploy(req).await.unwrap_err(),
        FabricError::InvalidModel { .. }
    ));

    // Not a package.
    let mut req = request(&f, "shop");
    req.package = f.dir.path().join("missing.cspkg");
    let err = c.deploy(req).await.unwrap_err();
    assert!(
        err.to_string().starts_with("failed to read package"),
        "{err}"
    );

    // A bad service name.
    let err = c.deploy(request(&f, "no/slashes")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid service name `no/slashes`: use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen"
    );

    assert!(c.services().is_empty());
    assert!(c.operations().is_empty());
    assert!(agent.applies().iter().all(Vec::is_empty));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occupied_slot_is_refused_and_the_running_deployment_untouched() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let before = c.services();
    let err = c.deploy(request(&f, "shop")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "slot production of service `shop` already holds deployment {}; delete it first",
            before[0].deployments[0].id
        )
    );
    assert_eq!(err.http_status(), 409);
    assert_eq!(c.services(), before);
    // Another service with the same role names has instances of the same
    // names (ids are per deployment, as in Azure); the first one's are
    // neither touched nor restarted.
    let op = c.deploy(request(&f, "other")).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let other = c.services()[0].deployments[0].id.clone();
    assert_eq!(
        agent.running_in(&other),
        BTreeSet::from(["Web_IN_0".into(), "Web_IN_1".into(), "Worker_IN_0".into()])
    );
    assert_eq!(c.services()[1], before[0]);
    assert_eq!(
        agent.starts().values().copied().collect::<Vec<_>>(),
        [2, 2, 2]
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_vip_port_is_remapped_and_the_operation_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let f = fixture_on(port);
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    let done = c.wait(&op).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded);
    let vip = c.services()[0].deployments[0].vips[0].clone();
    assert_eq!(vip.requested_port, port);
    assert_ne!(vip.address.port(), port);
    assert_eq!(
        done.messages,
        [format!(
            "input endpoint Web/HttpIn: port {port} on 127.0.0.1 is in use; listening on {} instead",
            vip.address
        )]
    );
    assert_eq!(c.services()[0].deployments[0].notes, done.messages);
    assert!(who(vip.address).await.starts_with("Web_IN_"));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_drains_open_connections_before_stopping_instances() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    assert_eq!(
        c.wait(&op).await.unwrap().status,
        OperationStatus::Succeeded
    );
    let addr = c.services()[0].deployments[0].vips[0].address;
    let (first, held) = hold(addr).await;
    assert!(first.starts_with("Web_IN_"));

    let del = c.delete_deployment("shop", Slot::Production).await.unwrap();
    assert_eq!(
        c.services()[0].deployments[0].status,
        DeploymentStatus::Deleting
    );
    let err = c
        .delete_deployment("shop", Slot::Production)
        .await
        .unwrap_err();
    assert!(matches!(err, FabricError::Busy { .. }), "{err}");
    // New connections get nothing at once...
    let mut empty = false;
    for _ in 0..200 {
        if who(addr).await.is_empty() {
            empty = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(empty, "the VIP still routes to a deployment being deleted");
    // ...while the instance with an open connection is still running.
    assert!(
        agent.running().contains(&first),
        "{first} was stopped with a connection open"
    );
    assert_eq!(
        c.operation(&del).unwrap().status,
        OperationStatus::InProgress
    );

    drop(held);
    let done = c.wait(&del).await.unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert_eq!(done.kind, OperationKind::DeleteDeployment);
    assert!(c.services().is_empty());
    assert!(agent.running().is_empty());
    std::net::TcpListener::bind(addr).expect("the deleted deployment's VIP still holds its port");

    let err = c
        .delete_deployment("shop", Slot::Production)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "service `shop` has no deployment in slot production"
    );
    assert_eq!(err.http_status(), 404);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_come_from_the_agent_for_known_instances_only() {
    let f = fixture();
    let agent = FakeAgent::new();
    let c = open(&f, &agent).await;
    let op = c.deploy(request(&f, "shop")).await.unwrap();
    c.wait(&op).await.unwrap();
    let query = LogQuery {
        stream: LogStream::Both,
        tail: Some(10),
        after: None,
    };
    let page = c
        .logs("shop", Slot::Production, "Web_IN_1", query.clone())
        .await
        .unwrap();
    assert_eq!(page.lines[0].text, "Web_IN_1 says hi");
    let err = c
        .logs("shop", Slot::Production, "Web_IN_9", query.clone())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the production deployment of service `shop` has no role instance `Web_IN_9`"
    );
    let err = c
        .logs("shop", Slot::Staging, "Web_IN_1", query)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 404, "{err}");
    c.shutdown().await;
}
