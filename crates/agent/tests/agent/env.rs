//! The environment an instance starts with.

use std::collections::BTreeMap;

use weft_agent::protocol::{
    AgentApi, EndpointKind, EndpointProtocol, EndpointSpec, EnvValue, EnvVar, InstanceStatus,
};

use crate::common::*;

const INSTANCE: &str = "/RoleEnvironment/CurrentInstance";

fn xpath(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: EnvValue::XPath(path.into()),
    }
}

#[tokio::test]
async fn weft_variables_and_xpaths_are_resolved_in_a_clean_environment() {
    let role = package(&[("run.sh", r#"env > "$SCRATCH/env.txt"; exec sleep 1000"#)]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_3", "./run.sh");
    s.endpoints.push(EndpointSpec {
        name: "HttpIn".into(),
        kind: EndpointKind::Input,
        protocol: EndpointProtocol::Http,
        local_port: None,
        ignore_role_instance_status: false,
        probe: None,
    });
    s.environment.extend([
        EnvVar {
            name: "LITERAL".into(),
            value: EnvValue::Literal("a b=c".into()),
        },
        xpath("DEPLOYMENT", "/RoleEnvironment/Deployment/@id"),
        xpath("EMULATED", "/RoleEnvironment/Deployment/@emulated"),
        xpath("INSTANCE", &format!("{INSTANCE}/@id")),
        xpath("ROLE", &format!("{INSTANCE}/@roleName")),
        xpath("UD", &format!("{INSTANCE}/@updateDomain")),
        xpath("FD", &format!("{INSTANCE}/@faultDomain")),
        xpath(
            "GREETING",
            &format!(
                "{INSTANCE}/ConfigurationSettings/ConfigurationSetting[@name='Greeting']/@value"
            ),
        ),
        xpath(
            "SCRATCH_MB",
            &format!("{INSTANCE}/LocalResources/LocalResource[@name='Scratch']/@sizeInMB"),
        ),
        xpath(
            "HTTP_ADDRESS",
            &format!("{INSTANCE}/Endpoints/Endpoint[@name='HttpIn']/@address"),
        ),
        xpath(
            "HTTP_PORT",
            &format!("{INSTANCE}/Endpoints/Endpoint[@name='HttpIn']/@port"),
        ),
        xpath(
            "HTTP_PROTOCOL",
            &format!("{INSTANCE}/Endpoints/Endpoint[@name='HttpIn']/@protocol"),
        ),
        EnvVar {
            name: "LITERAL".into(),
            value: EnvValue::Literal("later wins".into()),
        },
    ]);
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_3")).await;
    let http = report(&reports, "Worker_IN_3").unwrap().endpoints["HttpIn"];

    let text = read_when_written(&scratch(&agent, "Worker_IN_3").join("env.txt")).await;
    let env: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let scratch = scratch(&agent, "Worker_IN_3");
    let expected = [
        ("WEFT_INSTANCE_ID", "Worker_IN_3".to_owned()),
        ("WEFT_ROLE", "Worker".to_owned()),
        (
            "WEFT_DEPLOYMENT_ID",
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
        ("WEFT_ENDPOINT_HTTPIN", http.to_string()),
        ("LITERAL", "later wins".to_owned()),
        ("DEPLOYMENT", "0123456789abcdef0123456789abcdef".to_owned()),
        ("EMULATED", "false".to_owned()),
        ("INSTANCE", "Worker_IN_3".to_owned()),
        ("ROLE", "Worker".to_owned()),
        ("UD", "1".to_owned()),
        ("FD", "0".to_owned()),
        ("GREETING", "hello".to_owned()),
        ("SCRATCH", scratch.display().to_string()),
        ("SCRATCH_MB", "10".to_owned()),
        ("HTTP_ADDRESS", "127.0.0.1".to_owned()),
        ("HTTP_PORT", http.port().to_string()),
        ("HTTP_PROTOCOL", "http".to_owned()),
    ];
    for (name, value) in expected {
        assert_eq!(env.get(name).copied(), Some(value.as_str()), "{name}");
    }
    assert!(
        env["WEFT_RUNTIME"].starts_with("unix:"),
        "{}",
        env["WEFT_RUNTIME"]
    );
    assert!(env.contains_key("PATH"));
    // Nothing else of the agent's own environment leaks in.
    let leaked: Vec<String> = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| !["PATH", "HOME", "LANG", "PWD", "SHLVL", "_", "OLDPWD"].contains(&k.as_str()))
        .filter(|k| env.contains_key(k.as_str()))
        .collect();
    assert_eq!(leaked, Vec::<String>::new());
    shutdown(&agent).await;
}

#[tokio::test]
async fn an_xpath_naming_a_missing_setting_fails_the_start_with_its_name() {
    let role = package(&[("run.sh", "exec sleep 1000")]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.environment.push(xpath(
        "MISSING",
        &format!("{INSTANCE}/ConfigurationSettings/ConfigurationSetting[@name='Nope']/@value"),
    ));
    agent.apply(vec![s]).await.unwrap();
    let reports = until(&agent, "failed", |r| {
        report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::FailedStartingRole)
    })
    .await;
    let message = report(&reports, "Worker_IN_0")
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(
        message.contains("environment variable MISSING"),
        "{message}"
    );
    assert!(message.contains("setting Nope"), "{message}");
    shutdown(&agent).await;
}
