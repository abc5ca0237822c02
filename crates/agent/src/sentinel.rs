//! The sentinel: a tiny `/bin/sh` beside the agent that kills every
//! instance if the agent's process dies without shutting down (`kill -9`
//! of `weft up`, a crash), so no instance outlives the fabric that ran it.
//!
//! It blocks reading a pipe whose only writer is the agent's process. The
//! kernel closes that pipe whatever way the process ends; `read` then
//! returns and the sentinel writes `1` to the agent's root group's
//! `cgroup.kill`, which kills every process of every instance. A clean
//! shutdown kills the sentinel first (SIGKILL: it does nothing). The
//! sentinel itself stays in the agent's own group, outside the one it kills.
//! Then it removes the agent's cgroup v1 groups of resource limits (they
//! sit in the agent's own groups of the v1 hierarchies, where nothing else
//! would sweep them; their processes are the v2 groups' and die with
//! them): `rmdir` of each instance group and of the root, retried for up
//! to 2 s while the killed processes exit.
//! The sentinel holds the state directory's `agent.lock` (its stdout is that
//! open file, so it shares the agent's `flock`) until it has finished, so a
//! new agent on the same state directory waits for it rather than create
//! groups it is still removing.
//! Without cgroup v2 there is no sentinel: the next `Agent::open` kills the
//! leftovers instead.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Kills the group tree at `$0` once stdin reaches EOF, then removes the
/// v1 roots given as further arguments with their instance groups.
const SCRIPT: &str = r#"read -r _
echo 1 > "$0/cgroup.kill"
for root in "$@"; do
  n=0
  while [ -d "$root" ] && [ $n -lt 100 ]; do
    for g in "$root"/*/; do
      [ -d "$g" ] && rmdir "$g" 2>/dev/null
    done
    rmdir "$root" 2>/dev/null || sleep 0.02
    n=$((n + 1))
  done
done"#;

pub(crate) struct Sentinel {
    child: Child,
}

impl Sentinel {
    /// Starts the sentinel for the group tree at `root` and the v1 roots
    /// `v1`, sharing `lock` (the agent's locked `agent.lock`).
    pub(crate) fn start(root: &Path, v1: &[&Path], lock: &File) -> std::io::Result<Sentinel> {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg(root)
            .args(v1)
            // The write end stays in this process only (close-on-exec).
            .stdin(Stdio::piped())
            .stdout(Stdio::from(lock.try_clone()?))
            .stderr(Stdio::null())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            // Its own process group: a signal to weft's group (SIGHUP when
            // the terminal closes, ^C) must not end it with the agent.
            .process_group(0)
            .spawn()?;
        Ok(Sentinel { child })
    }

    /// Stands the sentinel down: the agent stopped its instances itself.
    pub(crate) fn dismiss(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
