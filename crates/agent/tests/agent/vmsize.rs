//! vmsize limits: an instance's processes run under its size's memory and
//! CPU (cgroup v2 `memory.max` / `cpu.max`, or the v1 `memory` and `cpu`
//! hierarchies where the v2 mount has no controllers). With
//! `WEFT_TEST_NO_CGROUP=1` (no cgroups) instances run unlimited.

use weft_agent::Agent;
use weft_agent::protocol::{AgentApi, InstanceStatus, ResourceLimits, TaskType};

use crate::common::*;

/// Writes `name=value` for every limit file in the caller's own groups
/// (every cgroup mount joined with its path in `/proc/self/cgroup`) to
/// `$SCRATCH/$1.limits`.
const PRINT_LIMITS: &str = r#"out="$SCRATCH/$1.limits"
mounts=$(sed -n 's/^[^ ]* [^ ]* [^ ]* [^ ]* \([^ ]*\) .* - cgroup2\{0,1\} .*/\1/p' /proc/self/mountinfo)
while IFS=: read -r _ _ path; do
  for m in $mounts; do
    for f in cpu.max memory.max memory.swap.max cpu.cfs_period_us cpu.cfs_quota_us memory.limit_in_bytes memory.memsw.limit_in_bytes; do
      [ -f "$m$path/$f" ] && echo "$f=$(cat "$m$path/$f")"
    done
  done
done < /proc/self/cgroup | sort -u > "$out.tmp"
mv "$out.tmp" "$out""#;

fn unlimited() -> bool {
    std::env::var_os("WEFT_TEST_NO_CGROUP").is_some()
}

/// Whether the printed limits say 2 cores and 96 MiB, through v2 or v1.
fn limited_to_medium(printed: &str) -> (bool, bool) {
    let has = |line: &str| printed.lines().any(|l| l == line);
    let cpu = has("cpu.max=200000 100000")
        || (has("cpu.cfs_quota_us=200000") && has("cpu.cfs_period_us=100000"));
    let memory = has("memory.max=100663296") || has("memory.limit_in_bytes=100663296");
    (cpu, memory)
}

#[tokio::test]
async fn the_entry_point_and_startup_tasks_run_under_the_vmsize_limits() {
    let role = package(&[
        ("limits.sh", PRINT_LIMITS),
        ("run.sh", r#"./limits.sh entry; exec sleep 1000"#),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.limits = ResourceLimits {
        cores: Some(2),
        memory_mb: Some(96),
    };
    s.startup = vec![crate::startup::task("./limits.sh task", TaskType::Simple)];
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    for who in ["task", "entry"] {
        let path = scratch(&agent, "Worker_IN_0").join(format!("{who}.limits"));
        let printed = read_when_written(&path).await;
        let expected = if unlimited() {
            (false, false)
        } else {
            (true, true)
        };
        assert_eq!(
            limited_to_medium(&printed),
            expected,
            "(cpu, memory) limits of the {who} (no cgroup cpu/memory controller on this host?): {printed}"
        );
    }
    shutdown(&agent).await;
}

#[tokio::test]
async fn a_memory_hog_is_oom_killed_and_reported_as_a_crash() {
    let role = package(&[(
        "hog.sh",
        r#"x=$(head -c 300000000 /dev/zero | tr '\0' a)
echo survived > "$SCRATCH/hog"
exec sleep 1000"#,
    )]);
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(state.path());
    cfg.cycling_crashes = 2;
    let agent = Agent::open(cfg).unwrap();
    let mut s = spec(&role, "Worker_IN_0", "./hog.sh");
    s.limits = ResourceLimits {
        cores: Some(1),
        memory_mb: Some(64),
    };
    agent.apply(vec![s]).await.unwrap();
    if unlimited() {
        until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
        assert_eq!(
            read_when_written(&scratch(&agent, "Worker_IN_0").join("hog")).await,
            "survived\n",
            "without cgroups the hog runs unlimited"
        );
    } else {
        let reports = until(&agent, "a crash loop", |r| {
            report(r, "Worker_IN_0").is_some_and(|x| x.status == InstanceStatus::CyclingRole)
        })
        .await;
        let r = report(&reports, "Worker_IN_0").unwrap();
        assert_eq!(
            r.message.as_deref(),
            Some(
                "the entry point `./hog.sh` was killed by signal SIGKILL \
                 (out of memory: the instance's limit is 64 MiB)"
            )
        );
        assert!(!r.ready);
        assert!(
            !scratch(&agent, "Worker_IN_0").join("hog").exists(),
            "the hog never got its 300 MB"
        );
    }
    shutdown(&agent).await;
}

/// A limit the kernel refuses (a CPU quota beyond its maximum) is a
/// warning: the instance runs without it, with the other limits.
#[tokio::test]
async fn a_limit_the_kernel_refuses_is_left_out_and_the_instance_runs() {
    let role = package(&[
        ("limits.sh", PRINT_LIMITS),
        ("run.sh", r#"./limits.sh entry; exec sleep 1000"#),
    ]);
    let (_state, agent) = open();
    let mut s = spec(&role, "Worker_IN_0", "./run.sh");
    s.limits = ResourceLimits {
        cores: Some(u32::MAX),
        memory_mb: Some(96),
    };
    agent.apply(vec![s]).await.unwrap();
    until(&agent, "ready", |r| ready(r, "Worker_IN_0")).await;
    let printed = read_when_written(&scratch(&agent, "Worker_IN_0").join("entry.limits")).await;
    let quota = u64::from(u32::MAX) * 100_000;
    assert!(
        !printed.contains(&quota.to_string()),
        "the refused quota is not there: {printed}"
    );
    assert_eq!(
        limited_to_medium(&printed).1,
        !unlimited(),
        "the memory limit is applied all the same: {printed}"
    );
    shutdown(&agent).await;
}
