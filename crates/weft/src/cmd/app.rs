//! What the fabric commands share: where the fabric keeps its state, how the
//! CLI reaches its management API, and how an application directory becomes
//! a package and a configuration.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use weft_api::{Client, Token};
use weft_package::{BuildOptions, PackageSpec, RoleSource, build_package};

/// The default management API address (loopback only).
pub const DEFAULT_API: &str = "127.0.0.1:7070";

/// Where a fabric keeps its state: `--state`, else `$WEFT_STATE`, else
/// `$XDG_STATE_HOME/weft`, else `~/.local/state/weft`.
pub fn state_dir(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("WEFT_STATE") {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_STATE_HOME") {
        return Ok(PathBuf::from(p).join("weft"));
    }
    let home = std::env::var_os("HOME")
        .context("cannot choose a state directory: set --state, WEFT_STATE or HOME")?;
    Ok(PathBuf::from(home).join(".local/state/weft"))
}

/// The file a running fabric writes its API URL to.
pub fn api_url_file(state: &Path) -> PathBuf {
    state.join("api.url")
}

pub fn token_file(state: &Path) -> PathBuf {
    state.join("token")
}

/// How the client commands reach a fabric.
#[derive(Debug, clap::Args)]
pub struct Connect {
    /// The fabric's state directory (default: $WEFT_STATE, else
    /// ~/.local/state/weft); its `api.url` and `token` files are used
    #[arg(long, value_name = "DIR", global = true)]
    pub state: Option<PathBuf>,
    /// The management API URL (default: what the running fabric wrote)
    #[arg(long, value_name = "URL", env = "WEFT_API", global = true)]
    pub api: Option<String>,
}

impl Connect {
    pub fn client(&self) -> anyhow::Result<Client> {
        let state = state_dir(self.state.as_deref())?;
        let url = match &self.api {
            Some(u) => u.clone(),
            None => {
                let file = api_url_file(&state);
                match std::fs::read_to_string(&file) {
                    Ok(s) => s.trim().to_owned(),
                    Err(_) => bail!(
                        "no fabric is running with state {} (no {}): start one with `weft up`, or pass --api URL",
                        state.display(),
                        file.display()
                    ),
                }
            }
        };
        let token = match std::env::var("WEFT_TOKEN") {
            Ok(secret) if !secret.trim().is_empty() => Token::from_secret(&secret),
            _ => Token::load(&token_file(&state))?,
        };
        Ok(Client::new(&url, token))
    }
}

/// An application as the user hands it over: a package and a configuration.
pub struct App {
    pub package: PathBuf,
    /// The package's digest.
    pub digest: String,
    pub config: PathBuf,
    pub service: String,
}

/// Arguments naming an application: a directory, or a package and a
/// configuration.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    /// A directory holding ServiceDefinition.csdef, a
    /// ServiceConfiguration.*.cscfg (.Local preferred) and one folder per
    /// role, named after the role; packaged on the fly
    #[arg(value_name = "DIR", conflicts_with = "package")]
    pub dir: Option<PathBuf>,
    /// A package built with `weft package` (with --config)
    #[arg(long, value_name = "CSPKG", requires = "config")]
    pub package: Option<PathBuf>,
    /// The service configuration (.cscfg) to deploy the package with
    #[arg(long, value_name = "CSCFG")]
    pub config: Option<PathBuf>,
    /// The service name (default: the csdef's name)
    #[arg(long)]
    pub service: Option<String>,
}

impl AppArgs {
    /// Resolves the arguments to a package and a configuration, packaging a
    /// directory into `build_dir` first. Diagnostics go to stderr; errors in
    /// the service model stop here, before anything reaches the fabric.
    pub fn resolve(&self, build_dir: &Path) -> anyhow::Result<App> {
        if let Some(package) = &self.package {
            let config = self.config.clone().context("--package needs --config")?;
            let mut opened = weft_package::Package::open(package)
                .with_context(|| format!("cannot open package {}", package.display()))?;
            let csdef = opened.service_definition().with_context(|| {
                format!(
                    "cannot read the service definition in {}",
                    package.display()
                )
            })?;
            let service = match &self.service {
                Some(s) => s.clone(),
                None => {
                    check_model(&PathBuf::from("ServiceDefinition.csdef"), &csdef, &config)?
                        .name
                        .value
                }
            };
            return Ok(App {
                package: package.clone(),
                digest: opened.digest().to_owned(),
                config,
                service,
            });
        }
        let dir = self.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let csdef_path = dir.join("ServiceDefinition.csdef");
        let csdef = std::fs::read(&csdef_path).with_context(|| {
            format!(
                "{} has no readable ServiceDefinition.csdef: pass an application directory, or --package P --config C",
                dir.display()
            )
        })?;
        let config = match &self.config {
            Some(c) => c.clone(),
            None => find_config(&dir)?,
        };
        let definition = check_model(&csdef_path, &csdef, &config)?;
        let service = self
            .service
            .clone()
            .unwrap_or_else(|| definition.name.value.clone());
        let mut roles = Vec::new();
        for role in &definition.roles {
            let name = role.name.value.clone();
            let folder = dir.join(&name);
            if !folder.is_dir() {
                bail!(
                    "role {name} has no folder {}: an application directory holds one folder per role, named after it",
                    folder.display()
                );
            }
            roles.push(RoleSource { name, dir: folder });
        }
        std::fs::create_dir_all(build_dir)
            .with_context(|| format!("cannot create {}", build_dir.display()))?;
        let package = build_dir.join(format!("{service}.cspkg"));
        let manifest = build_package(
            &PackageSpec {
                service_definition: csdef,
                roles,
            },
            &package,
            &BuildOptions {
                follow_symlinks: true,
                ..Default::default()
            },
        )
        .with_context(|| format!("cannot package {}", dir.display()))?;
        Ok(App {
            package,
            digest: manifest.digest,
            config,
            service,
        })
    }
}

/// `ServiceConfiguration.Local.cscfg` when present, else the only
/// `ServiceConfiguration.*.cscfg`.
fn find_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let local = dir.join("ServiceConfiguration.Local.cscfg");
    if local.is_file() {
        return Ok(local);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ServiceConfiguration.") && n.ends_with(".cscfg"))
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "{} has no ServiceConfiguration.*.cscfg: add one, or pass --config",
            dir.display()
        ),
        _ => bail!(
            "{} has several configurations ({}) and no ServiceConfiguration.Local.cscfg: choose one with --config",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name()?.to_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Checks the definition against the configuration, prints the diagnostics,
/// and returns the definition; any error stops the command.
fn check_model(
    csdef_path: &Path,
    csdef: &[u8],
    config: &Path,
) -> anyhow::Result<weft_model::ServiceDefinition> {
    let cscfg =
        std::fs::read(config).with_context(|| format!("cannot read {}", config.display()))?;
    let def_name = csdef_path.display().to_string();
    let cfg_name = config.display().to_string();
    let report = weft_model::check((&def_name, csdef), Some((&cfg_name, &cscfg)));
    let (errors, _) = weft_model::count(&report.diagnostics);
    if !report.diagnostics.is_empty() {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        eprint!(
            "{}",
            weft_model::render_text(&report.diagnostics, &report.sources, color)
        );
    }
    if errors > 0 {
        bail!(
            "the service model has errors ({}): nothing was deployed",
            weft_model::summary(&report.diagnostics)
        );
    }
    report
        .definition
        .context("the service definition did not parse")
}

/// The deployment a command acts on, named with `--service` and `--slot`.
#[derive(Debug, clap::Args)]
pub struct DeploymentFlags {
    /// The service (default: the fabric's only one)
    #[arg(long)]
    pub service: Option<String>,
    /// The slot of the deployment
    #[arg(long, value_enum, default_value_t = super::deploy::SlotArg::Production)]
    pub slot: super::deploy::SlotArg,
}

/// The deployment a command acts on: the service as its argument, and
/// `--slot`.
#[derive(Debug, clap::Args)]
pub struct ServiceSlot {
    /// The service (default: the fabric's only one)
    pub service: Option<String>,
    /// The slot of the deployment
    #[arg(long, value_enum, default_value_t = super::deploy::SlotArg::Production)]
    pub slot: super::deploy::SlotArg,
}
