//! An instance's vmsize as cgroup limits: memory limited to the size's
//! memory (`memory_mb` MiB, no swap beyond it), CPU to the size's cores
//! (CFS bandwidth: `cores × 100 ms` of CPU time per 100 ms period). They
//! cover everything the instance starts, entry point and startup tasks
//! together, as a VM's size covers everything in the VM.
//!
//! Where the cgroup v2 mount offers the `cpu` / `memory` controllers, the
//! agent enables them down to its `weft-<tag>` root (`cgroup.subtree_control`
//! of its own group and of the root) and writes `cpu.max` / `memory.max`
//! (and `memory.swap.max`) in the instance's v2 group. Where it does not
//! (hybrid hosts: a v2 mount with no controllers, `cpu` and `memory` as v1
//! hierarchies, as on many Docker and older hosts), the agent keeps a root
//! `weft-<tag>` under its own group in each v1 hierarchy, creates the
//! instance's group there with the v2 group's name (`<deployment>+<instance>`),
//! writes `cpu.cfs_period_us` / `cpu.cfs_quota_us` and
//! `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`), and every
//! process joins it before exec like it joins the v2 group. The v1 groups
//! live as long as a run, like the v2 group, and a previous agent run's are
//! killed and removed when an agent opens the state directory.
//!
//! Limits are best effort: a limit file that cannot be written (EACCES, a
//! missing file, a value the kernel refuses) is a `tracing` warning naming
//! the file, and the instance runs without that limit. Without any
//! controller (or with `CgroupMode::Off`) instances run unlimited, said
//! once by a warning.
//!
//! cgroup v2 lets a group hand controllers to its children only while it
//! holds no process itself, the root group excepted. The agent's
//! `weft-<tag>` root is a child of the agent's own group, which holds the
//! agent: so v2 limits apply when the agent runs in the root group (a
//! host service placed in `/`); anywhere else (a login session's scope, a
//! systemd service's group, a container's namespace root) enabling fails
//! with EBUSY, a warning, and instances run without those limits. Moving
//! the agent into a leaf group of its own first would lift that; it is not
//! done yet.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::cgroup::{Cgroup, CgroupRoot, unescape_mount};
use crate::protocol::ResourceLimits;

/// The CFS period: CPU limits are `cores × CPU_PERIOD_US` per period.
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// A controller the limits use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Cpu,
    Memory,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Memory => "memory",
        }
    }
}

/// Where one controller's limits are written.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    /// In the instance's cgroup v2 group.
    V2,
    /// In the instance's group under this root of a v1 hierarchy.
    V1(CgroupRoot),
}

/// Where the limits of every instance go, found when the agent opens.
#[derive(Debug, Clone, Default)]
pub(crate) struct LimitRoots {
    pub(crate) cpu: Option<Place>,
    pub(crate) memory: Option<Place>,
}

impl LimitRoots {
    /// Enables `cpu` and `memory` in the v2 tree down to `v2` (the agent's
    /// `weft-<tag>` root) where the mount offers them, else finds their v1
    /// hierarchies and creates `weft-<tag>` under the agent's own group in
    /// each.
    pub(crate) fn detect(tag: &str, v2: Option<&CgroupRoot>) -> LimitRoots {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mut roots = LimitRoots::default();
        for controller in [Controller::Cpu, Controller::Memory] {
            let place = v2
                .filter(|root| enable_v2(root.path(), controller))
                .map(|_| Place::V2)
                .or_else(|| {
                    let dir = v1_group(&mountinfo, &own, controller.name())
                        .filter(|d| d.is_dir())?;
                    // cpu and memory may share a hierarchy (one root).
                    let path = dir.join(format!("weft-{tag}"));
                    match CgroupRoot::create_at(path.clone()) {
                        Ok(root) => Some(Place::V1(root)),
                        Err(e) => {
                            tracing::warn!(controller = controller.name(), path = %path.display(), error = %e, "cannot create a cgroup v1 group; instances run without this limit");
                            None
                        }
                    }
                });
            match controller {
                Controller::Cpu => roots.cpu = place,
                Controller::Memory => roots.memory = place,
            }
        }
        roots
    }

    /// The v1 roots (each once), for leftover cleanup and removal.
    pub(crate) fn v1_roots(&self) -> Vec<&CgroupRoot> {
        let mut roots: Vec<&CgroupRoot> = Vec::new();
        for place in [&self.cpu, &self.memory].into_iter().flatten() {
            if let Place::V1(root) = place
                && !roots.iter().any(|r| r.path() == root.path())
            {
                roots.push(root);
            }
        }
        roots
    }

    /// `cpu: v1 /sys/fs/cgroup/cpu/weft-…, memory: v2`, for the log.
    pub(crate) fn describe(&self) -> String {
        let one = |p: &Option<Place>| match p {
            None => "none".to_owned(),
            Some(Place::V2) => "v2".to_owned(),
            Some(Place::V1(root)) => format!("v1 {}", root.path().display()),
        };
        format!("cpu: {}, memory: {}", one(&self.cpu), one(&self.memory))
    }
}

/// The files and values that carry `limits` for one controller.
pub(crate) fn limit_files(
    controller: Controller,
    v2: bool,
    limits: &ResourceLimits,
) -> Vec<(&'static str, String)> {
    match (controller, v2) {
        (Controller::Cpu, _) => {
            let Some(cores) = limits.cores.filter(|c| *c > 0) else {
                return Vec::new();
            };
            let quota = u64::from(cores) * CPU_PERIOD_US;
            if v2 {
                vec![("cpu.max", format!("{quota} {CPU_PERIOD_US}"))]
            } else {
                vec![
                    ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ]
            }
        }
        (Controller::Memory, _) => {
            let Some(mb) = limits.memory_mb.filter(|m| *m > 0) else {
                return Vec::new();
            };
            let bytes = mb.saturating_mul(1 << 20).to_string();
            if v2 {
                vec![("memory.max", bytes), ("memory.swap.max", "0".to_owned())]
            } else {
                // memsw (memory + swap) may not be below the memory limit,
                // so it is written second.
                vec![
                    ("memory.limit_in_bytes", bytes.clone()),
                    ("memory.memsw.limit_in_bytes", bytes),
                ]
            }
        }
    }
}

/// Writes `value` to the existing file `path` (cgroup files are never
/// created: a missing one is an error).
fn write_existing(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// Files whose absence is normal (no swap accounting): not worth a warning.
fn optional(file: &str) -> bool {
    matches!(file, "memory.swap.max" | "memory.memsw.limit_in_bytes")
}

/// The limit groups of one run of an instance.
#[derive(Debug, Default)]
pub(crate) struct RunLimits {
    /// v1 groups every process joins (besides the v2 group).
    pub(crate) v1: Vec<Cgroup>,
    /// The groups whose memory limit is set, and whether each is v2.
    memory: Vec<(Cgroup, bool)>,
}

impl RunLimits {
    /// Writes `limits` into `v2_group` (the instance's, created) and into
    /// groups `name` under the v1 roots (created). Never fails: what cannot
    /// be written is a warning and that limit is not applied.
    pub(crate) fn apply(
        roots: &LimitRoots,
        v2_group: Option<&Cgroup>,
        name: &str,
        limits: &ResourceLimits,
    ) -> RunLimits {
        let mut run = RunLimits::default();
        for (controller, place) in [
            (Controller::Cpu, &roots.cpu),
            (Controller::Memory, &roots.memory),
        ] {
            let Some(place) = place else { continue };
            let (group, v2) = match place {
                Place::V2 => match v2_group {
                    Some(g) => (g.clone(), true),
                    None => continue,
                },
                Place::V1(root) => (root.instance(name), false),
            };
            let files = limit_files(controller, v2, limits);
            if files.is_empty() {
                continue;
            }
            if !v2 {
                if let Err(e) = group.create() {
                    tracing::warn!(cgroup = %group.path().display(), error = %e, "failed to create the instance's cgroup v1 group; it runs without this limit");
                    continue;
                }
                if !run.v1.iter().any(|g| g.path() == group.path()) {
                    run.v1.push(group.clone());
                }
            }
            for (file, value) in files {
                let path = group.path().join(file);
                match write_existing(&path, &value) {
                    Ok(()) => {}
                    Err(e) if optional(file) && e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %path.display(), %value, error = %e, "failed to write a resource limit; the instance runs without it");
                    }
                }
            }
            if controller == Controller::Memory {
                run.memory.push((group, v2));
            }
        }
        run
    }

    /// How many times the kernel's OOM killer killed a process of this run
    /// for its memory limit.
    pub(crate) fn oom_kills(&self) -> u64 {
        self.memory
            .iter()
            .map(|(group, v2)| {
                let (file, key) = if *v2 {
                    ("memory.events", "oom_kill")
                } else {
                    ("memory.oom_control", "oom_kill")
                };
                fs::read_to_string(group.path().join(file))
                    .ok()
                    .and_then(|text| counter(&text, key))
                    .unwrap_or(0)
            })
            .sum()
    }

    /// ` (out of memory: the instance's limit is 64 MiB)` when the OOM
    /// killer struck in this run, else nothing.
    pub(crate) fn oom_hint(&self, limits: &ResourceLimits) -> String {
        match (self.oom_kills(), limits.memory_mb) {
            (0, _) | (_, None) => String::new(),
            (_, Some(mb)) => format!(" (out of memory: the instance's limit is {mb} MiB)"),
        }
    }
}

/// `value` of the line `key value` in a flat-keyed cgroup file.
fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Enables `controller` in `cgroup.subtree_control` of the agent's own v2
/// group and of its root `root`, so that instance groups under the root
/// have the controller's files; whether they now do.
fn enable_v2(root: &Path, controller: Controller) -> bool {
    let name = controller.name();
    let Some(own) = root.parent() else {
        return false;
    };
    let offered = fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
    if !offered.split_whitespace().any(|c| c == name) {
        return false;
    }
    for dir in [own, root] {
        let file = dir.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&file).unwrap_or_default();
        if enabled.split_whitespace().any(|c| c == name) {
            continue;
        }
        if let Err(e) = write_existing(&file, &format!("+{name}")) {
            // EBUSY: the agent's own group holds processes (the agent's), and
            // v2 allows controllers only for groups without them.
            tracing::warn!(file = %file.display(), controller = name, error = %e, "cannot enable a cgroup v2 controller; instances run without this limit");
            return false;
        }
    }
    true
}

/// The agent's own group in the v1 hierarchy that has `controller`, as a
/// directory: the hierarchy's mount point joined with the agent's path in
/// it (`/proc/self/cgroup`), relative to the mount's root.
fn v1_group(mountinfo: &str, own_cgroups: &str, controller: &str) -> Option<PathBuf> {
    let (root, mount_point) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        if right.next()? != "cgroup" {
            return None;
        }
        let options = right.nth(1)?;
        if !options.split(',').any(|o| o == controller) {
            return None;
        }
        let mut left = left.split_whitespace();
        let root = unescape_mount(left.nth(3)?);
        let mount_point = unescape_mount(left.next()?);
        Some((root, mount_point))
    })?;
    let own = own_cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_owned())
    })?;
    let relative = match own.strip_prefix(root.trim_end_matches('/')) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
        _ => own,
    };
    Some(Path::new(&mount_point).join(relative.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{
        Controller, LimitRoots, Place, RunLimits, counter, enable_v2, limit_files, v1_group,
    };
    use crate::cgroup::CgroupRoot;
    use crate::protocol::ResourceLimits;

    /// Limits go where their files are; a missing file is skipped (a
    /// warning), the others are still written.
    #[test]
    fn limits_are_written_to_existing_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = CgroupRoot::create_at(dir.path().join("cpu")).unwrap();
        let memory = CgroupRoot::create_at(dir.path().join("memory")).unwrap();
        let v2 = crate::cgroup::Cgroup::at(dir.path().join("v2"));
        for (group, files) in [
            (dir.path().join("cpu/d+i"), &["cpu.cfs_period_us"][..]),
            (dir.path().join("memory/d+i"), &["memory.limit_in_bytes"]),
            (dir.path().join("v2"), &["cpu.max", "memory.max"]),
        ] {
            std::fs::create_dir_all(&group).unwrap();
            for f in files {
                std::fs::write(group.join(f), "untouched").unwrap();
            }
        }
        let limits = ResourceLimits {
            cores: Some(4),
            memory_mb: Some(1),
        };
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).ok();

        let roots = LimitRoots {
            cpu: Some(Place::V1(cpu)),
            memory: Some(Place::V1(memory)),
        };
        let run = RunLimits::apply(&roots, Some(&v2), "d+i", &limits);
        assert_eq!(run.v1.len(), 2, "both v1 groups are joined");
        assert_eq!(read("cpu/d+i/cpu.cfs_period_us").as_deref(), Some("100000"));
        assert_eq!(read("cpu/d+i/cpu.cfs_quota_us"), None, "never created");
        assert_eq!(
            read("memory/d+i/memory.limit_in_bytes").as_deref(),
            Some("1048576")
        );
        assert_eq!(read("v2/cpu.max").as_deref(), Some("untouched"));

        let roots = LimitRoots {
            cpu: Some(Place::V2),
            memory: None,
        };
        let run = RunLimits::apply(&roots, Some(&v2), "d+i", &limits);
        assert!(run.v1.is_empty());
        assert_eq!(read("v2/cpu.max").as_deref(), Some("400000 100000"));
        assert_eq!(read("v2/memory.max").as_deref(), Some("untouched"));
        assert_eq!(run.oom_kills(), 0);
    }

    #[test]
    fn a_vmsize_becomes_cfs_quota_and_memory_limits() {
        let medium = ResourceLimits {
            cores: Some(2),
            memory_mb: Some(3584),
        };
        let none = ResourceLimits::default();
        let zero = ResourceLimits {
            cores: Some(0),
            memory_mb: Some(0),
        };
        type Case<'a> = (
            Controller,
            bool,
            &'a ResourceLimits,
            &'a [(&'a str, &'a str)],
        );
        let cases: [Case; 6] = [
            (
                Controller::Cpu,
                true,
                &medium,
                &[("cpu.max", "200000 100000")],
            ),
            (
                Controller::Cpu,
                false,
                &medium,
                &[
                    ("cpu.cfs_period_us", "100000"),
                    ("cpu.cfs_quota_us", "200000"),
                ],
            ),
            (
                Controller::Memory,
                true,
                &medium,
                &[("memory.max", "3758096384"), ("memory.swap.max", "0")],
            ),
            (
                Controller::Memory,
                false,
                &medium,
                &[
                    ("memory.limit_in_bytes", "3758096384"),
                    ("memory.memsw.limit_in_bytes", "3758096384"),
                ],
            ),
            (Controller::Cpu, false, &none, &[]),
            (Controller::Memory, true, &zero, &[]),
        ];
        for (controller, v2, limits, expected) in cases {
            let files = limit_files(controller, v2, limits);
            let files: Vec<(&str, &str)> = files.iter().map(|(f, v)| (*f, v.as_str())).collect();
            assert_eq!(files, expected, "{controller:?} v2={v2} {limits:?}");
        }
    }

    #[test]
    fn the_agents_v1_group_is_found_from_mountinfo_and_proc_self_cgroup() {
        let hybrid = "\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let hybrid_own = "4:memory:/process_api/452c\n2:cpuacct:/\n1:cpu:/\n0::/\n";
        let docker = "\
1 0 0:1 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
2 0 0:2 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
";
        let docker_own = "5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc/sub\n";
        let cases = [
            (hybrid, hybrid_own, "cpu", Some("/sys/fs/cgroup/cpu")),
            (
                hybrid,
                hybrid_own,
                "memory",
                Some("/sys/fs/cgroup/memory/process_api/452c"),
            ),
            (hybrid, hybrid_own, "cpuset", None),
            (
                docker,
                docker_own,
                "cpu",
                Some("/sys/fs/cgroup/cpu,cpuacct/sub"),
            ),
            (docker, docker_own, "memory", Some("/sys/fs/cgroup/memory")),
            (docker, "", "memory", None),
        ];
        for (mountinfo, own, controller, expected) in cases {
            assert_eq!(
                v1_group(mountinfo, own, controller),
                expected.map(PathBuf::from),
                "{controller} in {mountinfo}"
            );
        }
    }

    /// A v2 controller is enabled in the agent's own group and its root
    /// when the own group offers it; not when it does not or when the
    /// kernel refuses (here: a directory where the file should be).
    #[test]
    fn v2_controllers_are_enabled_down_to_the_root_when_offered() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own");
        let root = own.join("weft-x");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            own.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p.join("cgroup.subtree_control")).unwrap()
        };

        assert!(enable_v2(&root, Controller::Cpu));
        assert_eq!(
            (read(&own), read(&root)),
            ("+cpu".to_owned(), "+cpu".to_owned())
        );

        std::fs::write(own.join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::remove_file(root.join("cgroup.subtree_control")).unwrap();
        std::fs::create_dir(root.join("cgroup.subtree_control")).unwrap();
        assert!(
            !enable_v2(&root, Controller::Memory),
            "the root's file cannot be written"
        );
        assert_eq!(read(&own), "memory\n", "already enabled: left alone");

        std::fs::write(own.join("cgroup.controllers"), "pids\n").unwrap();
        assert!(!enable_v2(&root, Controller::Cpu), "not offered");
    }

    #[test]
    fn oom_kill_counters_are_read_from_flat_keyed_files() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(counter(v2, "oom_kill"), Some(1));
        assert_eq!(counter(v1, "oom_kill"), Some(3));
        assert_eq!(counter(v1, "oom"), None);
    }
}
