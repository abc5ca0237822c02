//! cgroup v2 groups for instances: every process an instance starts joins
//! its group at fork, so `cgroup.kill` reaches children that `setsid` away
//! and the group's emptiness says when the instance is really gone.
//!
//! Layout: `<mount>/<agent's own cgroup>/weft-<state hash>/<deployment>+<instance>/{entry,tasks}`
//! (before instances were keyed per deployment, `.../<instance>/...`: a
//! previous run's groups of either layout are found and killed alike).
//! The `entry` group holds the entry point and what it starts (killed on
//! every restart), `tasks` the startup tasks.
//!
//! The same types hold the cgroup v1 groups that carry vmsize limits on
//! hosts whose `cpu` / `memory` controllers are v1 hierarchies
//! (`<v1 mount>/<agent's group there>/weft-<state hash>/<deployment>+<instance>`,
//! no `entry` / `tasks` split; see `limits`): v1 has no `cgroup.kill`, so
//! [`Cgroup::kill_and_remove`] SIGKILLs the pids it lists instead.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The agent's directory of instance groups.
#[derive(Debug, Clone)]
pub(crate) struct CgroupRoot {
    path: PathBuf,
}

/// One cgroup.
#[derive(Debug, Clone)]
pub(crate) struct Cgroup {
    path: PathBuf,
}

impl CgroupRoot {
    /// Finds a writable cgroup2 mount and creates `weft-<tag>` under the
    /// agent's own group; `None` when there is none (the caller falls back
    /// to process groups).
    pub(crate) fn detect(tag: &str) -> Option<CgroupRoot> {
        let mount = cgroup2_mount()?;
        let own = own_cgroup().unwrap_or_default();
        let path = mount
            .join(own.trim_start_matches('/'))
            .join(format!("weft-{tag}"));
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "cgroup v2 not writable; using process groups");
                return None;
            }
        }
        if !path.join("cgroup.procs").exists() {
            return None;
        }
        Some(CgroupRoot { path })
    }

    /// The directory `path` (created if missing) as a root of instance
    /// groups, e.g. in a cgroup v1 hierarchy.
    pub(crate) fn create_at(path: PathBuf) -> io::Result<CgroupRoot> {
        match fs::create_dir(&path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(CgroupRoot { path }),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes what agents on other state directories left when they were
    /// killed and never reopened: `weft-*` groups beside this one with no
    /// process in them and untouched for `idle` (a live agent's groups are
    /// either populated or about to be, within moments).
    pub(crate) fn sweep_abandoned(&self, idle: Duration) {
        let (Some(parent), Some(own)) = (self.path.parent(), self.path.file_name()) else {
            return;
        };
        let Ok(entries) = fs::read_dir(parent) else {
            return;
        };
        let old = |p: &Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= idle)
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let path = e.path();
            if name == own
                || !name.to_string_lossy().starts_with("weft-")
                || !e.file_type().is_ok_and(|t| t.is_dir())
            {
                continue;
            }
            let group = Cgroup { path: path.clone() };
            if group.pids().is_empty() && old(&path) {
                match remove_tree(&path) {
                    Ok(()) => {
                        tracing::info!(cgroup = %path.display(), "removed an abandoned cgroup")
                    }
                    Err(e) => {
                        tracing::debug!(cgroup = %path.display(), error = %e, "abandoned cgroup not removed")
                    }
                }
            }
        }
    }

    /// The group of one instance (not created yet).
    pub(crate) fn instance(&self, instance_id: &str) -> Cgroup {
        Cgroup {
            path: self.path.join(instance_id),
        }
    }

    /// Every instance group left in the root (by a previous run).
    pub(crate) fn existing(&self) -> Vec<Cgroup> {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| Cgroup { path: e.path() })
            .collect()
    }
}

impl Cgroup {
    #[cfg(test)]
    pub(crate) fn at(path: PathBuf) -> Cgroup {
        Cgroup { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn child(&self, name: &str) -> Cgroup {
        Cgroup {
            path: self.path.join(name),
        }
    }

    pub(crate) fn create(&self) -> io::Result<()> {
        match fs::create_dir_all(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    }

    /// `cgroup.procs` opened for writing, for a child to join at fork.
    pub(crate) fn procs_for_join(&self) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.procs"))
    }

    /// Every process in this group and its descendants.
    pub(crate) fn pids(&self) -> Vec<Pid> {
        let mut pids = Vec::new();
        collect_pids(&self.path, &mut pids);
        pids
    }

    /// Kills every process in the group and its descendants, waits until
    /// none is left (or `timeout`), then removes the groups.
    pub(crate) fn kill_and_remove(&self, timeout: Duration) -> io::Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        let killed = OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.kill"))
            .and_then(|mut f| f.write_all(b"1"));
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            if killed.is_err() {
                // Kernels before 5.14 have no cgroup.kill.
                for pid in &pids {
                    let _ = kill(*pid, Signal::SIGKILL);
                }
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} processes still in {} after SIGKILL",
                        pids.len(),
                        self.path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        remove_tree(&self.path)
    }

    /// Sends `signal` to every process in the group and its descendants.
    pub(crate) fn signal(&self, signal: Signal) {
        for pid in self.pids() {
            let _ = kill(pid, signal);
        }
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<Pid>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(
            text.lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .map(Pid::from_raw),
        );
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), pids);
            }
        }
    }
}

/// Removes empty groups bottom-up (cgroupfs directories are removed with
/// rmdir, their files go with them).
fn remove_tree(dir: &Path) -> io::Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The mount point of the cgroup2 filesystem, from `/proc/self/mountinfo`.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        if fstype != "cgroup2" {
            return None;
        }
        let mount_point = left.split_whitespace().nth(4)?;
        Some(PathBuf::from(unescape_mount(mount_point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
pub(crate) fn unescape_mount(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3
                && let Ok(v) = u8::from_str_radix(&digits, 8)
            {
                out.push(v as char);
                for _ in 0..3 {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The agent's own v2 group (`0::<path>` in `/proc/self/cgroup`).
fn own_cgroup() -> Option<String> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::unescape_mount;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mount(r"/sys/fs/cgroup"), "/sys/fs/cgroup");
        assert_eq!(unescape_mount(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_mount(r"/mnt/x\"), r"/mnt/x\");
    }
}
