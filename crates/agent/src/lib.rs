//! The weft agent: one per host. Prepares role instances from a package,
//! starts them through the `process` driver, supervises, probes and stops
//! them, and reports their status to the controller through
//! [`protocol::AgentApi`] (in-process here; the same messages travel as
//! JSON when the fabric spans hosts).
//!
//! ```text
//! Agent (handle) ── apply(desired) ──► one supervisor task per instance
//!   prepare: approot (unpacked once per package digest and role), local storage,
//!            ports (declared, else remapped), runtime endpoint, environment
//!   run:     startup tasks (simple in order, background, foreground), then the
//!            entry point: /bin/sh -c in the approot, own process group, own cgroup,
//!            the vmsize's CPU and memory limits
//!   watch:   exit → recycle with backoff (CyclingRole on a crash loop);
//!            probes + the instance's Busy/Ready → report.ready
//!   stop:    Stopping event, SIGTERM, grace, SIGKILL of everything it started
//!        ◄── reports() (a watch of every instance's InstanceReport)
//! ```
//!
//! ```no_run
//! use weft_agent::protocol::AgentApi;
//! use weft_agent::{Agent, AgentConfig};
//!
//! # async fn demo(specs: Vec<weft_agent::protocol::InstanceSpec>) -> Result<(), weft_agent::AgentError> {
//! let agent = Agent::open(AgentConfig::new("/var/lib/weft/agent"))?; // kills a previous run's leftovers
//! agent.apply(specs).await?;                                          // declarative
//! let mut reports = agent.reports();
//! reports.wait_for(|r| r.iter().all(|i| i.ready)).await.ok();
//! agent.shutdown().await?;                                            // nothing left running
//! # Ok(())
//! # }
//! ```
//!
//! # On disk (`AgentConfig::state_dir`)
//!
//! ```text
//! agent.lock                         flock: one agent per state directory
//! approots/<package digest>/<role>/  read-only, shared by the role's instances
//! instances/<deployment>/<id>/local/<name>/   LocalStorage (emptied per start when
//!                                              cleanOnRoleRecycle, all of it on a reimage)
//! instances/<deployment>/<id>/logs/{stdout,stderr}.log[.N]
//! instances/<deployment>/<id>/approot/<digest>/<role>/  its own approot after a reimage
//! instances/<deployment>/<id>/reimage          the reimage counter applied last
//! run/<n>.sock                       runtime endpoints (or /tmp/weft-<hash>/ when the path is long)
//! ```
//!
//! Instances are keyed by `(deployment id, instance id)`: Azure names
//! instances per deployment, so production and staging both have a
//! `Web_IN_0`. Cgroups are `<deployment>+<instance>`. Directories of the
//! layout before that (`instances/<id>/` with `logs/stdout.log`) are removed
//! when an agent opens the state directory.
//!
//! # No orphans, never two copies
//!
//! Every process joins the instance's cgroup v2 group
//! (`weft-<hash of the state dir>/<deployment>+<instance>/{entry,tasks}`) before it
//! executes anything, so `cgroup.kill` reaches even what `setsid`s away.
//! Without a writable cgroup2 mount, process groups plus a `/proc` scan for
//! the instance's `WEFT_RUNTIME` value do the same (a process that scrubs
//! its environment escapes only this fallback). [`Agent::open`] kills
//! whatever a previous agent on the same state directory left running
//! before it returns, and a dropped agent that was not shut down kills its
//! instances. If the agent's whole process dies (`kill -9`), a sentinel
//! `/bin/sh` that waits on a pipe from it kills the instances' cgroups at
//! once (with cgroups; without, the next open does).
//!
//! # vmsize limits
//!
//! `InstanceSpec::limits` (the role's vmsize) bounds everything the
//! instance runs, entry point and startup tasks together: memory to
//! `memory_mb` MiB (no swap beyond it; the kernel's OOM killer kills a
//! process of the instance that goes over, which the report then says:
//! ``the entry point `./run` was killed by signal SIGKILL (out of memory:
//! the instance's limit is 768 MiB)``), CPU to `cores` (CFS bandwidth:
//! `cores × 100 ms` per 100 ms period). Where the cgroup v2 mount offers the
//! `cpu` / `memory` controllers, the agent enables them down to its
//! `weft-<hash>` group and writes `cpu.max` / `memory.max` /
//! `memory.swap.max` in the instance's group. Where it does not (hybrid
//! hosts: no controllers in the v2 mount, `cpu` and `memory` as cgroup v1
//! hierarchies, as on many Docker and older hosts), the instance also gets
//! a group `weft-<hash>/<deployment>+<instance>` under the agent's own group
//! in the v1 `cpu` and `memory` hierarchies, with `cpu.cfs_period_us` /
//! `cpu.cfs_quota_us` / `memory.limit_in_bytes` /
//! `memory.memsw.limit_in_bytes`, which every process joins before exec.
//! Those groups live as long as a run and `Agent::open` removes a previous
//! run's. A limit file that cannot be written (EACCES, a missing file, a
//! value the kernel refuses) is a warning naming the file, and the instance
//! runs without that limit; without any controller (or with
//! [`CgroupMode::Off`]) instances run unlimited, said once by a warning.
//! Limits are applied at each start (a new incarnation); a live change of
//! them within a run is not applied.
//!
//! # Failure messages
//!
//! A simple startup task that fails ends the start with
//! `FailedStartingRole` and a message that ends with what the task said:
//! the last non-blank lines (at most 5, 1 KiB) it wrote to stderr, or to
//! stdout when stderr had none — ``startup task `./setup.sh` exited with
//! status 1: ERROR: No matching distribution found for nosuchpkg``. The
//! whole output is in the instance's logs as always.

mod agent;
mod cgroup;
mod config;
mod driver;
mod env;
mod error;
mod health;
mod instance;
mod key;
mod limits;
mod logs;
mod output;
mod ports;
mod prepare;
mod probe;
mod procs;
pub mod protocol;
mod sentinel;

pub use agent::Agent;
pub use config::{AgentConfig, CgroupMode};
pub use error::AgentError;
