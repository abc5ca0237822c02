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
//! Without cgroups there is no sentinel: the next `Agent::open` kills the
//! leftovers instead.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Kills the group tree at `root` once stdin reaches EOF.
const SCRIPT: &str = r#"read -r _; echo 1 > "$0/cgroup.kill""#;

pub(crate) struct Sentinel {
    child: Child,
}

impl Sentinel {
    /// Starts the sentinel for the group tree at `root`.
    pub(crate) fn start(root: &Path) -> std::io::Result<Sentinel> {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg(root)
            // The write end stays in this process only (close-on-exec).
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear()
            .spawn()?;
        Ok(Sentinel { child })
    }

    /// Stands the sentinel down: the agent stopped its instances itself.
    pub(crate) fn dismiss(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
