//! A controller killed mid-operation (its runtime dropped: every task gone
//! at once, as with SIGKILL) and opened again on the same store.

mod common;

use common::*;
use weft_fabric::view::{DeploymentStatus, OperationStatus};
use weft_fabric::{Controller, Slot};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_in_progress_deploy_completes_after_a_restart_without_duplicates() {
    let f = fixture();
    let dir = state_dir(&f);
    // First life: instances never get ready; the deploy is in progress.
    let first = runtime();
    let (op, deployment_id) = first.block_on(async {
        let agent = FakeAgent::new();
        agent.behave("Web", Behaviour::Hold);
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        until("the agent has the instances", || {
            agent.last_apply().len() == 3
        })
        .await;
        let view = c.operation(&op).unwrap();
        assert_eq!(view.status, OperationStatus::InProgress);
        (op, view.deployment_id)
    });
    drop(first); // the "SIGKILL": no shutdown, no cleanup

    // Second life: a fresh agent (the old one's processes are gone) that
    // gets instances ready.
    let second = runtime();
    second.block_on(async {
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let done = c
            .wait(&op)
            .await
            .expect("the operation survived the restart");
        assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
        let d = &c.services()[0].deployments[0];
        assert_eq!(
            (d.id.as_str(), d.status),
            (deployment_id.as_str(), DeploymentStatus::Running)
        );
        // Every instance started once, and no apply ever named one twice.
        assert_eq!(
            agent.starts().values().copied().collect::<Vec<_>>(),
            [1, 1, 1]
        );
        for apply in agent.applies() {
            let mut unique = apply.clone();
            unique.dedup();
            assert_eq!(unique, apply);
        }
        // The VIP is back on its port and routes.
        let vip = &d.vips[0];
        assert_eq!(vip.address.port(), f.port);
        assert!(who(vip.address).await.starts_with("Web_IN_"));
        c.shutdown().await;
    });
}

#[test]
fn a_running_deployment_comes_back_on_the_same_vip_after_a_restart() {
    let f = fixture();
    let dir = state_dir(&f);
    let first = runtime();
    let before = first.block_on(async {
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent)
            .await
            .unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        assert_eq!(
            c.wait(&op).await.unwrap().status,
            OperationStatus::Succeeded
        );
        c.services()
    });
    drop(first);
    let second = runtime();
    second.block_on(async {
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        until("instances ready again", || {
            c.services()[0].deployments[0]
                .roles
                .iter()
                .all(|r| r.instances.iter().all(|i| i.ready))
        })
        .await;
        let after = c.services();
        assert_eq!(after[0].deployments[0].id, before[0].deployments[0].id);
        assert_eq!(after[0].deployments[0].vips, before[0].deployments[0].vips);
        assert_eq!(agent.last_apply(), ["Web_IN_0", "Web_IN_1", "Worker_IN_0"]);
        assert!(
            who(after[0].deployments[0].vips[0].address)
                .await
                .starts_with("Web_IN_")
        );
        // The operation history survived too.
        assert_eq!(c.operations().len(), 1);
        c.shutdown().await;
    });
}

#[test]
fn shutdown_keeps_the_desired_state_for_the_next_open() {
    let f = fixture();
    let dir = state_dir(&f);
    runtime().block_on(async {
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        c.wait(&op).await.unwrap();
        c.shutdown().await;
        assert!(
            agent.running().is_empty(),
            "shutdown left instances running"
        );
        assert!(
            c.deploy(request(&f, "shop2")).await.is_err(),
            "a shut-down controller accepted a deploy"
        );
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        assert_eq!(c.services()[0].deployments[0].slot, Slot::Production);
        until("instances running again", || agent.running().len() == 3).await;
        c.shutdown().await;
    });
}

#[test]
fn a_rollback_interrupted_by_a_crash_finishes_as_failed_with_its_reason() {
    let f = fixture();
    let dir = state_dir(&f);
    let first = runtime();
    let op = first.block_on(async {
        let agent = FakeAgent::new();
        agent.behave(
            "Worker",
            Behaviour::Fail("entry point exited with status 1".into()),
        );
        agent.hang_on_removal();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        until("the rollback started", || {
            c.services()
                .first()
                .is_some_and(|s| s.deployments[0].status == DeploymentStatus::Deleting)
        })
        .await;
        assert_eq!(
            c.operation(&op).unwrap().status,
            OperationStatus::InProgress
        );
        op
    });
    drop(first);
    runtime().block_on(async {
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let done = c.wait(&op).await.unwrap();
        assert_eq!(done.status, OperationStatus::Failed);
        assert_eq!(
            done.error.as_deref(),
            Some(
                "role instance Worker_IN_0 is FailedStartingRole: entry point exited with status 1"
            )
        );
        assert!(c.services().is_empty());
        until("nothing runs", || agent.running().is_empty()).await;
        std::net::TcpListener::bind(("127.0.0.1", f.port))
            .expect("the rolled-back VIP still holds its port");
        c.shutdown().await;
    });
}

#[test]
fn a_delete_interrupted_by_a_crash_completes_after_a_restart() {
    let f = fixture();
    let dir = state_dir(&f);
    let first = runtime();
    let del = first.block_on(async {
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        assert_eq!(
            c.wait(&op).await.unwrap().status,
            OperationStatus::Succeeded
        );
        agent.hang_on_removal();
        c.delete_deployment("shop", Slot::Production).await.unwrap()
    });
    drop(first);
    runtime().block_on(async {
        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let done = c.wait(&del).await.unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
        assert!(c.services().is_empty());
        assert!(agent.last_apply().is_empty());
        until("nothing runs", || agent.running().is_empty()).await;
        c.shutdown().await;
    });
}

#[test]
fn a_deploy_interrupted_by_shutdown_resumes_instead_of_rolling_back() {
    let f = fixture();
    let dir = state_dir(&f);
    runtime().block_on(async {
        let agent = FakeAgent::new();
        agent.behave("Web", Behaviour::Hold);
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        until("the agent has the instances", || {
            agent.last_apply().len() == 3
        })
        .await;
        c.shutdown().await;
        let view = c.wait(&op).await.unwrap();
        assert_eq!(
            view.status,
            OperationStatus::InProgress,
            "shutdown ended the deploy: {view:?}"
        );

        let agent = FakeAgent::new();
        let c = Controller::open(config(&dir), store_at(&dir), agent.clone())
            .await
            .unwrap();
        let done = c.wait(&op).await.unwrap();
        assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
        assert_eq!(
            c.services()[0].deployments[0].status,
            DeploymentStatus::Running
        );
        c.shutdown().await;
    });
}

#[test]
fn a_vip_port_taken_while_the_fabric_was_down_is_remapped_and_noted() {
    let f = fixture();
    let dir = state_dir(&f);
    runtime().block_on(async {
        let c = Controller::open(config(&dir), store_at(&dir), FakeAgent::new()).await.unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        assert_eq!(c.wait(&op).await.unwrap().status, OperationStatus::Succeeded);
        assert!(c.services()[0].deployments[0].notes.is_empty());
        c.shutdown().await;

        let _squatter = std::net::TcpListener::bind(("127.0.0.1", f.port)).unwrap();
        let c = Controller::open(config(&dir), store_at(&dir), FakeAgent::new()).await.unwrap();
        let d = c.services()[0].deployments[0].clone();
        let vip = &d.vips[0];
        assert_ne!(vip.address.port(), f.port);
        assert_eq!(
            d.notes,
            [format!(
                "input endpoint Web/HttpIn: port {} on 127.0.0.1 is in use; listening on {} instead",
                f.port, vip.address
            )]
        );
        until("instances ready", || c.services()[0].deployments[0].roles[0].instances.iter().all(|i| i.ready)).await;
        assert!(who(vip.address).await.starts_with("Web_IN_"));
        c.shutdown().await;
    });
}

#[test]
fn a_freed_vip_port_is_taken_back_and_the_note_cleared() {
    let f = fixture();
    let dir = state_dir(&f);
    runtime().block_on(async {
        let squatter = std::net::TcpListener::bind(("127.0.0.1", f.port)).unwrap();
        let c = Controller::open(config(&dir), store_at(&dir), FakeAgent::new())
            .await
            .unwrap();
        let op = c.deploy(request(&f, "shop")).await.unwrap();
        assert_eq!(
            c.wait(&op).await.unwrap().status,
            OperationStatus::Succeeded
        );
        assert_ne!(
            c.services()[0].deployments[0].vips[0].address.port(),
            f.port
        );
        assert_eq!(c.services()[0].deployments[0].notes.len(), 1);
        c.shutdown().await;
        drop(squatter);

        let c = Controller::open(config(&dir), store_at(&dir), FakeAgent::new())
            .await
            .unwrap();
        let d = c.services()[0].deployments[0].clone();
        assert_eq!(
            d.vips[0].address.port(),
            f.port,
            "the VIP did not return to its requested port"
        );
        assert!(d.notes.is_empty(), "{:?}", d.notes);
        c.shutdown().await;
    });
}
