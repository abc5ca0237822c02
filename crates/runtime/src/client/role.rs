//! Azure's `RoleEntryPoint` lifecycle for Rust roles.
//!
//! [`run_role`] drives a role the way Azure's role host does:
//!
//! 1. the instance reports `Busy`, then `on_start` runs; an error there ends
//!    the process with a non-zero status (the agent restarts it) and `on_stop`
//!    is not called;
//! 2. the instance reports `Ready`, then `run` runs for the life of the
//!    instance;
//! 3. when `run` returns `Ok`, `on_stop` runs and the process exits 0 — the
//!    agent recycles the instance, as Azure does; when `run` returns an error
//!    the process exits non-zero at once;
//! 4. a settings `Changing` event is answered with what the handlers
//!    registered by [`RoleEnvironment::on_changing`] say (not cancelled
//!    when there is none): cancelling makes the agent recycle the instance
//!    (a `Stopping` event follows);
//! 5. on a `Stopping` event from the runtime endpoint, or SIGTERM / SIGINT,
//!    whatever is running (`on_start` or `run`) is dropped, `on_stop` runs
//!    for at most [`RoleOptions::stop_timeout`] and the process exits 0.
//!    The agent's grace period may end it sooner with SIGKILL.

use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::RoleEnvironment;
use crate::protocol::{RoleStatus, RuntimeEvent};

/// Code run in a role instance (Azure's `RoleEntryPoint`).
///
/// The futures need not be `Send`: [`run_role`] drives them on its own
/// thread.
#[allow(async_fn_in_trait)]
pub trait RoleEntryPoint {
    /// Prepares the instance; it takes no traffic until this returns `Ok`.
    async fn on_start(&mut self, env: &RoleEnvironment) -> anyhow::Result<()> {
        let _ = env;
        Ok(())
    }

    /// Runs for the life of the instance; returning recycles it.
    async fn run(&mut self, env: &RoleEnvironment) -> anyhow::Result<()>;

    /// Cleans up before the instance stops.
    async fn on_stop(&mut self, env: &RoleEnvironment) {
        let _ = env;
    }
}

/// How [`run_role_with`] runs a role.
#[derive(Debug, Clone)]
pub struct RoleOptions {
    /// The longest `on_stop` may run. Azure allows five minutes.
    pub stop_timeout: Duration,
}

impl Default for RoleOptions {
    fn default() -> Self {
        RoleOptions {
            stop_timeout: Duration::from_secs(300),
        }
    }
}

/// Runs `role` with the default [`RoleOptions`]; returns the process's exit
/// code. Call it from a plain (non-async) `main`.
pub fn run_role<R: RoleEntryPoint>(role: R) -> ExitCode {
    run_role_with(role, RoleOptions::default())
}

/// Runs `role`; returns the process's exit code.
pub fn run_role_with<R: RoleEntryPoint>(role: R, options: RoleOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(drive(role, options))
}

/// Why the role is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    StoppingEvent,
    Signal(&'static str),
}

async fn drive<R: RoleEntryPoint>(mut role: R, options: RoleOptions) -> ExitCode {
    let env = match RoleEnvironment::connect().await {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stop = match watch_for_stop(&env).await {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = env.set_status(RoleStatus::Busy).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }

    let started = tokio::select! {
        result = role.on_start(&env) => Some(result),
        reason = stop_requested(&mut stop) => {
            tracing::info!(?reason, "stop requested while starting");
            None
        }
    };
    match started {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            eprintln!("error: role failed to start: {e:#}");
            return ExitCode::FAILURE;
        }
        None => return stop_role(&mut role, &env, &options).await,
    }

    if let Err(e) = env.set_status(RoleStatus::Ready).await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }

    let ran = tokio::select! {
        result = role.run(&env) => Some(result),
        reason = stop_requested(&mut stop) => {
            tracing::info!(?reason, "stop requested");
            None
        }
    };
    match ran {
        Some(Err(e)) => {
            eprintln!("error: role run failed: {e:#}");
            ExitCode::FAILURE
        }
        Some(Ok(())) => {
            tracing::info!("run returned; the instance will be recycled");
            stop_role(&mut role, &env, &options).await
        }
        None => stop_role(&mut role, &env, &options).await,
    }
}

async fn stop_role<R: RoleEntryPoint>(
    role: &mut R,
    env: &RoleEnvironment,
    options: &RoleOptions,
) -> ExitCode {
    if tokio::time::timeout(options.stop_timeout, role.on_stop(env))
        .await
        .is_err()
    {
        eprintln!(
            "warning: on_stop did not finish within {:?}; exiting",
            options.stop_timeout
        );
    }
    ExitCode::SUCCESS
}

/// Waits until a stop is requested.
async fn stop_requested(stop: &mut watch::Receiver<Option<StopReason>>) -> Option<StopReason> {
    match stop.wait_for(Option::is_some).await {
        Ok(reason) => *reason,
        // The watcher task never ends while the sender lives; if it did,
        // nothing can request a stop any more.
        Err(_) => std::future::pending().await,
    }
}

/// Starts watching for a stop request: the runtime's `Stopping` event,
/// SIGTERM or SIGINT. Subscribed before this returns, so nothing published
/// afterwards is missed.
async fn watch_for_stop(
    env: &RoleEnvironment,
) -> Result<watch::Receiver<Option<StopReason>>, super::ClientError> {
    let mut events = env.answering_events().await?;
    let answerer = env.clone();
    let mut term = signal(SignalKind::terminate()).map_err(|e| signal_error("SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| signal_error("SIGINT", e))?;
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut events_open = true;
        let reason = loop {
            tokio::select! {
                event = events.next(), if events_open => match event {
                    Some(Ok(RuntimeEvent::Stopping)) => break StopReason::StoppingEvent,
                    Some(Ok(RuntimeEvent::Changing { id: Some(id), changes })) => {
                        let cancel = answerer.cancels(&changes);
                        let env = answerer.clone();
                        tokio::spawn(async move {
                            if let Err(e) = env.answer_changing(id, cancel).await {
                                tracing::warn!(error = %e, id, "failed to answer Changing");
                            }
                        });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "runtime event stream failed");
                        events_open = false;
                    }
                    None => {
                        tracing::debug!("runtime event stream ended");
                        events_open = false;
                    }
                },
                _ = term.recv() => break StopReason::Signal("SIGTERM"),
                _ = int.recv() => break StopReason::Signal("SIGINT"),
            }
        };
        let _ = tx.send(Some(reason));
        // Keep the handlers installed so a second signal during on_stop does
        // not kill the process with the default action.
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    });
    Ok(rx)
}

fn signal_error(signal: &'static str, source: std::io::Error) -> super::ClientError {
    super::ClientError::Signal { signal, source }
}
