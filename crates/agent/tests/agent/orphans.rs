//! Nothing an instance started survives its stop, nor a crash of the
//! agent followed by a new agent on the same state directory.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use weft_agent::protocol::{AgentApi, ResourceLimits};
use weft_agent::{Agent, CgroupMode};

use crate::common::*;

/// The entry point forks a grandchild that leaves the process group with
/// setsid and records its pid.
const DAEMONIZING: &str = r#"setsid sh -c 'echo $$ > "$SCRATCH/grandchild.pid"; exec sleep 1000' &
exec sleep 1000"#;

async fn no_orphans(mode: CgroupMode) {
    let role = package(&[("run.sh", DAEMONIZING)]);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(state.path());
    cfg.cgroup = mode;
    let agent = Agent::open(cfg).unwrap();
    if mode == CgroupMode::Off {
        assert!(!agent.uses_cgroups());
    }
    agent
        .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
        .await
        .unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let grandchild: u32 = read_when_written(&scratch(&agent, "Worker_IN_0").join("grandchild.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(alive(grandchild));
    assert_eq!(processes_of(state.path(), "Worker_IN_0").len(), 2);

    shutdown(&agent).await;
    assert!(
        !alive(grandchild),
        "the setsid grandchild {grandchild} survived the stop"
    );
    assert_eq!(processes_of(state.path(), "Worker_IN_0"), Vec::<u32>::new());
}

#[tokio::test]
async fn a_setsid_grandchild_dies_with_its_instance() {
    no_orphans(CgroupMode::Auto).await;
}

#[tokio::test]
async fn a_setsid_grandchild_dies_with_its_instance_without_cgroups() {
    no_orphans(CgroupMode::Off).await;
}

/// The first agent of the reopen test, in a child process that the test
/// SIGKILLs once the instance runs: an agent that ended without a shutdown.
#[test]
#[ignore = "run as a child process by reopening_after_an_unclean_end_kills_the_leftovers_first"]
fn first_agent_process() {
    let var = |name: &str| std::env::var(name).expect("run by the reopen test");
    let state = PathBuf::from(var("WEFT_TEST_STATE"));
    let role = packaged(
        PathBuf::from(var("WEFT_TEST_PACKAGE")),
        var("WEFT_TEST_DIGEST"),
    );
    let mut cfg = config(&state);
    cfg.cgroup = if var("WEFT_TEST_CGROUP") == "off" {
        CgroupMode::Off
    } else {
        CgroupMode::Auto
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let agent = Agent::open(cfg).unwrap();
        let mut s = spec(&role, "Worker_IN_0", "./run.sh");
        // Limits: with cgroup v1 controllers, the instance has v1 groups too.
        s.limits = ResourceLimits {
            cores: Some(1),
            memory_mb: Some(256),
        };
        agent.apply(vec![s]).await.unwrap();
        let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
        let gc = read_when_written(&scratch(&agent, "Worker_IN_0").join("grandchild.pid")).await;
        let entry = report(&reports, "Worker_IN_0").unwrap().pid.unwrap();
        let groups: Vec<String> = v1_limit_groups(entry)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        std::fs::write(state.with_extension("v1"), groups.join("\n")).unwrap();
        let out = state.with_extension("first");
        std::fs::write(&out, format!("{entry} {}", gc.trim())).unwrap();
        std::future::pending::<()>().await;
    });
}

/// The cgroup v1 groups of weft (resource limits) that process `pid` is in.
fn v1_limit_groups(pid: u32) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount_of = |controller: &str| {
        mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split_whitespace();
            let ours =
                right.next()? == "cgroup" && right.nth(1)?.split(',').any(|o| o == controller);
            if !ours {
                return None;
            }
            left.split_whitespace().nth(4).map(PathBuf::from)
        })
    };
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let controller = controllers.split(',').next().filter(|c| !c.is_empty())?;
            path.contains("/weft-")
                .then(|| mount_of(controller))?
                .map(|m| m.join(path.trim_start_matches('/')))
        })
        .collect()
}

/// Whether an agent on this machine gets cgroups (a writable cgroup2 mount).
async fn cgroups_available() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cgroup = CgroupMode::Auto;
    let agent = Agent::open(cfg).unwrap();
    let yes = agent.uses_cgroups();
    shutdown(&agent).await;
    yes
}

#[tokio::test]
async fn reopening_after_an_unclean_end_kills_the_leftovers_first() {
    for mode in [CgroupMode::Auto, CgroupMode::Off] {
        let role = package(&[("run.sh", DAEMONIZING)]);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut first = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "orphans::first_agent_process",
                "--ignored",
                "--nocapture",
            ])
            .env("WEFT_TEST_STATE", &state)
            .env("WEFT_TEST_PACKAGE", &role.package)
            .env("WEFT_TEST_DIGEST", &role.digest)
            .env(
                "WEFT_TEST_CGROUP",
                if mode == CgroupMode::Off {
                    "off"
                } else {
                    "auto"
                },
            )
            .stdout(Stdio::null())
            // Its own process group, killed whole below: a closed terminal
            // (SIGHUP to weft's group) must not take the sentinel along.
            .process_group(0)
            .spawn()
            .unwrap();
        let out = state.with_extension("first");
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&out)
                && !text.is_empty()
            {
                break text;
            }
            if let Ok(Some(status)) = first.try_wait() {
                panic!("{mode:?}: the first agent ended early: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{mode:?}: the first agent never got ready"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let (entry, grandchild) = text.split_once(' ').unwrap();
        let (entry, grandchild): (u32, u32) = (entry.parse().unwrap(), grandchild.parse().unwrap());
        let v1_groups: Vec<PathBuf> = std::fs::read_to_string(state.with_extension("v1"))
            .unwrap()
            .lines()
            .map(PathBuf::from)
            .collect();
        for group in &v1_groups {
            assert!(group.is_dir(), "{mode:?}: {} exists", group.display());
        }
        nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(first.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        first.wait().unwrap();
        if mode == CgroupMode::Auto && cgroups_available().await {
            // The first agent's sentinel kills its instances' cgroups as soon
            // as its process is gone.
            let deadline = tokio::time::Instant::now() + DEADLINE;
            while alive(entry) || alive(grandchild) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{mode:?}: the sentinel left the instance running after its agent died"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // And removes the v1 groups of limits with their roots (in the
            // agent's own v1 groups, where nothing else would).
            for group in &v1_groups {
                let root = group.parent().unwrap();
                while root.exists() {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{mode:?}: the sentinel left {} behind",
                        root.display()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        } else {
            assert!(
                alive(entry) && alive(grandchild),
                "{mode:?}: the leftovers run before the reopen"
            );
        }

        let mut cfg = config(&state);
        cfg.cgroup = mode;
        let agent = Agent::open(cfg).unwrap();
        assert!(
            !alive(entry),
            "{mode:?}: open killed the old entry point {entry}"
        );
        assert!(
            !alive(grandchild),
            "{mode:?}: open killed the old grandchild {grandchild}"
        );
        for group in &v1_groups {
            assert!(
                !group.exists(),
                "{mode:?}: open removed the old cgroup v1 group {}",
                group.display()
            );
        }
        std::fs::remove_file(scratch(&agent, "Worker_IN_0").join("grandchild.pid")).unwrap();
        agent
            .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
            .await
            .unwrap();
        until(&agent, "ready again", |r| ready(r, "Worker_IN_0")).await;
        read_when_written(&scratch(&agent, "Worker_IN_0").join("grandchild.pid")).await;
        assert_eq!(
            processes_of(&state, "Worker_IN_0").len(),
            2,
            "{mode:?}: exactly one copy of the instance (entry + grandchild)"
        );
        shutdown(&agent).await;
    }
}

#[tokio::test]
async fn dropping_the_agent_runtime_without_shutdown_leaves_no_process() {
    let role = package(&[("run.sh", DAEMONIZING)]);
    let state = tempfile::tempdir().unwrap();
    let cfg = config(state.path());
    let (entry, grandchild) = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let pids = rt.block_on(async {
                let agent = Agent::open(cfg.clone()).unwrap();
                agent
                    .apply(vec![spec(&role, "Worker_IN_0", "./run.sh")])
                    .await
                    .unwrap();
                let reports = until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
                let gc =
                    read_when_written(&scratch(&agent, "Worker_IN_0").join("grandchild.pid")).await;
                (
                    report(&reports, "Worker_IN_0").unwrap().pid.unwrap(),
                    gc.trim().parse::<u32>().unwrap(),
                )
            });
            drop(rt);
            pids
        })
        .join()
        .unwrap()
    });
    assert!(!alive(entry), "the entry point {entry} outlived its agent");
    assert!(
        !alive(grandchild),
        "the grandchild {grandchild} outlived its agent"
    );
}
