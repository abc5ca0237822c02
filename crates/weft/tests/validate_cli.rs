//! `weft validate` run as a user runs it: exit codes, rustc-style output,
//! JSON output, malformed XML positions and UTF-16 input.

use std::path::{Path, PathBuf};
use std::process::Command;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../model/tests/cases");
const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/service-models"
);

fn case(name: &str, file: &str) -> PathBuf {
    Path::new(CASES).join(name).join(file)
}

fn weft(args: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("validate")
        .args(args)
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("run weft");
    (
        out.status.code().expect("exit code"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn valid_pair_exits_zero_with_summary() {
    let (code, out, _) = weft(
        &[
            &case("valid-full", "ServiceDefinition.csdef"),
            &case("valid-full", "ServiceConfiguration.cscfg"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim_end(), "0 errors, 0 warnings");
}

#[test]
fn warnings_only_exit_zero() {
    let dir = Path::new(FIXTURES).join("nugetgallery-cloud");
    let (code, out, _) = weft(
        &[
            &dir.join("ServiceDefinition.csdef"),
            &dir.join("ServiceConfiguration.Cloud.cscfg"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning[W0302]"), "{out}");
    assert!(out.trim_end().ends_with("0 errors, 12 warnings"), "{out}");
}

#[test]
fn errors_exit_one_and_render_rustc_style() {
    let def = case("https-without-certificate", "ServiceDefinition.csdef");
    let (code, out, _) = weft(&[&def], &[]);
    assert_eq!(code, 1, "{out}");
    let head = format!(
        "error[E0106]: https endpoint `Https` names no certificate\n   --> {}:10:28\n",
        def.display()
    );
    assert!(out.starts_with(&head), "{out}");
    assert!(
        out.contains("10 |       <InputEndpoint name=\"Https\" protocol=\"https\" port=\"443\" />"),
        "{out}"
    );
    assert!(
        out.contains("   |                            ^^^^^\n"),
        "caret under the name:\n{out}"
    );
    assert!(
        out.contains("= help: add `certificate=\"<name>\"`"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("1 error, 0 warnings"), "{out}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let (code, out, _) = weft(&[&case("xpath-references", "ServiceDefinition.csdef")], &[]);
    assert_eq!(code, 1);
    for c in ["E0201", "E0202", "E0203", "W0204", "E0205", "E0206"] {
        assert!(out.contains(&format!("[{c}]")), "{c} missing:\n{out}");
    }
    assert!(out.trim_end().ends_with("5 errors, 1 warning"), "{out}");
}

#[test]
fn json_format_is_machine_readable() {
    let (code, out, _) = weft(
        &[
            &case("roles-mismatch", "ServiceDefinition.csdef"),
            &case("roles-mismatch", "ServiceConfiguration.cscfg"),
        ],
        &["--format", "json"],
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[1]["code"], "E0403");
    assert_eq!(arr[1]["severity"], "error");
    assert_eq!(
        (arr[1]["line"].as_u64(), arr[1]["column"].as_u64()),
        (Some(3), Some(15))
    );
    assert!(
        arr[1]["file"]
            .as_str()
            .unwrap()
            .ends_with("ServiceConfiguration.cscfg")
    );
    assert!(arr[1]["message"].as_str().unwrap().contains("Wroker"));
}

#[test]
fn malformed_xml_gives_its_position() {
    let (code, out, _) = weft(&[&case("malformed-xml", "ServiceDefinition.csdef")], &[]);
    assert_eq!(code, 1);
    assert!(out.contains("error[E0001]: malformed XML"), "{out}");
    assert!(out.contains("ServiceDefinition.csdef:9:3"), "{out}");
}

#[test]
fn utf16_files_work() {
    let lokad = Path::new(FIXTURES).join("lokad-cloud-2011");
    let (code, out, _) = weft(
        &[
            &lokad.join("ServiceDefinition.csdef"),
            &lokad.join("ServiceConfiguration.cscfg"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = weft(
        &[
            &case("valid-utf16-crlf", "ServiceDefinition.csdef"),
            &case("valid-utf16-crlf", "ServiceConfiguration.cscfg"),
        ],
        &[],
    );
    assert_eq!((code, out.trim_end()), (0, "0 errors, 0 warnings"));
}

#[test]
fn missing_file_exits_two() {
    let (code, out, err) = weft(&[Path::new("/nonexistent/ServiceDefinition.csdef")], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("failed to read /nonexistent/ServiceDefinition.csdef"),
        "{err}"
    );
}

#[test]
fn no_arguments_is_a_usage_error() {
    let (code, _, err) = weft(&[], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("Usage"), "{err}");
}
