//! Data-driven cases: each folder under `tests/cases/` holds a
//! `ServiceDefinition.csdef`, optionally a `ServiceConfiguration.cscfg`, and
//! `expected`: one line per diagnostic, `CODE line:col message`, in the order
//! `weft validate` prints them (`valid-*` cases expect nothing).
//! Run with `UPDATE_EXPECT=1` to rewrite `expected` after a deliberate change.

use std::path::Path;

const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");

fn actual(dir: &Path) -> String {
    let def = std::fs::read(dir.join("ServiceDefinition.csdef")).unwrap();
    let cfg = std::fs::read(dir.join("ServiceConfiguration.cscfg")).ok();
    let report = weft_model::check(
        ("ServiceDefinition.csdef", &def),
        cfg.as_deref().map(|c| ("ServiceConfiguration.cscfg", c)),
    );
    report
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{} {}:{} {}: {}\n",
                d.code.as_str(),
                d.line,
                d.column,
                d.file,
                d.message
            )
        })
        .collect()
}

#[test]
fn cases() {
    let mut dirs: Vec<_> = std::fs::read_dir(CASES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 30, "expected the case folders under {CASES}");
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for dir in dirs {
        let got = actual(&dir);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("valid") {
            assert_eq!(got, "", "case {name} must have no diagnostics");
            continue;
        }
        let path = dir.join("expected");
        if update {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "case {name}:\n--- expected\n{want}--- actual\n{got}"
            ));
        }
        assert!(
            !got.is_empty(),
            "invalid case {name} produced no diagnostic"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_full_case_resolves_for_the_fabric() {
    let dir = Path::new(CASES).join("valid-full");
    let model = weft_model::load(
        &dir.join("ServiceDefinition.csdef"),
        &dir.join("ServiceConfiguration.cscfg"),
    )
    .unwrap();
    assert_eq!(model.upgrade_domains(), 3);
    let worker = model.role("Worker").unwrap();
    assert_eq!(worker.instances, 2);
    assert_eq!(
        worker.limits,
        weft_model::VmLimits {
            cores: 1,
            memory_mib: 1792,
            disk_gib: 224
        }
    );
    assert_eq!(
        worker.settings.get("Greeting").map(String::as_str),
        Some("hello")
    );
    let http = &worker.definition.endpoints.input[0];
    assert_eq!(http.local_port(), weft_model::LocalPort::Port(8080));
    assert_eq!(
        worker.definition.endpoints.input[1].local_port(),
        weft_model::LocalPort::Any
    );
    let probe = model.definition.probe("Health").unwrap();
    assert_eq!(
        (probe.interval_seconds(), probe.timeout_seconds()),
        (15, 31)
    );
    let task = &worker.definition.startup[0];
    assert_eq!(task.task_type, weft_model::TaskType::Simple);
    assert!(matches!(
        &task.environment[0].value,
        weft_model::VariableValue::RoleInstance(x) if x.value == weft_model::RoleInstanceXPath::EndpointPort("Http".into())
    ));
    assert!(!worker.definition.local_storage[0].clean_on_role_recycle);
}

#[test]
fn load_refuses_errors_and_roles_linux_cannot_run() {
    for case in ["roles-mismatch", "sites-only-webrole"] {
        let dir = Path::new(CASES).join(case);
        let err = weft_model::load(
            &dir.join("ServiceDefinition.csdef"),
            &dir.join("ServiceConfiguration.cscfg"),
        )
        .unwrap_err();
        assert!(
            matches!(err, weft_model::LoadError::Invalid { .. }),
            "{case}: {err}"
        );
    }
    let err = weft_model::load(
        Path::new("/nonexistent.csdef"),
        Path::new("/nonexistent.cscfg"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to read /nonexistent.csdef"),
        "{err}"
    );
}
