//! Hostile archives: each must be refused with a clear error, with nothing
//! written outside the target and no partial target left behind.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use weft_package::{FileMode, Limits, UnpackOptions, unpack};

/// Unpacks role Web of `bytes` into `<tmp>/out/approot` and returns the
/// error message, after checking that nothing at all was left in `<tmp>/out`
/// and nothing else appeared in `<tmp>` or its parent.
fn refused_with(bytes: &[u8], limits: Limits) -> String {
    let outer = tempfile::tempdir().unwrap();
    let base = outer.path().join("base");
    let out = base.join("out");
    fs::create_dir_all(&out).unwrap();
    let pkg = base.join("app.cspkg");
    fs::write(&pkg, bytes).unwrap();
    let err = unpack(
        &pkg,
        "Web",
        &out.join("approot"),
        limits,
        UnpackOptions::default(),
    )
    .expect_err("a hostile package must be refused");
    assert_eq!(
        all_paths(outer.path()),
        [
            Path::new("base"),
            Path::new("base/app.cspkg"),
            Path::new("base/out")
        ],
        "nothing may be written but the package's own directory, no partial target"
    );
    assert!(!Path::new("/tmp/evil").exists());
    err.to_string()
}

fn refused(bytes: &[u8]) -> String {
    refused_with(bytes, Limits::default())
}

fn ok_manifest() -> String {
    json(&manifest(vec![file_entry(
        "a.txt",
        b"hello",
        FileMode::Regular,
    )]))
}

#[test]
fn dot_dot_entry_escaping_the_approot() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("roles/Web/approot/../../../../evil", b"x".to_vec(), 0o644),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/../../../../evil escapes the approot"
    );
}

#[test]
fn dot_dot_entry_escaping_the_package() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("../../../../../../tmp/evil", b"x".to_vec(), 0o644),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry ../../../../../../tmp/evil escapes the package"
    );
}

#[test]
fn dot_dot_path_in_the_manifest() {
    // A manifest that itself lists an escaping path, with digests that match.
    let m = manifest(vec![file_entry("../evil", b"x", FileMode::Regular)]);
    let zip = craft(
        vec![Raw::File("roles/Web/approot/../evil", b"x".to_vec(), 0o644)],
        &json(&m),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: invalid manifest: entry roles/Web/approot/../evil escapes the approot"
    );
}

#[test]
fn absolute_path() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("/tmp/evil", b"x".to_vec(), 0o644),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry /tmp/evil is an absolute path"
    );
}

#[test]
fn windows_backslash_traversal() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("roles/Web/approot/..\\..\\evil", b"x".to_vec(), 0o644),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/..\\..\\evil contains a backslash (a windows path separator)"
    );
}

#[test]
fn windows_drive_letter() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("C:/Windows/evil", b"x".to_vec(), 0o644),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry C:/Windows/evil starts with a windows drive letter"
    );
}

#[test]
fn symlink_escaping_the_approot() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::Symlink("roles/Web/approot/link", "/etc"),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/link is a symlink; packages do not hold symlinks"
    );
}

#[test]
fn symlink_listed_in_the_manifest_as_a_file() {
    // Even when the manifest lists it (with the link text as content), a
    // symlink entry is refused before anything is written.
    let m = manifest(vec![file_entry("link", b"/etc/passwd", FileMode::Regular)]);
    let zip = craft(
        vec![Raw::Symlink("roles/Web/approot/link", "/etc/passwd")],
        &json(&m),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/link is a symlink; packages do not hold symlinks"
    );
}

#[test]
fn exact_duplicate_entries() {
    // The zip writer refuses duplicate names, so write two and rename one.
    let m = manifest(vec![file_entry("a.txt", b"hello", FileMode::Regular)]);
    let mut zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("roles/Web/approot/b.txt", b"evil!".to_vec(), 0o644),
        ],
        &json(&m),
    );
    assert_eq!(patch(&mut zip, b"approot/b.txt", b"approot/a.txt"), 2);
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: duplicate entry names in the archive's central directory"
    );
}

#[test]
fn duplicate_entries_differing_by_normalisation() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("roles/Web/approot/./a.txt", b"evil!".to_vec(), 0o644),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: duplicate entry roles/Web/approot/a.txt (also stored as roles/Web/approot/./a.txt)"
    );
}

#[test]
fn non_canonical_name() {
    let m = manifest(vec![file_entry("a/b.txt", b"hello", FileMode::Regular)]);
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/a//b.txt",
            b"hello".to_vec(),
            0o644,
        )],
        &json(&m),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/a//b.txt is not in canonical form"
    );
}

#[test]
fn entry_missing_from_the_manifest() {
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"hello".to_vec(), 0o644),
            Raw::File("roles/Web/approot/extra.sh", b"rm -rf /".to_vec(), 0o755),
        ],
        &ok_manifest(),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/extra.sh is in the archive but not in the manifest"
    );
}

#[test]
fn manifest_entry_missing_from_the_archive() {
    let m = manifest(vec![
        file_entry("a.txt", b"hello", FileMode::Regular),
        file_entry("b.txt", b"world", FileMode::Regular),
    ]);
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/a.txt",
            b"hello".to_vec(),
            0o644,
        )],
        &json(&m),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/b.txt is in the manifest but missing from the archive"
    );
}

#[test]
fn hash_mismatch() {
    let m = manifest(vec![file_entry("a.txt", b"hello", FileMode::Regular)]);
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/a.txt",
            b"HELLO".to_vec(),
            0o644,
        )],
        &json(&m),
    );
    assert_eq!(
        refused(&zip),
        format!(
            "failed to unpack role Web: entry roles/Web/approot/a.txt is corrupt: sha-256 is {}, the manifest says {}",
            sha(b"HELLO"),
            sha(b"hello")
        )
    );
}

#[test]
fn size_mismatch_in_the_zip_header() {
    let m = manifest(vec![file_entry("a.txt", b"hello", FileMode::Regular)]);
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/a.txt",
            b"hello, world".to_vec(),
            0o644,
        )],
        &json(&m),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/a.txt has the wrong size: 12 bytes in its zip header, the manifest says 5 bytes"
    );
}

#[test]
fn lying_sizes_are_caught_while_streaming() {
    // Manifest and zip header both claim 1000 bytes; the deflate stream
    // holds 8 MiB of zeros. Reading must stop at byte 1001, not trust them.
    let real = vec![0u8; 8 << 20];
    let claimed = vec![0u8; 1000];
    let m = manifest(vec![file_entry("zeros", &claimed, FileMode::Regular)]);
    let mut zip = craft(
        vec![Raw::File("roles/Web/approot/zeros", real, 0o644)],
        &json(&m),
    );
    // Patch the uncompressed size (8 MiB = 0x00800000) in both headers to 1000.
    let n = patch(
        &mut zip,
        &(8u32 << 20).to_le_bytes(),
        &1000u32.to_le_bytes(),
    );
    assert_eq!(n, 2, "local and central header sizes");
    // The zip reader stops at the declared size; our own count (which stops
    // at the manifest size + 1) is the second line of defence.
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/zeros is corrupt: file is larger than its declared uncompressed size"
    );
}

#[test]
fn wrong_mode() {
    let m = manifest(vec![file_entry("run.sh", b"echo hi", FileMode::Executable)]);
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/run.sh",
            b"echo hi".to_vec(),
            0o777,
        )],
        &json(&m),
    );
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/run.sh has the wrong mode: 100777, the manifest says 100755"
    );
}

#[test]
fn a_directory_where_the_manifest_says_file() {
    let m = manifest(vec![file_entry("a", b"", FileMode::Regular)]);
    let zip = craft(vec![Raw::Dir("roles/Web/approot/a/")], &json(&m));
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: entry roles/Web/approot/a/ has the wrong mode: directory 040755, the manifest says 100644"
    );
}

#[test]
fn compression_ratio_bomb() {
    // 64 MiB of zeros deflates about 1000:1; the default limit is 200:1.
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    fs::create_dir(&web).unwrap();
    fs::write(web.join("zeros"), vec![0u8; 64 << 20]).unwrap();
    build(&[("Web", &web)], &tmp.path().join("p.cspkg"));
    let bytes = fs::read(tmp.path().join("p.cspkg")).unwrap();
    let msg = refused(&bytes);
    assert!(
        msg.starts_with("failed to unpack role Web: the compression ratio exceeds the limit of 200: roles/Web/approot/zeros expands"),
        "{msg}"
    );
}

#[test]
fn total_size_limit() {
    let m = manifest(vec![
        file_entry("a", &[1u8; 600], FileMode::Regular),
        file_entry("b", &[2u8; 600], FileMode::Regular),
    ]);
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a", vec![1u8; 600], 0o644),
            Raw::File("roles/Web/approot/b", vec![2u8; 600], 0o644),
        ],
        &json(&m),
    );
    let limits = Limits {
        max_total_size: 1000,
        ..Limits::default()
    };
    assert_eq!(
        refused_with(&zip, limits),
        "failed to unpack role Web: the total uncompressed size exceeds the limit of 1000: the manifest gives role Web 1200 bytes"
    );
}

#[test]
fn per_entry_size_limit() {
    let m = manifest(vec![file_entry("a", &[1u8; 600], FileMode::Regular)]);
    let zip = craft(
        vec![Raw::File("roles/Web/approot/a", vec![1u8; 600], 0o644)],
        &json(&m),
    );
    let limits = Limits {
        max_entry_size: 500,
        ..Limits::default()
    };
    assert_eq!(
        refused_with(&zip, limits),
        "failed to unpack role Web: the entry size exceeds the limit of 500: the manifest gives roles/Web/approot/a 600 bytes"
    );
}

#[test]
fn entry_count_limit() {
    let limits = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    assert_eq!(
        refused_with(
            &craft(
                vec![Raw::File(
                    "roles/Web/approot/a.txt",
                    b"hello".to_vec(),
                    0o644
                )],
                &ok_manifest()
            ),
            limits
        ),
        "failed to unpack role Web: the number of entries exceeds the limit of 2: the archive has 3"
    );
}

#[test]
fn not_a_zip() {
    let msg = refused(b"PK\x03\x04 this is not really a zip file at all");
    assert!(
        msg.starts_with("failed to unpack role Web: not a weft package: "),
        "{msg}"
    );
}

#[test]
fn zip_without_manifest() {
    let mut zip = craft(vec![], "{}");
    patch(&mut zip, b"manifest.json", b"manifest.jsoo");
    assert_eq!(
        refused(&zip),
        "failed to unpack role Web: invalid manifest: the archive has no manifest.json"
    );
}

#[test]
fn unknown_role() {
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/a.txt",
            b"hello".to_vec(),
            0o644,
        )],
        &ok_manifest(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("app.cspkg");
    fs::write(&pkg, zip).unwrap();
    let err = unpack(
        &pkg,
        "Worker",
        &tmp.path().join("out"),
        Limits::default(),
        UnpackOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to unpack role Worker: the package has no role Worker (it has: Web)"
    );
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn existing_target_is_never_replaced() {
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/a.txt",
            b"hello".to_vec(),
            0o644,
        )],
        &ok_manifest(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("app.cspkg");
    fs::write(&pkg, zip).unwrap();
    let target = tmp.path().join("approot");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("keep"), b"mine").unwrap();
    let err = unpack(
        &pkg,
        "Web",
        &target,
        Limits::default(),
        UnpackOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to unpack role Web: target {} already exists",
            target.display()
        )
    );
    assert_eq!(fs::read(target.join("keep")).unwrap(), b"mine");
    assert_eq!(all_paths(&target).len(), 1);
}

#[test]
fn the_crafted_baseline_is_accepted() {
    // The helpers themselves produce a valid package: every refusal above
    // is due to its one defect.
    let zip = craft(
        vec![Raw::File(
            "roles/Web/approot/a.txt",
            b"hello".to_vec(),
            0o644,
        )],
        &ok_manifest(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("app.cspkg");
    fs::write(&pkg, zip).unwrap();
    let target = tmp.path().join("approot");
    let done = unpack(
        &pkg,
        "Web",
        &target,
        Limits::default(),
        UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(done.files, 1);
    assert_eq!(fs::read(target.join("a.txt")).unwrap(), b"hello");
}

#[test]
fn verify_reports_every_problem_not_just_the_first() {
    let m = manifest(vec![
        file_entry("a.txt", b"hello", FileMode::Regular),
        file_entry("b.txt", b"world", FileMode::Regular),
        file_entry("c.txt", b"!", FileMode::Regular),
    ]);
    let zip = craft(
        vec![
            Raw::File("roles/Web/approot/a.txt", b"HELLO".to_vec(), 0o644),
            Raw::File("roles/Web/approot/b.txt", b"WORLD".to_vec(), 0o644),
            Raw::File("roles/Web/approot/extra", b"?".to_vec(), 0o644),
        ],
        &json(&m),
    );
    let mut package =
        weft_package::Package::from_reader(std::io::Cursor::new(zip), Limits::default()).unwrap();
    let report = package.verify();
    let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        findings,
        [
            "entry roles/Web/approot/extra is in the archive but not in the manifest".to_owned(),
            "entry roles/Web/approot/c.txt is in the manifest but missing from the archive"
                .to_owned(),
            format!(
                "entry roles/Web/approot/a.txt is corrupt: sha-256 is {}, the manifest says {}",
                sha(b"HELLO"),
                sha(b"hello")
            ),
            format!(
                "entry roles/Web/approot/b.txt is corrupt: sha-256 is {}, the manifest says {}",
                sha(b"WORLD"),
                sha(b"world")
            ),
        ]
    );
    assert!(!report.is_ok());
}
