//! `weft vhd ...` run the way a user runs it.

use std::path::Path;
use std::process::{Command, Output};

use weft_vhd::{Chain, ChainOptions};

fn weft(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("failed to run weft")
}

fn ok(args: &[&str], cwd: &Path) -> String {
    let out = weft(args, cwd);
    assert!(
        out.status.success(),
        "weft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str], cwd: &Path) -> String {
    let out = weft(args, cwd);
    assert!(!out.status.success(), "weft {args:?} succeeded");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn info(path: &str, cwd: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&["vhd", "info", "--json", path], cwd)).unwrap()
}

fn write(path: &Path, offset: u64, data: &[u8]) {
    let mut c = Chain::open(
        path,
        &ChainOptions {
            writable: true,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    c.write_at(data, offset).unwrap();
}

#[test]
fn create_rounds_up_to_the_geometry_or_keeps_the_exact_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = weft(&["vhd", "create", "--size", "10M", "a.vhd"], d);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rounded up from 10485760 to 10514432"));
    let v = info("a.vhd", d);
    assert_eq!(v["type"], "dynamic");
    assert_eq!(v["virtual_size"], 10_514_432);
    assert_eq!(v["geometry"]["cylinders"], 302);
    assert_eq!(v["block_size"], 2 << 20);
    assert_eq!(v["allocated_blocks"], 0);
    ok(
        &[
            "vhd",
            "create",
            "--size",
            "10M",
            "--exact-size",
            "--type",
            "fixed",
            "b.vhd",
        ],
        d,
    );
    let v = info("b.vhd", d);
    assert_eq!(
        (v["type"].as_str(), v["virtual_size"].as_u64()),
        (Some("fixed"), Some(10 << 20))
    );
    let err = fails(&["vhd", "create", "--size", "1M", "a.vhd"], d);
    assert!(
        err.contains("failed to create") && err.contains("a.vhd"),
        "{err}"
    );
    let err = fails(&["vhd", "create", "--size", "12Q", "c.vhd"], d);
    assert!(err.contains("invalid size suffix"), "{err}");
}

#[test]
fn diff_info_merge_and_flatten() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["vhd", "create", "--size", "4M", "base.vhd"], d);
    write(&d.join("base.vhd"), 0, &[1u8; 8192]);
    ok(&["vhd", "diff", "child.vhd", "--parent", "base.vhd"], d);
    write(&d.join("child.vhd"), 4096, &[2u8; 4096]);
    let base = info("base.vhd", d);
    let child = info("child.vhd", d);
    assert_eq!(child["type"], "differencing");
    assert_eq!(child["parent_name"], "base.vhd");
    assert_eq!(child["parent_unique_id"], base["unique_id"]);
    assert_eq!(child["chain"].as_array().unwrap().len(), 2);
    let text = ok(&["vhd", "info", "child.vhd"], d);
    assert!(text.contains("parent name:      base.vhd"), "{text}");

    let expect: Vec<u8> = [vec![1u8; 4096], vec![2u8; 4096], vec![0u8; 8192]].concat();
    let cat = ok(&["vhd", "cat", "child.vhd", "--length", "16K"], d);
    assert!(cat.as_bytes() == expect.as_slice());
    ok(
        &["vhd", "flatten", "child.vhd", "flat.vhd", "--type", "fixed"],
        d,
    );
    let flat = info("flat.vhd", d);
    assert_eq!(
        (flat["type"].as_str(), &flat["virtual_size"]),
        (Some("fixed"), &base["virtual_size"])
    );
    ok(
        &[
            "vhd", "cat", "flat.vhd", "--length", "16K", "-o", "flat.raw",
        ],
        d,
    );
    assert_eq!(std::fs::read(d.join("flat.raw")).unwrap(), expect);

    let out = ok(&["vhd", "merge", "child.vhd"], d);
    assert!(
        out.contains("merged 4096 bytes") && out.contains("child removed"),
        "{out}"
    );
    assert!(!d.join("child.vhd").exists());
    ok(
        &[
            "vhd", "cat", "base.vhd", "--length", "16K", "-o", "base.raw",
        ],
        d,
    );
    assert_eq!(std::fs::read(d.join("base.raw")).unwrap(), expect);
}

#[test]
fn convert_raw_to_dynamic_and_back_is_sparse_and_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut raw = vec![0u8; 6 << 20];
    raw[100..5000].fill(7);
    raw[(5 << 20) + 3..(5 << 20) + 900].fill(9);
    std::fs::write(d.join("in.raw"), &raw).unwrap();
    ok(&["vhd", "convert", "in.raw", "out.vhd"], d);
    let v = info("out.vhd", d);
    assert_eq!(v["type"], "dynamic");
    assert_eq!(
        v["allocated_blocks"], 2,
        "zero blocks must stay unallocated"
    );
    ok(&["vhd", "convert", "out.vhd", "back.raw"], d);
    let back = std::fs::read(d.join("back.raw")).unwrap();
    assert_eq!(back.len() as u64, v["virtual_size"].as_u64().unwrap());
    assert!(back[..raw.len()] == raw[..] && back[raw.len()..].iter().all(|b| *b == 0));
    let part = ok(
        &[
            "vhd", "cat", "out.vhd", "--offset", "4990", "--length", "20",
        ],
        d,
    );
    assert_eq!(part.as_bytes(), &raw[4990..5010]);
    let err = fails(
        &["vhd", "cat", "out.vhd", "--offset", "7M", "--length", "1"],
        d,
    );
    assert!(err.contains("past the end"), "{err}");
}

#[test]
fn check_reports_findings_with_severity_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&["vhd", "create", "--size", "4M", "a.vhd"], d);
    write(&d.join("a.vhd"), 0, &[3u8; 512]);
    let out = ok(&["vhd", "check", "a.vhd"], d);
    assert!(out.contains("info: summary: dynamic disk"), "{out}");
    // Point block 1 at block 0's place: overlapping blocks.
    let mut bytes = std::fs::read(d.join("a.vhd")).unwrap();
    let first: [u8; 4] = bytes[1536..1540].try_into().unwrap();
    bytes[1540..1544].copy_from_slice(&first);
    std::fs::write(d.join("a.vhd"), &bytes).unwrap();
    let out = fails(&["vhd", "check", "a.vhd"], d);
    assert!(out.contains("error: overlap: block 1"), "{out}");
    let json: serde_json::Value = serde_json::from_str(
        &String::from_utf8(weft(&["vhd", "check", "--json", "a.vhd"], d).stdout).unwrap(),
    )
    .unwrap();
    assert_eq!(json["findings"][0]["severity"], "error");
    let err = fails(&["vhd", "info", "a.vhd"], d);
    assert!(err.contains("overlaps"), "{err}");
}

#[test]
fn a_missing_parent_is_a_clear_error_and_search_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("store")).unwrap();
    ok(&["vhd", "create", "--size", "1M", "base.vhd"], d);
    ok(&["vhd", "diff", "child.vhd", "--parent", "base.vhd"], d);
    std::fs::rename(d.join("base.vhd"), d.join("store/moved.vhd")).unwrap();
    let err = fails(&["vhd", "cat", "child.vhd", "--length", "1"], d);
    assert!(
        err.contains("parent \"base.vhd\"") && err.contains("not found"),
        "{err}"
    );
    let out = fails(&["vhd", "check", "child.vhd"], d);
    assert!(out.contains("error: parent"), "{out}");
    ok(
        &[
            "vhd",
            "cat",
            "child.vhd",
            "--length",
            "1",
            "--search",
            "store",
        ],
        d,
    );
    ok(&["vhd", "check", "child.vhd", "--search", "store"], d);
}

#[test]
fn convert_raw_to_fixed_and_vhd_to_dynamic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.join("in.raw"), &raw).unwrap();
    ok(&["vhd", "convert", "in.raw", "f.vhd", "--to", "fixed"], d);
    assert_eq!(info("f.vhd", d)["type"], "fixed");
    ok(
        &[
            "vhd",
            "convert",
            "f.vhd",
            "d.vhd",
            "--to",
            "dynamic",
            "--block-size",
            "512K",
        ],
        d,
    );
    let v = info("d.vhd", d);
    assert_eq!(
        (v["type"].as_str(), v["block_size"].as_u64()),
        (Some("dynamic"), Some(512 << 10))
    );
    ok(
        &["vhd", "cat", "d.vhd", "--length", "3M", "-o", "out.raw"],
        d,
    );
    assert!(std::fs::read(d.join("out.raw")).unwrap() == raw);
    let err = fails(&["vhd", "convert", "in.raw", "x.raw", "--to", "raw"], d);
    assert!(err.contains("already raw"), "{err}");
}
