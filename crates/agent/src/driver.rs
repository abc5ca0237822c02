//! The process driver: starts a command line with `/bin/sh -c` in the
//! approot, in its own process group, with a clean environment, its output
//! captured, and (when the agent has cgroups) inside the instance's cgroup
//! from its first instruction, so nothing it forks can escape the group.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::cgroup::Cgroup;
use crate::logs::{LogBook, pump};
use crate::protocol::LogStream;

pub(crate) struct Launch<'a> {
    pub(crate) command_line: &'a str,
    pub(crate) cwd: &'a Path,
    pub(crate) env: &'a [(String, String)],
    pub(crate) cgroup: Option<&'a Cgroup>,
    pub(crate) logs: Arc<LogBook>,
}

/// A started process, leader of its own process group.
pub(crate) struct Process {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: u32,
}

impl Process {
    /// Sends `signal` to the process's whole group.
    pub(crate) fn signal_group(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = killpg(Pid::from_raw(pid), signal);
        }
    }
}

pub(crate) fn spawn(launch: Launch<'_>) -> io::Result<Process> {
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(launch.command_line)
        .current_dir(launch.cwd)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let procs: Option<File> = match launch.cgroup {
        Some(cgroup) => Some(cgroup.procs_for_join()?),
        None => None,
    };
    if let Some(procs) = procs.as_ref() {
        let fd = procs.as_fd().try_clone_to_owned()?;
        // SAFETY: the closure runs in the forked child before exec. It only
        // calls write(2) on a descriptor opened before the fork (no
        // allocation, no lock), which is async-signal-safe. Writing "0" to
        // cgroup.procs moves the calling process into the group, so the
        // command and everything it forks start inside it.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::write(&fd, b"0").map_err(io::Error::from)?;
                Ok(())
            });
        }
    }
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(pump(launch.logs.clone(), LogStream::Stdout, stdout));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(pump(launch.logs.clone(), LogStream::Stderr, stderr));
    }
    Ok(Process { child, pid })
}
