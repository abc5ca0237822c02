//! `weft package`: build a service package (like Azure's `cspack`), and
//! inspect, verify or unpack one. The work lives in the `weft-package` crate.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use weft_package::{
    BuildOptions, Entry, Limits, Package, PackageSpec, RoleSource, UnpackOptions, build_package,
};

/// Build a package from a service definition and one directory per role, or
/// inspect, verify or unpack an existing one.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
        weft package ServiceDefinition.csdef --role Web=./web --role Worker=./worker -o app.cspkg\n  \
        weft package inspect app.cspkg\n  \
        weft package verify app.cspkg\n  \
        weft package unpack app.cspkg --role Web -o ./approot"
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,

    #[command(flatten)]
    build: BuildArgs,
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The service definition (ServiceDefinition.csdef), stored verbatim
    #[arg(required = true, value_name = "CSDEF")]
    csdef: Option<PathBuf>,

    /// A role and the directory that becomes its approot, as NAME=DIR (repeat per role)
    #[arg(long = "role", value_name = "NAME=DIR", value_parser = parse_role)]
    roles: Vec<RoleSource>,

    /// Where to write the package
    #[arg(short, long, value_name = "FILE", required = true)]
    output: Option<PathBuf>,

    /// Worker threads for hashing and compressing (default: one per CPU)
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    threads: usize,

    /// Package what a symlink in a role directory points to instead of
    /// refusing it (the package never holds a symlink)
    #[arg(long)]
    follow_symlinks: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List a package's roles, files (path, size, mode), totals and digest
    Inspect {
        /// The package (.cspkg)
        package: PathBuf,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Check every hash, size and mode against the manifest; exit 1 on any problem
    Verify {
        /// The package (.cspkg)
        package: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Unpack and verify one role's approot into a new directory
    Unpack {
        /// The package (.cspkg)
        package: PathBuf,
        /// The role to unpack
        #[arg(long)]
        role: String,
        /// The directory to create (it must not exist)
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Make the unpacked files and directories read-only
        #[arg(long)]
        read_only: bool,
    },
}

fn parse_role(s: &str) -> Result<RoleSource, String> {
    let (name, dir) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=DIR, got `{s}`"))?;
    if dir.is_empty() {
        return Err(format!("role {name} has no directory (expected NAME=DIR)"));
    }
    Ok(RoleSource {
        name: name.to_owned(),
        dir: PathBuf::from(dir),
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Sub::Inspect { package, json }) => inspect(&package, json),
        Some(Sub::Verify { package, json }) => verify(&package, json),
        Some(Sub::Unpack {
            package,
            role,
            output,
            read_only,
        }) => {
            let unpacked = weft_package::unpack(
                &package,
                &role,
                &output,
                Limits::default(),
                UnpackOptions { read_only },
            )?;
            println!(
                "unpacked role {} to {} ({} files, {} bytes, verified)",
                unpacked.role,
                unpacked.path.display(),
                unpacked.files,
                unpacked.bytes
            );
            Ok(ExitCode::SUCCESS)
        }
        None => build(args.build),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let csdef = args.csdef.expect("clap requires CSDEF");
    let output = args.output.expect("clap requires --output");
    if args.roles.is_empty() {
        anyhow::bail!("no roles given: add --role NAME=DIR for each role of the service");
    }
    let service_definition = std::fs::read(&csdef)
        .with_context(|| format!("failed to read the service definition {}", csdef.display()))?;
    if let Some(code) = check_definition(&csdef, &service_definition, &args.roles) {
        return Ok(code);
    }
    let spec = PackageSpec {
        service_definition,
        roles: args.roles,
    };
    let manifest = build_package(
        &spec,
        &output,
        &BuildOptions {
            threads: args.threads,
            follow_symlinks: args.follow_symlinks,
        },
    )?;
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({}, {}, {} bytes packed into {size})",
        output.display(),
        plural(manifest.roles.len(), "role"),
        plural(manifest.file_count(), "file"),
        manifest.total_size()
    );
    println!("digest sha256:{}", manifest.digest);
    Ok(ExitCode::SUCCESS)
}

/// Refuses to package a service definition with errors, or role directories
/// that do not match its roles: every web and worker role needs `--role`, and
/// no `--role` may name a role the definition lacks (like cspack). A VM role's
/// package is its disk image, so it needs none. Returns the exit code when
/// packaging must not go on, after printing why.
fn check_definition(csdef: &Path, bytes: &[u8], roles: &[RoleSource]) -> Option<ExitCode> {
    let name = csdef.display().to_string();
    let report = weft_model::check((&name, bytes), None);
    let (errors, warnings) = weft_model::count(&report.diagnostics);
    if errors > 0 {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        eprint!(
            "{}",
            weft_model::render_text(&report.diagnostics, &report.sources, color)
        );
        eprintln!(
            "error: {name} has {} (see above): nothing was packaged",
            weft_model::summary(&report.diagnostics)
        );
        return Some(ExitCode::from(1));
    }
    if warnings > 0 {
        eprintln!(
            "note: {name}: {} (`weft validate {name}` shows them)",
            weft_model::summary(&report.diagnostics)
        );
    }
    let definition = report.definition?;
    let mut problems = Vec::new();
    for role in &definition.roles {
        let needs_dir = role.kind != weft_model::RoleKind::VirtualMachine;
        if needs_dir && !roles.iter().any(|r| r.name == role.name.value) {
            problems.push(format!(
                "role {} of {name} has no directory: add --role {}=DIR",
                role.name.value, role.name.value
            ));
        }
    }
    for given in roles {
        if !definition.roles.iter().any(|r| r.name.value == given.name) {
            let known: Vec<&str> = definition
                .roles
                .iter()
                .map(|r| r.name.value.as_str())
                .collect();
            problems.push(format!(
                "--role {}: {name} defines no role {} (its roles: {})",
                given.name,
                given.name,
                known.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return None;
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    eprintln!("error: nothing was packaged");
    Some(ExitCode::from(1))
}

fn inspect(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let package = Package::open(path)?;
    let m = package.manifest();
    let packed = std::fs::metadata(path).map(|x| x.len()).unwrap_or(0);
    if as_json {
        let roles: Vec<_> = m
            .roles
            .iter()
            .map(|r| {
                let files: Vec<_> = r
                    .entries
                    .iter()
                    .map(|e| match e {
                        Entry::File { path, size, sha256, mode } => json!({
                            "path": path, "type": "file", "size": size, "mode": mode.to_string(), "sha256": sha256,
                        }),
                        Entry::Dir { path } => json!({ "path": path, "type": "dir" }),
                    })
                    .collect();
                json!({
                    "name": r.name,
                    "digest": r.digest,
                    "files": r.entries.iter().filter(|e| matches!(e, Entry::File { .. })).count(),
                    "bytes": r.total_size(),
                    "entries": files,
                })
            })
            .collect();
        let out = json!({
            "package": path,
            "format_version": m.version,
            "digest": m.digest,
            "service_definition": m.service_definition,
            "roles": roles,
            "totals": {
                "roles": m.roles.len(),
                "files": m.file_count(),
                "bytes": m.total_size(),
                "packed_bytes": packed,
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("package  {}", path.display());
    println!("digest   sha256:{}", m.digest);
    println!("format   {} version {}", m.format, m.version);
    println!(
        "csdef    {} bytes, sha256:{}",
        m.service_definition.size, m.service_definition.sha256
    );
    for r in &m.roles {
        let files = r
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::File { .. }))
            .count();
        println!();
        println!(
            "role {}: {}, {}, {} bytes, digest sha256:{}",
            r.name,
            plural(files, "file"),
            plural(r.entries.len() - files, "directory"),
            r.total_size(),
            r.digest
        );
        let width = r
            .entries
            .iter()
            .map(|e| e.size().to_string().len())
            .max()
            .unwrap_or(1)
            .max(4);
        println!("  mode  {:>width$}  path", "size");
        for e in &r.entries {
            match e {
                Entry::File {
                    path, size, mode, ..
                } => println!("  {mode}  {size:>width$}  {path}"),
                Entry::Dir { path } => println!("  dir   {:>width$}  {path}/", "-"),
            }
        }
    }
    println!();
    println!(
        "total: {}, {}, {} bytes ({packed} bytes packed)",
        plural(m.roles.len(), "role"),
        plural(m.file_count(), "file"),
        m.total_size()
    );
    if !package.structural_findings().is_empty() {
        println!(
            "warning: the package has {} problems; run `weft package verify {}`",
            package.structural_findings().len(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(path: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let report = match Package::open(path) {
        Ok(mut package) => package.verify(),
        Err(err) => {
            if as_json {
                println!(
                    "{}",
                    json!({ "package": path, "ok": false, "findings": [err.to_string()] })
                );
            } else {
                eprintln!("error: {err}");
                eprintln!("{}: failed verification", path.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if as_json {
        let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "package": path,
                "ok": report.is_ok(),
                "digest": report.digest,
                "files_checked": report.files_checked,
                "bytes_checked": report.bytes_checked,
                "findings": findings,
            }))?
        );
    } else if report.is_ok() {
        println!(
            "ok: {} verified (service definition and {}, {} bytes), digest sha256:{}",
            path.display(),
            plural(report.files_checked.saturating_sub(1) as usize, "file"),
            report.bytes_checked,
            report.digest
        );
    } else {
        for finding in &report.findings {
            eprintln!("error: {finding}");
        }
        eprintln!(
            "{}: failed verification with {} problem{}",
            path.display(),
            report.findings.len(),
            if report.findings.len() == 1 { "" } else { "s" }
        );
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn plural(n: usize, noun: &str) -> String {
    match (n, noun) {
        (1, _) => format!("1 {noun}"),
        (_, "directory") => format!("{n} directories"),
        _ => format!("{n} {noun}s"),
    }
}
