//! What the instance sees on its runtime endpoint: its info, the
//! deployment's topology, and Changing / Changed / Stopping events.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use weft_agent::protocol::AgentApi;
use weft_runtime::client::RoleEnvironment;
use weft_runtime::protocol::{Change, Endpoint, RuntimeEvent, Topology};

use crate::common::*;

fn topology(port: u16) -> Topology {
    let endpoint = Endpoint {
        protocol: "tcp".into(),
        address: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    Topology {
        roles: BTreeMap::from([(
            "Worker".to_owned(),
            BTreeMap::from([(
                "Worker_IN_0".to_owned(),
                BTreeMap::from([("Tcp".to_owned(), endpoint)]),
            )]),
        )]),
    }
}

#[tokio::test]
async fn settings_and_topology_changes_reach_the_instance_without_a_restart() {
    let role = package(&[(
        "run.sh",
        r#"echo "$WEFT_RUNTIME" > "$SCRATCH/runtime"; exec sleep 1000"#,
    )]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    agent
        .set_topology(&s.deployment_id, topology(1000))
        .await
        .unwrap();
    agent.apply(vec![s.clone()]).await.unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let pid = report(&reports, "Worker_IN_0").unwrap().pid;
    let address = read_when_written(&scratch(&agent, "Worker_IN_0").join("runtime")).await;
    let env = RoleEnvironment::connect_to(address.trim().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        env.topology().await.unwrap(),
        topology(1000),
        "the topology set before the start"
    );
    let mut events = env.events().await.unwrap();

    s.settings.insert("Greeting".into(), "bonjour".into());
    agent.apply(vec![s.clone()]).await.unwrap();
    let greeting = vec![Change::Setting {
        name: "Greeting".into(),
    }];
    assert_eq!(
        events.next().await.unwrap().unwrap(),
        RuntimeEvent::Changing {
            id: None,
            changes: greeting.clone()
        }
    );
    assert_eq!(
        events.next().await.unwrap().unwrap(),
        RuntimeEvent::Changed { changes: greeting }
    );
    assert_eq!(env.setting("Greeting").await.unwrap(), "bonjour");

    agent
        .set_topology(&s.deployment_id, topology(2000))
        .await
        .unwrap();
    let worker = vec![Change::Topology {
        role: "Worker".into(),
    }];
    assert_eq!(
        events.next().await.unwrap().unwrap(),
        RuntimeEvent::Changing {
            id: None,
            changes: worker.clone()
        }
    );
    assert_eq!(
        events.next().await.unwrap().unwrap(),
        RuntimeEvent::Changed { changes: worker }
    );
    assert_eq!(env.topology().await.unwrap(), topology(2000));

    assert_eq!(
        report(&agent.reports().borrow(), "Worker_IN_0")
            .unwrap()
            .pid,
        pid,
        "no restart"
    );
    let stopping = tokio::spawn(async move { events.next().await });
    shutdown(&agent).await;
    assert_eq!(
        stopping.await.unwrap().unwrap().unwrap(),
        RuntimeEvent::Stopping
    );
}
