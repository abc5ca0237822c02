//! Finding an instance's processes without a cgroup: every process the
//! agent starts carries `WEFT_RUNTIME=unix:<run dir>/<n>.sock` in its
//! environment, and its children inherit it, even those that `setsid`
//! away from the process group. A `/proc` scan for that marker finds them
//! (and the leftovers of a previous agent run on the same state directory).
//! A process that scrubs its own environment escapes this fallback; the
//! cgroup driver has no such gap.

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Live (not zombie) processes whose environment has a variable `name`
/// whose value starts with `value_prefix`.
pub(crate) fn marked(name: &str, value_prefix: &str) -> Vec<Pid> {
    let own = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = format!("{name}={value_prefix}");
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
                return false;
            };
            environ
                .split(|b| *b == 0)
                .any(|var| var.starts_with(needle.as_bytes()))
                && !is_zombie(*pid)
        })
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}

/// Whether `/proc/<pid>/stat` says the process is a zombie (or it is gone).
pub(crate) fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces and parentheses.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_none_or(|state| state == "Z" || state == "X")
}

/// SIGKILLs every marked process until none is left or `timeout` passes;
/// returns how many are still alive.
pub(crate) fn kill_marked(name: &str, value_prefix: &str, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let pids = marked(name, value_prefix);
        if pids.is_empty() || Instant::now() >= deadline {
            return pids.len();
        }
        for pid in pids {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether any live (not zombie) process is in process group `pgid`.
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the parenthesised command: state, ppid, pgrp.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let pgrp = fields.nth(1).and_then(|p| p.parse::<u32>().ok());
            pgrp == Some(pgid) && state != "Z" && state != "X"
        })
}
