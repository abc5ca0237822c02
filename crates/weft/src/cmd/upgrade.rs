//! `weft upgrade`: Azure's Upgrade Deployment — an in-place upgrade of a
//! running deployment to a new package and configuration, walking its
//! upgrade domains (auto, manual or simultaneous), with a live display of
//! the walk; `--plan` prints what it would do and changes nothing.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use weft_api::Client;
use weft_api::server::UpgradeDeployment;
use weft_api::wire::{Accepted, PackageUploaded};
use weft_fabric::events::{Event, EventKind};
use weft_fabric::upgrade::{ChangeKind, HealthGate, UpgradeMode, UpgradePlan};
use weft_fabric::view::{
    DeploymentView, OperationView, ServiceView, UpgradeDomainState, UpgradeStatus,
};

use super::app::{AppArgs, Connect, state_dir};
use super::deploy::{SlotArg, ended};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Walk the upgrade domains one after another, each once the previous
    /// one is healthy
    Auto,
    /// Walk each upgrade domain when asked with `weft walk <ud>`
    Manual,
    /// Every instance at once (downtime)
    Simultaneous,
}

impl From<ModeArg> for UpgradeMode {
    fn from(m: ModeArg) -> UpgradeMode {
        match m {
            ModeArg::Auto => UpgradeMode::Auto,
            ModeArg::Manual => UpgradeMode::Manual,
            ModeArg::Simultaneous => UpgradeMode::Simultaneous,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub app: AppArgs,
    /// How to walk the upgrade domains
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Upgrade only this role
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Restore an upgrade domain whose health gate fails
    #[arg(long)]
    pub auto_rollback: bool,
    /// Print which instances go down at each step, the Ready capacity left
    /// and anything refused; change nothing
    #[arg(long)]
    pub plan: bool,
    #[command(flatten)]
    pub gate: GateArgs,
    /// The slot to upgrade
    #[arg(long, value_enum, default_value_t = SlotArg::Production)]
    pub slot: SlotArg,
    /// Return once the upgrade is accepted
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub connect: Connect,
}

/// The health gate of a walk (the fabric's default for what is not given).
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Instances of a walked upgrade domain must stay Ready this long
    /// (e.g. 5s, 200ms; default 5s)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub min_healthy_time: Option<Duration>,
    /// An upgrade domain not healthy by then fails the health gate
    /// (default 5m)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub domain_timeout: Option<Duration>,
    /// The whole walk must be done by then (default 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

impl GateArgs {
    pub fn gate(&self) -> Option<HealthGate> {
        if self.min_healthy_time.is_none()
            && self.domain_timeout.is_none()
            && self.timeout.is_none()
        {
            return None;
        }
        let d = HealthGate::default();
        let ms = |v: Option<Duration>, default: u64| v.map_or(default, |v| v.as_millis() as u64);
        Some(HealthGate {
            min_healthy_ms: ms(self.min_healthy_time, d.min_healthy_ms),
            domain_timeout_ms: ms(self.domain_timeout, d.domain_timeout_ms),
            timeout_ms: ms(self.timeout, d.timeout_ms),
        })
    }
}

/// `200ms`, `5s`, `2m`, `1h`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("invalid duration `{s}`: expected e.g. 500ms, 5s, 2m"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        other => {
            return Err(format!(
                "invalid duration unit `{other}`: use ms, s, m or h"
            ));
        }
    };
    Ok(Duration::from_millis(ms))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let build = state_dir(args.connect.state.as_deref())?.join("build");
    let app = args.app.resolve(&build)?;
    let package = std::fs::read(&app.package)
        .with_context(|| format!("cannot read {}", app.package.display()))?;
    let configuration = std::fs::read_to_string(&app.config)
        .with_context(|| format!("cannot read {} as text", app.config.display()))?;
    let uploaded: PackageUploaded = client.post_bytes("/v1/packages", &package)?;
    let gate = args.gate.gate();
    let body = UpgradeDeployment {
        package: uploaded.digest,
        configuration,
        mode: args.mode.into(),
        role: args.role.clone(),
        auto_rollback: args.auto_rollback,
        plan: args.plan,
        gate,
    };
    let path = format!(
        "/v1/services/{}/deployments/{}/upgrade",
        app.service,
        args.slot.as_str()
    );
    let json = serde_json::to_vec(&body)?;
    let walked = plan_or_walk(&Walk {
        client: &client,
        path: &path,
        body: &json,
        service: &app.service,
        slot: args.slot,
        mode: args.mode,
        plan: args.plan,
        no_wait: args.no_wait,
        what: "upgrade",
        doing: "upgrading",
    })?;
    if let Walked::Done(took) = walked {
        println!(
            "upgraded {} ({}) in {} ms",
            app.service,
            args.slot.as_str(),
            took.as_millis()
        );
    }
    Ok(walked.exit_code())
}

/// An upgrade or configuration change whose request body is ready.
pub struct Walk<'a> {
    pub client: &'a Client,
    pub path: &'a str,
    pub body: &'a [u8],
    pub service: &'a str,
    pub slot: SlotArg,
    pub mode: ModeArg,
    /// `--plan`: print what it would do instead.
    pub plan: bool,
    /// `--no-wait`: return once it is accepted.
    pub no_wait: bool,
    /// "upgrade", "configuration change"
    pub what: &'a str,
    /// "upgrading", for the spinner and the error
    pub doing: &'a str,
}

/// How [`plan_or_walk`] ended.
pub enum Walked {
    /// The plan was printed; `refused` when something in it is refused.
    Planned { refused: bool },
    /// Accepted, and left to `weft walk` or to run on its own.
    Accepted,
    /// Followed to its end, in this long.
    Done(Duration),
}

impl Walked {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Walked::Planned { refused: true } => ExitCode::FAILURE,
            _ => ExitCode::SUCCESS,
        }
    }
}

/// What `weft upgrade` and `weft config set` share: with `--plan`, print the
/// plan; else post the request, say it was accepted, and — unless in manual
/// mode or with `--no-wait` — follow the walk to its end and print its notes.
pub fn plan_or_walk(w: &Walk) -> anyhow::Result<Walked> {
    if w.plan {
        let plan: UpgradePlan = w.client.post_bytes(w.path, w.body)?;
        print!("{}", render_plan(&plan));
        return Ok(Walked::Planned {
            refused: !plan.refused.is_empty(),
        });
    }
    let after = last_event(w.client, w.service, w.slot)?;
    let started = Instant::now();
    let accepted: Accepted = w.client.post_bytes(w.path, w.body)?;
    println!(
        "{} of {} ({}) accepted: operation {}",
        w.what,
        w.service,
        w.slot.as_str(),
        accepted.operation_id
    );
    if w.mode == ModeArg::Manual {
        println!(
            "manual mode: walk each upgrade domain in order with `weft walk <ud>`, starting with `weft walk 0`"
        );
        return Ok(Walked::Accepted);
    }
    if w.no_wait {
        return Ok(Walked::Accepted);
    }
    let done = follow(
        w.client,
        &accepted.operation_id,
        w.service,
        w.slot,
        after,
        w.doing,
    )?;
    for m in &done.messages {
        println!("note: {m}");
    }
    Ok(Walked::Done(started.elapsed()))
}

/// The plan as text: one line per step.
pub fn render_plan(plan: &UpgradePlan) -> String {
    let what = match plan.kind {
        ChangeKind::Upgrade => "upgrade",
        ChangeKind::Configuration => "configuration change",
    };
    let mut out = format!(
        "{} {what} over {} upgrade domain(s){}\n",
        plan.mode,
        plan.upgrade_domain_count,
        plan.role
            .as_ref()
            .map(|r| format!(", role {r} only"))
            .unwrap_or_default()
    );
    for (n, step) in plan.steps.iter().enumerate() {
        let uds: Vec<String> = step.upgrade_domains.iter().map(u32::to_string).collect();
        let mut parts = Vec::new();
        for (what, ids) in [
            ("down", &step.instances),
            ("new", &step.added),
            ("settings in place", &step.changed_in_place),
        ] {
            if !ids.is_empty() {
                parts.push(format!("{what}: {}", ids.join(", ")));
            }
        }
        let down = if parts.is_empty() {
            "nothing changes".to_owned()
        } else {
            parts.join("; ")
        };
        let capacity: Vec<String> = step
            .capacity
            .iter()
            .map(|c| format!("{} {}/{}", c.role, c.ready, c.total))
            .collect();
        out.push_str(&format!(
            "  step {n}: upgrade domain {}: {down}; ready: {}\n",
            uds.join(","),
            capacity.join(", ")
        ));
    }
    for note in &plan.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    for r in &plan.refused {
        out.push_str(&format!("refused: {r}\n"));
    }
    if !plan.refused.is_empty() {
        out.push_str("the upgrade cannot be done in place; nothing was changed\n");
    }
    out
}

/// One line for `weft status`: `upgrade: auto, upgrade domain 2 During (walked 0,1 of 5)`.
pub fn render_status(s: &UpgradeStatus) -> String {
    let walked: Vec<String> = s.walked.iter().map(u32::to_string).collect();
    let state = match s.current_upgrade_domain_state {
        UpgradeDomainState::Before => "Before",
        UpgradeDomainState::During => "During",
    };
    let what = match s.change {
        ChangeKind::Upgrade => "upgrade",
        ChangeKind::Configuration => "configuration change",
    };
    let mut line = format!(
        "{what}: {}, upgrade domain {} {state} (walked [{}] of {})",
        s.upgrade_type,
        s.current_upgrade_domain,
        walked.join(","),
        s.upgrade_domain_count
    );
    if s.rolling_back {
        line.push_str(", rolling back");
    }
    if let Some(why) = &s.failed {
        line.push_str(&format!(", stopped: {why}"));
    }
    line
}

/// The service to act on: the one named, else the fabric's only one.
pub fn pick_service(client: &Client, named: Option<String>) -> anyhow::Result<String> {
    if let Some(name) = named {
        return Ok(name);
    }
    let services: Vec<ServiceView> = client.get("/v1/services")?;
    match services.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => bail!("no services in the fabric at {}", client.base()),
        many => bail!(
            "the fabric runs several services ({}): name one with --service",
            many.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn events_path(service: &str, slot: SlotArg) -> String {
    format!(
        "/v1/services/{service}/deployments/{}/events",
        slot.as_str()
    )
}

/// The newest event's number (to show only what follows).
pub fn last_event(client: &Client, service: &str, slot: SlotArg) -> anyhow::Result<u64> {
    let events: Vec<Event> = client.get(&events_path(service, slot))?;
    Ok(events.last().map_or(0, |e| e.seq))
}

/// One event as a line.
pub fn render_event(e: &Event) -> String {
    let ud = e
        .upgrade_domain
        .map(|u| format!(" UD {u}"))
        .unwrap_or_default();
    let time = e.time.get(11..23).unwrap_or(&e.time);
    format!(
        "{time} {:<17}{ud:>6}  {}",
        format!("{:?}", e.kind),
        e.message
    )
}

fn interesting(e: &Event) -> bool {
    e.kind != EventKind::InstanceStatus
}

/// Follows operation `id`, printing the slot's events as they come (all but
/// instance status changes, which the spinner sums up as Ready counts with
/// the walk's progress); a failed operation is an error with its reason.
pub fn follow(
    client: &Client,
    id: &str,
    service: &str,
    slot: SlotArg,
    mut after: u64,
    doing: &str,
) -> anyhow::Result<OperationView> {
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let deadline = Instant::now() + Duration::from_secs(24 * 3600);
    loop {
        let view: OperationView = client.get(&format!("/v1/operations/{id}"))?;
        let events: Vec<Event> =
            client.get(&format!("{}?after={after}", events_path(service, slot)))?;
        for e in &events {
            after = after.max(e.seq);
            if interesting(e) {
                // A hidden bar prints nothing: print plainly when not on a terminal.
                if tty {
                    bar.println(render_event(e));
                } else {
                    println!("{}", render_event(e));
                }
            }
        }
        if let Ok(d) = client.get::<DeploymentView>(&format!(
            "/v1/services/{service}/deployments/{}",
            slot.as_str()
        )) {
            let ready: usize = d
                .roles
                .iter()
                .flat_map(|r| &r.instances)
                .filter(|i| i.ready)
                .count();
            let total: usize = d.roles.iter().map(|r| r.instances.len()).sum();
            let walk = d
                .upgrade_status
                .as_ref()
                .map(render_status)
                .unwrap_or_default();
            bar.set_message(format!("{doing}: {ready}/{total} ready  {walk}"));
        }
        if let Some(end) = ended(view, id, doing, deadline, "a day") {
            bar.finish_and_clear();
            return end;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("200ms", Ok(200)),
            ("5s", Ok(5000)),
            ("5", Ok(5000)),
            ("2m", Ok(120_000)),
            ("1h", Ok(3_600_000)),
            ("5 s", Err("invalid duration unit ` s`: use ms, s, m or h")),
            (
                "fast",
                Err("invalid duration `fast`: expected e.g. 500ms, 5s, 2m"),
            ),
        ];
        for (text, expected) in cases {
            let got = parse_duration(text).map(|d| d.as_millis() as u64);
            assert_eq!(got, expected.map_err(str::to_owned), "{text}");
        }
    }
}
