//! Build → unpack gives back the same tree; builds are reproducible; the
//! output is a standard ZIP; bad build inputs are refused clearly.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::*;
use weft_package::{Limits, Package, UnpackOptions, unpack};

fn sample_tree(root: &std::path::Path) {
    make_tree(
        root,
        &[
            ("bin/server", b"#!/bin/sh\nexec sleep 1\n", true),
            ("bin/lib/helper.so", &[0u8, 1, 2, 3, 255, 254], false),
            (
                "config/app.json",
                br#"{"name":"hello","replicas":3}"#,
                false,
            ),
            ("empty.txt", b"", false),
            ("logs/", b"", false),
            ("a-b", b"sorts between a and a/b", false),
            ("a/b", b"nested", false),
            (
                "big.txt",
                "lorem ipsum dolor sit amet ".repeat(20_000).as_bytes(),
                false,
            ),
        ],
    );
}

#[test]
fn round_trip_keeps_contents_exec_bits_and_empty_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    let worker = tmp.path().join("worker");
    sample_tree(&web);
    make_tree(&worker, &[("run.sh", b"echo work", true)]);
    // Large enough for the other write paths: a medium compressible file is
    // deflated by a worker while streaming, a medium random one is stored
    // and streamed by the writer.
    fs::write(
        worker.join("medium.log"),
        "line of a log file 42\n".repeat(500_000),
    )
    .unwrap();
    fs::write(worker.join("medium.bin"), noise(9 << 20)).unwrap();
    let pkg = tmp.path().join("app.cspkg");
    let manifest = build(&[("Worker", &worker), ("Web", &web)], &pkg);
    assert_eq!(
        manifest
            .roles
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["Web", "Worker"]
    );

    for (role, src) in [("Web", &web), ("Worker", &worker)] {
        let target = tmp.path().join("unpacked").join(role);
        let done = unpack(
            &pkg,
            role,
            &target,
            Limits::default(),
            UnpackOptions::default(),
        )
        .unwrap();
        assert_eq!(snapshot(&target), snapshot(src), "role {role}");
        assert_eq!(done.package_digest, manifest.digest);
        assert_eq!(done.role_digest, manifest.role(role).unwrap().digest);
    }
    let unpacked = tmp.path().join("unpacked/Web");
    assert_eq!(
        fs::metadata(unpacked.join("bin/server"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        fs::metadata(unpacked.join("empty.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    assert!(unpacked.join("logs").is_dir(), "empty directories survive");
    // Only the two approots: no temporary directories left over.
    assert_eq!(
        fs::read_dir(tmp.path().join("unpacked")).unwrap().count(),
        2
    );

    let mut package = Package::open(&pkg).unwrap();
    assert_eq!(package.service_definition().unwrap(), CSDEF);
    let report = package.verify();
    assert!(report.is_ok(), "{:?}", report.findings);
    assert_eq!(report.files_checked, 1 + 7 + 3);
}

#[test]
fn read_only_unpack_strips_write_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    sample_tree(&web);
    let pkg = tmp.path().join("app.cspkg");
    build(&[("Web", &web)], &pkg);
    let target = tmp.path().join("ro");
    unpack(
        &pkg,
        "Web",
        &target,
        Limits::default(),
        UnpackOptions { read_only: true },
    )
    .unwrap();
    let mode = |p: &str| fs::metadata(target.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("bin/server"), 0o555);
    assert_eq!(mode("config/app.json"), 0o444);
    assert_eq!(mode("bin"), 0o555);
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o555
    );
    weft_package::remove_tree(&target);
    assert!(!target.exists());
}

#[test]
fn same_inputs_give_identical_bytes_whatever_mtimes_modes_and_order() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    sample_tree(&first);
    let pkg1 = tmp.path().join("1.cspkg");
    let m1 = build(&[("Web", &first)], &pkg1);

    // The same content, created in another order elsewhere, with other
    // timestamps and other (but equivalent) permission bits.
    let second = tmp.path().join("elsewhere/second");
    fs::create_dir_all(second.join("logs")).unwrap();
    fs::create_dir_all(second.join("a")).unwrap();
    fs::write(second.join("a/b"), b"nested").unwrap();
    fs::write(second.join("a-b"), b"sorts between a and a/b").unwrap();
    sample_tree(&second);
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    for dent in walkdir::WalkDir::new(&second).min_depth(1) {
        let dent = dent.unwrap();
        if dent.file_type().is_file() {
            let f = fs::File::options().write(true).open(dent.path()).unwrap();
            f.set_modified(old).unwrap();
            let exec = fs::metadata(dent.path()).unwrap().permissions().mode() & 0o111 != 0;
            // group-writable, user-only exec: normalised to 0644 / 0755.
            let bits = if exec { 0o700 } else { 0o664 };
            fs::set_permissions(dent.path(), fs::Permissions::from_mode(bits)).unwrap();
        }
    }
    let pkg2 = tmp.path().join("2.cspkg");
    let m2 = build(&[("Web", &second)], &pkg2);
    assert_eq!(m1.digest, m2.digest);
    assert_eq!(
        fs::read(&pkg1).unwrap(),
        fs::read(&pkg2).unwrap(),
        "packages differ"
    );

    // Touch every file (new mtimes) and rebuild the first tree: same bytes.
    for dent in walkdir::WalkDir::new(&first).min_depth(1) {
        let dent = dent.unwrap();
        if dent.file_type().is_file() {
            let f = fs::File::options().write(true).open(dent.path()).unwrap();
            f.set_modified(SystemTime::now() + Duration::from_secs(3600))
                .unwrap();
        }
    }
    let pkg3 = tmp.path().join("3.cspkg");
    build(&[("Web", &first)], &pkg3);
    assert_eq!(
        fs::read(&pkg1).unwrap(),
        fs::read(&pkg3).unwrap(),
        "a touch changed the package"
    );

    // The thread count changes nothing either.
    let pkg5 = tmp.path().join("5.cspkg");
    let one_thread = weft_package::BuildOptions {
        threads: 1,
        ..Default::default()
    };
    weft_package::build_package(&spec(&[("Web", &first)]), &pkg5, &one_thread).unwrap();
    assert_eq!(
        fs::read(&pkg1).unwrap(),
        fs::read(&pkg5).unwrap(),
        "threads changed the package"
    );

    // A one-byte change changes the digest.
    fs::write(first.join("a/b"), b"nesteD").unwrap();
    let m4 = build(&[("Web", &first)], &tmp.path().join("4.cspkg"));
    assert_ne!(m1.digest, m4.digest);
}

#[test]
fn unzip_accepts_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    sample_tree(&web);
    // An incompressible file, to exercise the stored path too.
    fs::write(web.join("noise.bin"), noise(200_000)).unwrap();
    let pkg = tmp.path().join("app.cspkg");
    build(&[("Web", &web)], &pkg);
    let out = Command::new("unzip")
        .arg("-t")
        .arg(&pkg)
        .output()
        .expect("unzip not found: run scripts/install-deps");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "unzip -t failed: {stdout}");
    assert!(stdout.contains("No errors detected"), "{stdout}");
    let list = Command::new("unzip").arg("-Z").arg(&pkg).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("-rwxr-xr-x") && list.contains("roles/Web/approot/bin/server"),
        "{list}"
    );
    assert!(
        list.contains("stor 80-Jan-01 00:00 roles/Web/approot/noise.bin"),
        "{list}"
    );
    assert!(
        list.contains("defN 80-Jan-01 00:00 roles/Web/approot/big.txt"),
        "{list}"
    );
}

#[test]
fn build_refuses_bad_inputs_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    make_tree(&web, &[("index.html", b"hi", false)]);
    let out = tmp.path().join("app.cspkg");
    let err = |roles: &[(&str, &std::path::Path)]| {
        weft_package::build_package(&spec(roles), &out, &Default::default())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&[("Web", &web), ("Web", &web)]),
        "role Web is given more than once"
    );
    assert_eq!(
        err(&[("../Web", &web)]),
        "invalid role name `../Web`: it starts with `.`"
    );
    assert_eq!(
        err(&[("We/b", &web)]),
        "invalid role name `We/b`: only ASCII letters, digits, `_`, `-` and `.` are allowed"
    );
    let missing = tmp.path().join("nope");
    assert_eq!(
        err(&[("Web", &missing)]),
        format!(
            "role Web: cannot read directory {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let file = web.join("index.html");
    assert_eq!(
        err(&[("Web", &file)]),
        format!(
            "role Web: cannot read directory {}: not a directory",
            file.display()
        )
    );

    std::os::unix::fs::symlink("/etc/passwd", web.join("passwd")).unwrap();
    assert_eq!(
        err(&[("Web", &web)]),
        format!(
            "role Web: {} is a symlink to /etc/passwd; packages do not hold symlinks: replace it with the file or directory it points to",
            web.join("passwd").display()
        )
    );
    fs::remove_file(web.join("passwd")).unwrap();

    let sock = web.join("app.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    assert_eq!(
        err(&[("Web", &web)]),
        format!(
            "role Web: {} is a socket; only regular files and directories can be packaged",
            sock.display()
        )
    );
    assert!(!out.exists(), "a failed build leaves no package");
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "and no temporary file"
    );
}

#[test]
fn empty_role_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let pkg = tmp.path().join("app.cspkg");
    let m = build(&[("Empty", &empty)], &pkg);
    assert_eq!(m.roles[0].entries, vec![]);
    let target = tmp.path().join("approot");
    let done = unpack(
        &pkg,
        "Empty",
        &target,
        Limits::default(),
        UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(done.files, 0);
    assert!(target.is_dir());
}

#[test]
fn follow_symlinks_packages_the_target_and_names_a_dangling_link() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("target-bin");
    fs::write(&outside, b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
    let web = tmp.path().join("Web");
    fs::create_dir(&web).unwrap();
    std::os::unix::fs::symlink(&outside, web.join("app")).unwrap();
    let follow = weft_package::BuildOptions {
        follow_symlinks: true,
        ..Default::default()
    };
    let pkg = tmp.path().join("app.cspkg");
    weft_package::build_package(&spec(&[("Web", &web)]), &pkg, &follow).unwrap();
    let target = tmp.path().join("approot");
    unpack(
        &pkg,
        "Web",
        &target,
        Limits::default(),
        UnpackOptions::default(),
    )
    .unwrap();
    let app = target.join("app");
    assert!(!fs::symlink_metadata(&app).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&app).unwrap(), b"#!/bin/sh\necho hi\n");
    assert_eq!(
        fs::metadata(&app).unwrap().permissions().mode() & 0o111,
        0o111
    );

    fs::remove_file(&outside).unwrap();
    let err = weft_package::build_package(&spec(&[("Web", &web)]), &pkg, &follow).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "role Web: {} is a symlink to {}, which does not exist",
            web.join("app").display(),
            outside.display()
        )
    );
}

/// Incompressible bytes from a fixed-seed xorshift generator.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn concurrent_unpacks_into_one_target_leave_one_complete_approot() {
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    sample_tree(&web);
    let pkg = tmp.path().join("app.cspkg");
    build(&[("Web", &web)], &pkg);
    let target = tmp.path().join("shared/approot");
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    unpack(
                        &pkg,
                        "Web",
                        &target,
                        Limits::default(),
                        UnpackOptions::default(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            err.to_string(),
            format!(
                "failed to unpack role Web: target {} already exists",
                target.display()
            )
        );
    }
    assert_eq!(snapshot(&target), snapshot(&web));
    assert_eq!(
        fs::read_dir(tmp.path().join("shared")).unwrap().count(),
        1,
        "no temporary leftovers"
    );
}
