//! `weft up`: the whole fabric on one host, in the foreground — state
//! store, agent, controller, load balancer, management API and storage —
//! deploying the application it is given and stopping everything cleanly on
//! Ctrl-C. Run again, it finds everything as it was.

use std::fs::File;
use std::io::{IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use weft_agent::{Agent, AgentConfig};
use weft_api::Token;
use weft_api::server::{ServerConfig, router};
use weft_fabric::view::{DeploymentView, OperationStatus};
use weft_fabric::{Controller, DeployRequest, FabricConfig, Slot};
use weft_store::SqliteStore;

use super::app::{self, AppArgs};
use super::status;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
weft up examples/hello                 # package the directory on the fly and run it\n  \
weft up --package app.cspkg --config ServiceConfiguration.Cloud.cscfg\n  \
weft up                                # run the fabric with the deployments it already has")]
pub struct Args {
    #[command(flatten)]
    app: AppArgs,

    /// The fabric's state directory (default: $WEFT_STATE, else ~/.local/state/weft)
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,

    /// Where the management API listens (loopback unless you say otherwise)
    #[arg(long, value_name = "ADDR", default_value = app::DEFAULT_API)]
    api: SocketAddr,

    /// Do not run the blob, queue and table storage services beside the fabric
    #[arg(long)]
    no_storage: bool,

    #[command(flatten)]
    storage_ports: super::storage::Ports,

    /// A storage account besides devstoreaccount1, as NAME:BASE64KEY (repeatable)
    #[arg(long = "storage-account", value_name = "NAME:KEY")]
    storage_accounts: Vec<String>,

    /// Seconds a stopping instance gets between SIGTERM and SIGKILL
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    grace: u64,

    /// Seconds a leaving instance's open connections (and, on Ctrl-C, every
    /// VIP's) may take to finish before they are cut
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    drain: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let state = app::state_dir(args.state.as_deref())?;
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create the state directory {}", state.display()))?;
    let lock = lock_state(&state)?;
    let storage = if args.no_storage {
        None
    } else {
        Some(storage_config(&state, &args)?)
    };
    // An application directory given, or the current one if it holds one.
    let wants_app = args.app.dir.is_some()
        || args.app.package.is_some()
        || Path::new("ServiceDefinition.csdef").is_file();
    let app = if wants_app {
        Some(args.app.resolve(&state.join("build"))?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("weft")
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(serve(&args, &state, app, storage))?;
    drop(lock);
    Ok(code)
}

/// How long a new `weft up` waits for the state directory's lock. A `weft
/// up` killed with SIGKILL releases it at once, unless it was forking an
/// instance at that moment: the child holds every descriptor of its parent
/// until it execs or dies, a matter of milliseconds.
const STATE_LOCK_WAIT: Duration = Duration::from_secs(3);

/// One `weft up` per state directory.
fn lock_state(state: &Path) -> anyhow::Result<File> {
    let path = state.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let deadline = std::time::Instant::now() + STATE_LOCK_WAIT;
    while file.try_lock().is_err() {
        if std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        bail!(
            "another `weft up` is running with state {} (pass --state DIR to run a second fabric)",
            state.display()
        );
    }
    Ok(file)
}

async fn serve(
    args: &Args,
    state: &Path,
    app: Option<app::App>,
    storage: Option<weft_storage::ServerConfig>,
) -> anyhow::Result<ExitCode> {
    let token = Token::load_or_create(&app::token_file(state))?;
    let listener = tokio::net::TcpListener::bind(args.api).await.with_context(|| {
        format!(
            "cannot listen on {} for the management API (another fabric?): pass --api with a free address",
            args.api
        )
    })?;
    let api_addr = listener.local_addr()?;

    let store = Arc::new(
        SqliteStore::open(&state.join("fabric.db"))
            .with_context(|| format!("cannot open the state store in {}", state.display()))?,
    );
    let mut agent_config = AgentConfig::new(state.join("agent"));
    agent_config.grace_period = Duration::from_secs(args.grace);
    let agent = Agent::open(agent_config).context("cannot start the agent")?;
    let mut fabric_config = FabricConfig::new(state.join("fabric"));
    fabric_config.drain_timeout = Duration::from_secs(args.drain);
    fabric_config.vip.drain_timeout = Duration::from_secs(args.drain);
    let controller = Controller::open(fabric_config, store, agent)
        .await
        .context("cannot start the controller")?;

    let api = router(
        controller.clone(),
        ServerConfig {
            token,
            uploads: state.join("uploads"),
        },
    );
    let (stop_api, api_stopped) = tokio::sync::watch::channel(false);
    let api_task = tokio::spawn(async move {
        let mut stopped = api_stopped;
        axum::serve(listener, api)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    let url = format!("http://{api_addr}");
    std::fs::write(app::api_url_file(state), format!("{url}\n"))
        .with_context(|| format!("cannot write {}", app::api_url_file(state).display()))?;
    println!(
        "weft fabric: state {}, management API {url}",
        state.display()
    );

    let storage = match storage {
        Some(config) => {
            let extra: Vec<String> = args
                .storage_accounts
                .iter()
                .filter_map(|spec| spec.split_once(':').map(|(name, _)| name.to_owned()))
                .collect();
            start_storage(config, &extra).await
        }
        None => None,
    };

    let outcome = match app {
        Some(app) => deploy(&controller, state, &app).await,
        None => {
            let services = controller.services();
            let n: usize = services.iter().map(|s| s.deployments.len()).sum();
            println!("no application given: running the {n} deployment(s) this fabric holds");
            for s in &services {
                for d in &s.deployments {
                    print_urls(&s.name, d);
                }
            }
            Ok(())
        }
    };
    let code = match outcome {
        Ok(()) => {
            println!("press Ctrl-C to stop (everything is kept: `weft up` again brings it back)");
            let _ = std::io::stdout().flush();
            stop_signal().await;
            eprintln!("stopping...");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    controller.shutdown().await;
    let _ = stop_api.send(true);
    let _ = api_task.await;
    if let Some((stop, task)) = storage {
        let _ = stop.send(true);
        let _ = task.await;
    }
    let _ = std::fs::remove_file(app::api_url_file(state));
    if code == ExitCode::SUCCESS {
        println!(
            "stopped: every instance is down, the desired state is kept in {}",
            state.display()
        );
    }
    Ok(code)
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

type StorageTask = (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
);

/// The storage services' configuration; a malformed account is an error
/// before anything starts.
fn storage_config(state: &Path, args: &Args) -> anyhow::Result<weft_storage::ServerConfig> {
    super::storage::config(
        state.join("storage"),
        &args.storage_ports,
        &args.storage_accounts,
    )
    .context("bad --storage-account")
}

/// Blob, queue and table storage beside the fabric; a taken port is a
/// warning, not a failure (Azurite may be running).
async fn start_storage(
    config: weft_storage::ServerConfig,
    extra: &[String],
) -> Option<StorageTask> {
    match weft_storage::StorageServer::bind(config).await {
        Ok(server) => {
            let addrs = server.addresses();
            let account = weft_storage::DEV_ACCOUNT;
            println!(
                "storage: blob http://{}/{account} queue http://{}/{account} table http://{}/{account} (UseDevelopmentStorage=true)",
                addrs.blob, addrs.queue, addrs.table
            );
            if !extra.is_empty() {
                println!("storage: accounts {} also served", extra.join(", "));
            }
            let (tx, mut rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(async move {
                let result = server
                    .run_until(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = result {
                    eprintln!("warning: storage stopped: {e}");
                }
            });
            Some((tx, task))
        }
        Err(e) => {
            eprintln!("warning: storage not started: {e} (pass --no-storage to silence this)");
            None
        }
    }
}

/// What `weft up` deployed last, to tell a restart from a new version.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct UpRecord {
    service: String,
    package_digest: String,
    config_sha256: String,
}

async fn deploy(
    controller: &Controller<Agent>,
    state: &Path,
    app: &app::App,
) -> anyhow::Result<()> {
    let configuration = std::fs::read(&app.config)
        .with_context(|| format!("cannot read {}", app.config.display()))?;
    let record = UpRecord {
        service: app.service.clone(),
        package_digest: app.digest.clone(),
        config_sha256: hex::encode(Sha256::digest(&configuration)),
    };
    let record_path = state.join("up.json");
    let previous: Option<UpRecord> = std::fs::read(&record_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let existing = find_deployment(controller, &app.service);
    if let Some(d) = &existing {
        if previous.as_ref() == Some(&record) {
            println!(
                "{}: deployment {} is already running this package and configuration",
                app.service, d.id
            );
            return wait_ready(controller, &app.service, None).await;
        }
        println!(
            "{}: replacing deployment {} with the new package or configuration",
            app.service, d.id
        );
        let op = controller
            .delete_deployment(&app.service, Slot::Production)
            .await?;
        let done = controller.wait(&op).await.context("the delete vanished")?;
        if done.status == OperationStatus::Failed {
            bail!(
                "could not remove the old deployment: {}",
                done.error.unwrap_or_default()
            );
        }
    }
    let started = Instant::now();
    let op = controller
        .deploy(DeployRequest {
            service: app.service.clone(),
            slot: Slot::Production,
            package: app.package.clone(),
            configuration,
            label: String::new(),
        })
        .await?;
    wait_ready(controller, &app.service, Some((op, started))).await?;
    let json = serde_json::to_vec_pretty(&record)?;
    std::fs::write(&record_path, json)
        .with_context(|| format!("cannot write {}", record_path.display()))?;
    Ok(())
}

fn find_deployment(controller: &Controller<Agent>, service: &str) -> Option<DeploymentView> {
    controller
        .services()
        .into_iter()
        .filter(|s| s.name == service)
        .flat_map(|s| s.deployments)
        .find(|d| d.slot == Slot::Production)
}

/// Shows progress until the operation ends (or, with no operation, until
/// every instance is ready), then the URLs to open.
async fn wait_ready(
    controller: &Controller<Agent>,
    service: &str,
    op: Option<(String, Instant)>,
) -> anyhow::Result<()> {
    let bar = progress_bar();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let d = find_deployment(controller, service);
        let (ready, total) = d.as_ref().map(count_ready).unwrap_or((0, 0));
        bar.set_message(format!("{service}: {ready}/{total} instances ready"));
        match &op {
            Some((id, started)) => {
                let view = controller.operation(id).context("the operation vanished")?;
                match view.status {
                    OperationStatus::InProgress => {}
                    OperationStatus::Succeeded => {
                        bar.finish_and_clear();
                        for m in &view.messages {
                            println!("note: {m}");
                        }
                        println!(
                            "{service}: {total} instances ready in {} ms",
                            started.elapsed().as_millis()
                        );
                        break;
                    }
                    OperationStatus::Failed => {
                        bar.finish_and_clear();
                        bail!(
                            "deploying {service} failed: {} (nothing is left deployed)",
                            view.error.unwrap_or_else(|| "no reason given".into())
                        );
                    }
                }
            }
            None => {
                if total > 0 && ready == total {
                    bar.finish_and_clear();
                    break;
                }
            }
        }
        if Instant::now() > deadline {
            bar.finish_and_clear();
            bail!("{service}: instances not ready after 10 minutes ({ready}/{total})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(d) = find_deployment(controller, service) {
        print_urls(service, &d);
    }
    Ok(())
}

fn count_ready(d: &DeploymentView) -> (usize, usize) {
    let all = d.roles.iter().flat_map(|r| &r.instances);
    let total = d.roles.iter().map(|r| r.instances.len()).sum();
    (all.filter(|i| i.ready).count(), total)
}

fn print_urls(service: &str, d: &DeploymentView) {
    for vip in &d.vips {
        let instance = vip
            .instance
            .as_deref()
            .map(|i| format!(" ({i})"))
            .unwrap_or_default();
        println!(
            "{service} {}/{}{instance}: {}",
            vip.role,
            vip.endpoint,
            status::endpoint_url(&vip.protocol, vip.address)
        );
    }
}

fn progress_bar() -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}
