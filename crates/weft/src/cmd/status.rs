//! `weft status`: services, deployments, roles and instances of a running
//! fabric, as a table or JSON.

use std::net::SocketAddr;
use std::process::ExitCode;

use weft_fabric::view::{DeploymentView, ServiceView};

use super::app::Connect;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this service
    pub service: Option<String>,
    /// Print JSON (the API's ServiceView array) instead of a table
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: Connect,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let client = args.connect.client()?;
    let mut services: Vec<ServiceView> = client.get("/v1/services")?;
    if let Some(name) = &args.service {
        services.retain(|s| &s.name == name);
        if services.is_empty() {
            anyhow::bail!("no service `{name}` in the fabric at {}", client.base());
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&services)?);
        return Ok(ExitCode::SUCCESS);
    }
    if services.is_empty() {
        println!("no services: deploy one with `weft up DIR` or `weft deploy`");
    }
    for service in &services {
        for d in &service.deployments {
            print!("{}", render_deployment(&service.name, d));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `http://addr/` for http endpoints, `tcp://addr` otherwise.
pub fn endpoint_url(protocol: &str, addr: SocketAddr) -> String {
    match protocol {
        "http" => format!("http://{addr}/"),
        "https" => format!("https://{addr}/"),
        p => format!("{p}://{addr}"),
    }
}

fn render_deployment(service: &str, d: &DeploymentView) -> String {
    let mut out = format!(
        "service {service}  deployment {}  slot {}  status {:?}  package sha256:{}\n",
        d.id,
        d.slot,
        d.status,
        &d.package_digest[..d.package_digest.len().min(12)]
    );
    if let Some(u) = &d.upgrade_status {
        out.push_str(&format!("  {}\n", super::upgrade::render_status(u)));
    }
    for vip in &d.vips {
        let instance = vip
            .instance
            .as_deref()
            .map(|i| format!(" ({i})"))
            .unwrap_or_default();
        // A staging address is the slot's own, not a remap.
        let remapped = if d.slot == weft_fabric::Slot::Production
            && vip.address.port() != vip.requested_port
        {
            format!("  (port {} was taken)", vip.requested_port)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {}/{}{instance}  {}{remapped}\n",
            vip.role,
            vip.endpoint,
            endpoint_url(&vip.protocol, vip.address)
        ));
    }
    let mut rows = vec![[
        "ROLE".to_owned(),
        "INSTANCE".to_owned(),
        "STATUS".to_owned(),
        "UD".to_owned(),
        "FD".to_owned(),
        "PID".to_owned(),
        "RESTARTS".to_owned(),
        "ENDPOINTS".to_owned(),
    ]];
    let mut messages = Vec::new();
    for role in &d.roles {
        for i in &role.instances {
            let endpoints: Vec<String> = i
                .endpoints
                .iter()
                .map(|(n, a)| format!("{n}={a}"))
                .collect();
            rows.push([
                role.name.clone(),
                i.id.clone(),
                format!("{:?}", i.status),
                i.upgrade_domain.to_string(),
                i.fault_domain.to_string(),
                i.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                i.restarts.to_string(),
                endpoints.join(" "),
            ]);
            if let Some(m) = &i.message {
                // A message may span lines (a startup task's last output):
                // continuation lines are indented under its first.
                let m = m.replace('\n', "\n      ");
                messages.push(format!("  {}: {m}\n", i.id));
            }
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(&format!("  {}\n", line.join("  ").trim_end()));
    }
    for m in messages {
        out.push_str(&m);
    }
    out
}
