//! The examples a new user runs first must stay valid: every service under
//! `examples/` validates without a single diagnostic and packages cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("read examples/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("ServiceDefinition.csdef").is_file())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no example services under {}",
        root.display()
    );
    dirs
}

fn weft(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .output()
        .expect("run weft")
}

#[test]
fn every_example_validates_without_diagnostics_and_packages() {
    for dir in examples() {
        let csdef = dir.join("ServiceDefinition.csdef");
        let mut configs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cscfg"))
            .collect();
        configs.sort();
        assert!(!configs.is_empty(), "{} has no .cscfg", dir.display());
        for cscfg in &configs {
            let out = weft(&["validate".as_ref(), csdef.as_os_str(), cscfg.as_os_str()]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{}: {stdout}", cscfg.display());
            assert_eq!(stdout.trim(), "0 errors, 0 warnings", "{}", cscfg.display());
        }

        // One folder per role the definition names, as `weft up` expects.
        // Links are followed as `weft up` follows them; a role's program is a
        // link to what `cargo build --release` makes, so package this build's
        // copy of it instead.
        let tmp = tempfile::tempdir().unwrap();
        let output = tmp.path().join("app.cspkg");
        let mut args: Vec<std::ffi::OsString> = vec!["package".into(), csdef.clone().into()];
        for name in role_names(&csdef) {
            let copy = tmp.path().join(&name);
            copy_role(&dir, &dir.join(&name), &copy);
            args.push("--role".into());
            args.push(format!("{name}={}", copy.display()).into());
        }
        args.extend(["-o".into(), output.clone().into()]);
        let out = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = weft(&["package".as_ref(), "verify".as_ref(), output.as_os_str()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The roles a service definition names.
fn role_names(csdef: &Path) -> Vec<String> {
    let text = std::fs::read(csdef).unwrap();
    let name = csdef.display().to_string();
    let report = weft_model::check((&name, &text), None);
    let definition = report.definition.expect("the definition parses");
    definition
        .roles
        .iter()
        .map(|r| r.name.value.clone())
        .collect()
}

/// Copies a role folder of the example `example`. A link to
/// `target/release/<bin>` becomes this build's `<bin>` (built beside
/// `weft`); any other link must stay inside the example, and its target is
/// copied.
fn copy_role(example: &Path, from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let link = std::fs::read_link(&path).unwrap();
            let bin = link.file_name().unwrap();
            if link.ends_with(Path::new("target/release").join(bin)) {
                let built = Path::new(env!("CARGO_BIN_EXE_weft")).with_file_name(bin);
                assert!(
                    built.is_file(),
                    "{} not built: cargo nextest run --workspace builds it",
                    built.display()
                );
                std::fs::copy(&built, &target).unwrap();
                continue;
            }
            let resolved = path
                .canonicalize()
                .unwrap_or_else(|e| panic!("{} links to {}: {e}", path.display(), link.display()));
            assert!(
                resolved.starts_with(example.canonicalize().unwrap()) && resolved.is_file(),
                "{} links to {}: a role folder may link only to a program cargo builds or to a file of its example",
                path.display(),
                link.display()
            );
            std::fs::copy(&resolved, &target).unwrap();
        } else if meta.is_dir() {
            copy_role(example, &path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
