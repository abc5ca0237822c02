//! Shared fixtures for the runtime endpoint tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use weft_runtime::protocol::{Endpoint, InstanceInfo, LocalResource, Topology};

/// How long any test waits for something that should happen at once.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn info(instance: &str) -> InstanceInfo {
    InstanceInfo {
        deployment_id: "0123456789abcdef0123456789abcdef".into(),
        role: "Web".into(),
        instance_id: instance.into(),
        update_domain: 2,
        fault_domain: 0,
        settings: BTreeMap::from([("Greeting".into(), "hello from weft".into())]),
        local_resources: BTreeMap::from([(
            "Scratch".into(),
            LocalResource {
                path: PathBuf::from("/var/lib/weft/instances/Web_IN_2/local/Scratch"),
                size_mb: 64,
            },
        )]),
        endpoints: BTreeMap::from([(
            "HttpIn".into(),
            Endpoint {
                protocol: "http".into(),
                address: "127.0.0.1:20001".parse().unwrap(),
            },
        )]),
    }
}

pub fn topology() -> Topology {
    let mut topology = Topology::default();
    for (instance, port) in [("Web_IN_0", 20000), ("Web_IN_1", 20001)] {
        topology.roles.entry("Web".into()).or_default().insert(
            instance.into(),
            BTreeMap::from([(
                "HttpIn".into(),
                Endpoint {
                    protocol: "http".into(),
                    address: format!("127.0.0.1:{port}").parse().unwrap(),
                },
            )]),
        );
    }
    topology
}

/// Runs `fut`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {DEADLINE:?}"))
}
