//! `weft package` through the real binary: build, inspect, verify, unpack,
//! and a tampered package that verify refuses, naming the file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn weft(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run weft")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const CSDEF: &str = r#"<ServiceDefinition name="hello" xmlns="http://schemas.microsoft.com/ServiceHosting/2008/10/ServiceDefinition">
  <WebRole name="Web">
    <Runtime><EntryPoint><ProgramEntryPoint commandLine="bin/server" setReadyOnProcessStart="true" /></EntryPoint></Runtime>
  </WebRole>
  <WorkerRole name="Worker">
    <Runtime><EntryPoint><ProgramEntryPoint commandLine="sh job.sh" setReadyOnProcessStart="true" /></EntryPoint></Runtime>
  </WorkerRole>
</ServiceDefinition>
"#;

/// A service with two roles; `index.html` carries a marker stored verbatim
/// (it is too short for deflate to pay), so tampering is a byte patch.
fn service(dir: &Path) {
    fs::write(dir.join("ServiceDefinition.csdef"), CSDEF).unwrap();
    fs::create_dir_all(dir.join("web/bin")).unwrap();
    fs::create_dir_all(dir.join("web/logs")).unwrap();
    fs::write(dir.join("web/index.html"), "MARKER-AAAA").unwrap();
    fs::write(dir.join("web/bin/server"), "#!/bin/sh\necho serving\n").unwrap();
    fs::set_permissions(
        dir.join("web/bin/server"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir_all(dir.join("worker")).unwrap();
    fs::write(dir.join("worker/job.sh"), "echo work\n".repeat(50)).unwrap();
}

fn build(dir: &Path, out: &str) -> Output {
    weft(
        dir,
        &[
            "package",
            "ServiceDefinition.csdef",
            "--role",
            "Web=./web",
            "--role",
            "Worker=./worker",
            "-o",
            out,
        ],
    )
}

#[test]
fn build_inspect_verify_unpack() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    service(dir);
    let out = build(dir, "app.cspkg");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("wrote app.cspkg (2 roles, 3 files,"),
        "{stdout}"
    );
    let digest = stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest sha256:"))
        .unwrap()
        .to_owned();
    assert_eq!(digest.len(), 64);

    let out = weft(dir, &["package", "inspect", "app.cspkg"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("digest   sha256:{digest}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("role Web: 2 files, 2 directories, 34 bytes"),
        "{stdout}"
    );
    assert!(stdout.contains("  0755    23  bin/server"), "{stdout}");
    assert!(stdout.contains("  0644    11  index.html"), "{stdout}");
    assert!(stdout.contains("  dir      -  logs/"), "{stdout}");
    assert!(
        stdout.contains("role Worker: 1 file, 0 directories, 500 bytes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("total: 2 roles, 3 files, 996 bytes"),
        "{stdout}"
    );

    let out = weft(dir, &["package", "inspect", "--json", "app.cspkg"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["digest"], digest.as_str());
    assert_eq!(v["totals"]["files"], 3);
    assert_eq!(v["roles"][0]["name"], "Web");
    assert_eq!(v["roles"][0]["entries"][1]["path"], "bin/server");
    assert_eq!(v["roles"][0]["entries"][1]["mode"], "0755");

    let out = weft(dir, &["package", "verify", "app.cspkg"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with("ok: app.cspkg verified (service definition and 3 files, 996 bytes)")
    );

    let out = weft(
        dir,
        &[
            "package",
            "unpack",
            "app.cspkg",
            "--role",
            "Web",
            "-o",
            "approot",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(dir.join("approot/index.html")).unwrap(),
        "MARKER-AAAA"
    );
    let mode = fs::metadata(dir.join("approot/bin/server"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert!(dir.join("approot/logs").is_dir());
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    service(tmp.path());
    assert!(build(tmp.path(), "one.cspkg").status.success());
    let f = fs::File::options()
        .write(true)
        .open(tmp.path().join("web/index.html"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert!(build(tmp.path(), "two.cspkg").status.success());
    assert_eq!(
        fs::read(tmp.path().join("one.cspkg")).unwrap(),
        fs::read(tmp.path().join("two.cspkg")).unwrap()
    );
}

#[test]
fn a_tampered_package_fails_verify_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    service(dir);
    assert!(build(dir, "app.cspkg").status.success());
    let mut bytes = fs::read(dir.join("app.cspkg")).unwrap();
    let at = bytes
        .windows(11)
        .position(|w| w == b"MARKER-AAAA")
        .expect("stored marker");
    bytes[at..at + 11].copy_from_slice(b"MARKER-BBBB");
    fs::write(dir.join("app.cspkg"), &bytes).unwrap();

    let out = weft(dir, &["package", "verify", "app.cspkg"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: entry roles/Web/approot/index.html is corrupt"),
        "{stderr}"
    );
    assert!(
        stderr.contains("app.cspkg: failed verification with 1 problem"),
        "{stderr}"
    );

    let out = weft(dir, &["package", "verify", "--json", "app.cspkg"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["findings"][0]
            .as_str()
            .unwrap()
            .contains("roles/Web/approot/index.html")
    );

    let out = weft(
        dir,
        &[
            "package",
            "unpack",
            "app.cspkg",
            "--role",
            "Web",
            "-o",
            "approot",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("failed to unpack role Web: entry roles/Web/approot/index.html is corrupt")
    );
    assert!(!dir.join("approot").exists());
}

#[test]
fn a_package_that_is_not_a_zip_fails_verify() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("junk.cspkg"), "not a package").unwrap();
    let out = weft(tmp.path(), &["package", "verify", "junk.cspkg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("error: not a weft package: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn build_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    service(dir);
    let out = weft(
        dir,
        &[
            "package",
            "ServiceDefinition.csdef",
            "--role",
            "Web=./nope",
            "--role",
            "Worker=./worker",
            "-o",
            "app.cspkg",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "error: role Web: cannot read directory ./nope: No such file or directory (os error 2)"
    );
    let out = weft(
        dir,
        &[
            "package",
            "ServiceDefinition.csdef",
            "--role",
            "Web",
            "-o",
            "app.cspkg",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected NAME=DIR, got `Web`"),
        "{}",
        text(&out.stderr)
    );
    let out = weft(
        dir,
        &["package", "ServiceDefinition.csdef", "-o", "app.cspkg"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no roles given"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.join("app.cspkg").exists());
}

#[test]
fn role_directories_must_match_the_definition() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    service(dir);

    let out = weft(
        dir,
        &[
            "package",
            "ServiceDefinition.csdef",
            "--role",
            "Web=./web",
            "-o",
            "a.cspkg",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "role Worker of ServiceDefinition.csdef has no directory: add --role Worker=DIR"
        ),
        "{stderr}"
    );
    assert!(!dir.join("a.cspkg").exists(), "nothing may be packaged");

    let out = weft(
        dir,
        &[
            "package",
            "ServiceDefinition.csdef",
            "--role",
            "Web=./web",
            "--role",
            "Worker=./worker",
            "--role",
            "Wrker=./worker",
            "-o",
            "a.cspkg",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "--role Wrker: ServiceDefinition.csdef defines no role Wrker (its roles: Web, Worker)"
        ),
        "{stderr}"
    );
    assert!(!dir.join("a.cspkg").exists(), "nothing may be packaged");
}

#[test]
fn a_definition_with_errors_is_not_packaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    service(dir);
    // Two roles with one name: an error Azure refuses too.
    fs::write(
        dir.join("ServiceDefinition.csdef"),
        CSDEF.replace("WorkerRole name=\"Worker\"", "WorkerRole name=\"Web\""),
    )
    .unwrap();
    let out = build(dir, "app.cspkg");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--> ServiceDefinition.csdef:"), "{stderr}");
    assert!(stderr.contains("nothing was packaged"), "{stderr}");
    assert!(!dir.join("app.cspkg").exists());
}
