//! Helpers: package a role from scripts, build a spec, wait for reports.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use weft_agent::protocol::{
    AgentApi, EnvValue, EnvVar, InstanceReport, InstanceSpec, LocalResourceSpec, PackageRef,
    ResourceLimits,
};
use weft_agent::{Agent, AgentConfig};

/// How long any condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A packaged role named `Worker`.
pub struct Role {
    _dir: Option<TempDir>,
    pub package: PathBuf,
    pub digest: String,
}

/// Packages `files` (name, shell script) as role `Worker`; every file is
/// executable.
pub fn package(files: &[(&str, &str)]) -> Role {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Worker");
    fs::create_dir_all(&root).unwrap();
    for (name, text) in files {
        let path = root.join(name);
        fs::write(&path, format!("#!/bin/sh\n{text}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let package = dir.path().join("app.cspkg");
    let manifest = weft_package::build_package(
        &weft_package::PackageSpec {
            service_definition: b"<ServiceDefinition name=\"t\"/>".to_vec(),
            roles: vec![weft_package::RoleSource {
                name: "Worker".into(),
                dir: root,
            }],
        },
        &package,
        &weft_package::BuildOptions::default(),
    )
    .unwrap();
    Role {
        _dir: Some(dir),
        package,
        digest: manifest.digest,
    }
}

/// A role packaged by another process.
pub fn packaged(package: PathBuf, digest: String) -> Role {
    Role {
        _dir: None,
        package,
        digest,
    }
}

/// A spec for instance `id` of `role` running `entry`, with a local
/// resource `Scratch` whose path is in `$SCRATCH`.
/// The deployment [`spec`] puts instances in.
pub const DEPLOYMENT: &str = "0123456789abcdef0123456789abcdef";

pub fn spec(role: &Role, id: &str, entry: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: DEPLOYMENT.into(),
        role: "Worker".into(),
        instance_id: id.into(),
        update_domain: 1,
        fault_domain: 0,
        incarnation: 1,
        reimage: 0,
        stopped: false,
        package: PackageRef {
            path: role.package.clone(),
            digest: role.digest.clone(),
        },
        startup: Vec::new(),
        entry_point: Some(entry.into()),
        set_ready_on_process_start: true,
        environment: vec![EnvVar {
            name: "SCRATCH".into(),
            value: EnvValue::XPath(
                "/RoleEnvironment/CurrentInstance/LocalResources/LocalResource[@name='Scratch']/@path"
                    .into(),
            ),
        }],
        settings: BTreeMap::from([("Greeting".to_owned(), "hello".to_owned())]),
        local_resources: vec![LocalResourceSpec {
            name: "Scratch".into(),
            size_mb: 10,
            clean_on_role_recycle: false,
        }],
        endpoints: Vec::new(),
        elevated: false,
        limits: ResourceLimits::default(),
    }
}

/// Test defaults: short grace and backoff. `WEFT_TEST_NO_CGROUP=1` runs
/// every test on the process-group fallback.
pub fn config(state: &Path) -> AgentConfig {
    let mut config = AgentConfig::new(state);
    if std::env::var_os("WEFT_TEST_NO_CGROUP").is_some() {
        config.cgroup = weft_agent::CgroupMode::Off;
    }
    config.grace_period = Duration::from_secs(3);
    config.restart_backoff_base = Duration::from_millis(10);
    config.restart_backoff_max = Duration::from_millis(200);
    config
}

/// Waits until `pred` holds for the reports; fails with the last reports.
pub async fn until(
    agent: &Agent,
    what: &str,
    pred: impl Fn(&[InstanceReport]) -> bool,
) -> Vec<InstanceReport> {
    let mut rx = agent.reports();
    let waited = tokio::time::timeout(DEADLINE, rx.wait_for(|r| pred(r)))
        .await
        .map(|r| r.map(|reports| reports.clone()));
    match waited {
        Ok(Ok(reports)) => reports,
        _ => panic!(
            "timed out waiting for {what}; last reports: {:#?}",
            *rx.borrow()
        ),
    }
}

pub fn report<'a>(reports: &'a [InstanceReport], id: &str) -> Option<&'a InstanceReport> {
    reports.iter().find(|r| r.instance_id == id)
}

pub fn ready(reports: &[InstanceReport], id: &str) -> bool {
    report(reports, id).is_some_and(|r| r.ready)
}

/// Whether a process is alive (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X"),
        Err(_) => false,
    }
}

/// `/proc/<pid>/environ`. A process in the middle of an exec (`sh` →
/// `exec sleep`) briefly shows an empty one (the new image's is not set up
/// yet): read again until it is there or the process is gone.
fn environ_of(pid: u32) -> Option<Vec<u8>> {
    if kernel_thread(pid) {
        return None;
    }
    for _ in 0..10_000 {
        let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
        if !environ.is_empty() || !alive(pid) {
            return Some(environ);
        }
        std::thread::yield_now();
    }
    None
}

/// Whether `pid` is a kernel thread (`PF_KTHREAD` in its flags): no
/// environment, ever.
fn kernel_thread(pid: u32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // After the parenthesised name: state, ppid, pgrp, session,
            // tty_nr, tpgid, flags.
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().nth(6)?.parse::<u64>().ok()
        })
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// Live processes whose environment has `WEFT_INSTANCE_ID=<id>` and whose
/// runtime socket is under `state`.
pub fn processes_of(state: &Path, id: &str) -> Vec<u32> {
    let state = state.canonicalize().unwrap();
    let runtime = format!("WEFT_RUNTIME=unix:{}/", state.display());
    let instance = format!("WEFT_INSTANCE_ID={id}");
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some(environ) = environ_of(pid) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        if vars.iter().any(|v| v.starts_with(runtime.as_bytes()))
            && vars.contains(&instance.as_bytes())
            && alive(pid)
        {
            found.push(pid);
        }
    }
    found
}

/// Waits until a file exists and has a non-empty first line.
pub async fn read_when_written(path: &Path) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} was never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn scratch(agent: &Agent, id: &str) -> PathBuf {
    agent
        .instance_dir(DEPLOYMENT, id)
        .join("local")
        .join("Scratch")
}

/// Opens an agent on a fresh state directory.
pub fn open() -> (TempDir, Agent) {
    let state = tempfile::tempdir().unwrap();
    let agent = Agent::open(config(state.path())).unwrap();
    (state, agent)
}

pub async fn shutdown(agent: &Agent) {
    tokio::time::timeout(DEADLINE, agent.shutdown())
        .await
        .expect("shutdown timed out")
        .unwrap();
}

/// The report of instance `id` of deployment `deployment`.
pub fn report_in<'a>(
    reports: &'a [InstanceReport],
    deployment: &str,
    id: &str,
) -> Option<&'a InstanceReport> {
    reports
        .iter()
        .find(|r| r.deployment_id == deployment && r.instance_id == id)
}

/// Waits until `path` holds exactly `expected`.
pub async fn until_file(path: &Path, expected: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} holds {text:?}, never {expected:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
