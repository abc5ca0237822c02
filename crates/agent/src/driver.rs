//! The process driver: starts a command line with `/bin/sh -c` in the
//! approot, in its own process group, with a clean environment, its output
//! captured, and (when the agent has cgroups) inside the instance's cgroup
//! from its first instruction, so nothing it forks can escape the group.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cgroup::Cgroup;
use crate::logs::{LogBook, pump};
use crate::output::OutputTail;
use crate::procs;
use crate::protocol::LogStream;

/// How long [`Process::last_output`] waits for the output of a process
/// that exited to be read to its end.
const OUTPUT_DRAIN: Duration = Duration::from_millis(500);

pub(crate) struct Launch<'a> {
    pub(crate) command_line: &'a str,
    pub(crate) cwd: &'a Path,
    pub(crate) env: &'a [(String, String)],
    pub(crate) cgroup: Option<&'a Cgroup>,
    /// cgroup v1 groups (resource limits) to join too.
    pub(crate) v1: &'a [Cgroup],
    pub(crate) logs: Arc<LogBook>,
    /// Run as this user instead of the agent's.
    pub(crate) user: Option<Credentials>,
}

/// Who a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) uid: Uid,
    pub(crate) gid: Gid,
}

/// A started process, leader of its own process group. A task reaps it
/// as soon as it exits (no zombie lingers until the instance stops).
pub(crate) struct Process {
    pub(crate) pid: u32,
    exit: watch::Receiver<Option<Result<ExitStatus, String>>>,
    /// Its last lines of output.
    tail: Arc<OutputTail>,
    /// The tasks copying its stdout and stderr.
    pumps: Vec<JoinHandle<()>>,
}

impl Process {
    /// Sends `signal` to the process's whole group.
    pub(crate) fn signal_group(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = killpg(Pid::from_raw(pid), signal);
        }
    }
}

impl Process {
    /// Waits until the process exits.
    pub(crate) async fn wait(&mut self) -> Result<ExitStatus, String> {
        match self.exit.wait_for(Option::is_some).await {
            Ok(exit) => exit.clone().unwrap_or_else(|| Err("no exit status".into())),
            Err(_) => Err("the process's reaper is gone".into()),
        }
    }

    /// The last lines the process wrote to stderr (stdout if it wrote
    /// nothing there), once both streams are read to their end, waiting at
    /// most [`OUTPUT_DRAIN`] for that after the process exited (something
    /// it started in the background may hold them open).
    pub(crate) async fn last_output(&mut self) -> Option<String> {
        let pumps = std::mem::take(&mut self.pumps);
        let _ = tokio::time::timeout(OUTPUT_DRAIN, async {
            for pump in pumps {
                let _ = pump.await;
            }
        })
        .await;
        self.tail.summary()
    }

    /// Waits until the process and every process left in its group have
    /// exited.
    pub(crate) async fn wait_group(&mut self) {
        let _ = self.wait().await;
        let pid = self.pid;
        loop {
            let alive = tokio::task::spawn_blocking(move || procs::group_alive(pid))
                .await
                .unwrap_or(false);
            if !alive {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The line given to `/bin/sh -c`. A single command naming its program by
/// path (`./hello web`, `/usr/bin/x --flag`) gets `exec` in front, so the
/// process the agent watches and signals is the program itself rather than
/// a shell waiting for it (bash does the same for `-c`; dash does not).
pub(crate) fn shell_line(command_line: &str) -> Cow<'_, str> {
    let plain = command_line.trim().chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '\t' | '_' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '-'
            )
    });
    let first = command_line.split_whitespace().next().unwrap_or("");
    if plain && first.contains('/') {
        Cow::Owned(format!("exec {}", command_line.trim()))
    } else {
        Cow::Borrowed(command_line)
    }
}

/// For a command line that names its program by path, checks that the
/// program is there and executable (relative paths from the approot), so
/// a missing program is a clear failure rather than a crash loop of status
/// 127. Other command lines are left to the shell.
pub(crate) fn check_program(command_line: &str, approot: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Some(first) = command_line.split_whitespace().next() else {
        return Err("the command line is empty".into());
    };
    if !first.contains('/') || first.contains(['$', '`', '"', '\'', '\\', '*', '?', '~']) {
        return Ok(());
    }
    let path = approot.join(first);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(m) if m.is_file() => Err(format!("{first} is not executable in the approot")),
        Ok(_) => Err(format!("{first} is not a file in the approot")),
        Err(_) => Err(format!("{first} does not exist in the approot")),
    }
}

pub(crate) fn spawn(launch: Launch<'_>) -> io::Result<Process> {
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(shell_line(launch.command_line).as_ref())
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
    let fd = match procs.as_ref() {
        Some(procs) => Some(procs.as_fd().try_clone_to_owned()?),
        None => None,
    };
    // Limits are best effort: a v1 group that cannot be joined leaves the
    // process without that group's limit, not without a start.
    let v1: Vec<OwnedFd> = launch
        .v1
        .iter()
        .filter_map(|g| match g.procs_for_join() {
            Ok(procs) => Some(OwnedFd::from(procs)),
            Err(e) => {
                tracing::warn!(cgroup = %g.path().display(), error = %e, "cannot join a cgroup v1 group of resource limits; the process runs without them");
                None
            }
        })
        .collect();
    let user = launch.user;
    if fd.is_some() || !v1.is_empty() || user.is_some() {
        // SAFETY: the closure runs in the forked child before exec. It only
        // makes system calls on values prepared before the fork (no
        // allocation, no lock): write(2) on open descriptors, setgroups(2),
        // setgid(2), setuid(2), all async-signal-safe. Writing "0" to
        // cgroup.procs moves the calling process into the group (while still
        // privileged), so the command and everything it forks start inside
        // it (and inside the v1 groups that carry its limits); then the
        // process drops to the instance's user.
        unsafe {
            command.pre_exec(move || {
                if let Some(fd) = &fd {
                    nix::unistd::write(fd, b"0").map_err(io::Error::from)?;
                }
                for fd in &v1 {
                    nix::unistd::write(fd, b"0").map_err(io::Error::from)?;
                }
                if let Some(user) = user {
                    nix::unistd::setgroups(&[user.gid]).map_err(io::Error::from)?;
                    nix::unistd::setgid(user.gid).map_err(io::Error::from)?;
                    nix::unistd::setuid(user.uid).map_err(io::Error::from)?;
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn()?;
    let pid = child.id().unwrap_or(0);
    let tail = Arc::new(OutputTail::default());
    let mut pumps = Vec::with_capacity(2);
    if let Some(stdout) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(
            launch.logs.clone(),
            tail.clone(),
            LogStream::Stdout,
            stdout,
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(
            launch.logs.clone(),
            tail.clone(),
            LogStream::Stderr,
            stderr,
        )));
    }
    let (tx, exit) = watch::channel(None);
    tokio::spawn(async move {
        let status = child.wait().await.map_err(|e| e.to_string());
        tx.send_replace(Some(status));
    });
    Ok(Process {
        pid,
        exit,
        tail,
        pumps,
    })
}

#[cfg(test)]
mod tests {
    use super::{check_program, shell_line};

    #[test]
    fn a_program_named_by_path_must_exist_and_be_executable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.sh"), "").unwrap();
        std::fs::set_permissions(
            dir.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(dir.path().join("data"), "").unwrap();
        let cases = [
            ("./run.sh web", Ok(())),
            ("sleep 1", Ok(())),
            ("$HOME/x", Ok(())),
            (
                "./nope",
                Err("./nope does not exist in the approot".to_owned()),
            ),
            (
                "./data",
                Err("./data is not executable in the approot".to_owned()),
            ),
            ("   ", Err("the command line is empty".to_owned())),
        ];
        for (line, expected) in cases {
            assert_eq!(check_program(line, dir.path()), expected, "{line}");
        }
    }

    #[test]
    fn only_a_single_command_by_path_is_execed() {
        let cases = [
            ("./hello web", "exec ./hello web"),
            ("  /usr/bin/env -i x ", "exec /usr/bin/env -i x"),
            ("sleep 1000", "sleep 1000"),
            ("exit 1", "exit 1"),
            ("./a.sh && ./b.sh", "./a.sh && ./b.sh"),
            ("./a.sh > out", "./a.sh > out"),
            ("FOO=1 ./a.sh", "FOO=1 ./a.sh"),
            ("./a.sh $HOME", "./a.sh $HOME"),
            ("./a.sh; ./b.sh", "./a.sh; ./b.sh"),
        ];
        for (line, expected) in cases {
            assert_eq!(shell_line(line), expected, "{line}");
        }
    }
}
