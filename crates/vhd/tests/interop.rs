//! Cross-validation against independent implementations: qemu-img (qemu's
//! `vpc` driver) and libvhdi (`vhdiinfo`, `pyvhdi`). These tools are
//! required: a missing tool fails the test with how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

use weft_vhd::{
    Chain, ChainOptions, CreateOptions, DiffOptions, SizePolicy, create, create_differencing,
};

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} not found: run scripts/install-deps");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn weft_read(path: &Path) -> Vec<u8> {
    let c = Chain::open(path, &ChainOptions::default()).unwrap();
    let mut buf = vec![0u8; c.size() as usize];
    c.read_at(&mut buf, 0).unwrap();
    buf
}

fn qemu_read(path: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!(
        "{}.qemu.raw",
        path.file_name().unwrap().to_string_lossy()
    ));
    run(Command::new(tool("qemu-img"))
        .args(["convert", "-f", "vpc", "-O", "raw"])
        .arg(path)
        .arg(&out));
    std::fs::read(out).unwrap()
}

fn qemu_virtual_size(path: &Path) -> u64 {
    let json = run(Command::new(tool("qemu-img"))
        .args(["info", "-f", "vpc", "--output=json"])
        .arg(path));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["virtual-size"]
        .as_u64()
        .expect("virtual-size in qemu-img info")
}

/// Deterministic, non-repeating test bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
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
    c.flush().unwrap();
}

#[test]
fn qemu_reads_weft_images_like_weft_does() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (CreateOptions::dynamic(5_000_000), "dyn-round"),
        (CreateOptions::fixed(5_000_000), "fixed-round"),
        (
            CreateOptions {
                size_policy: SizePolicy::Exact,
                ..CreateOptions::dynamic(5_000_000)
            },
            "dyn-exact",
        ),
        (
            CreateOptions {
                size_policy: SizePolicy::Exact,
                ..CreateOptions::fixed(5_000_000)
            },
            "fixed-exact",
        ),
        (
            CreateOptions {
                block_size: 8 << 20,
                ..CreateOptions::dynamic(5_000_000)
            },
            "dyn-8m-blocks",
        ),
        (
            CreateOptions {
                block_size: 4096,
                ..CreateOptions::dynamic(5_000_000)
            },
            "dyn-4k-blocks",
        ),
    ];
    for (opts, name) in cases {
        let p = dir.path().join(format!("{name}.vhd"));
        let size = create(&p, &opts).unwrap().size();
        write(&p, 0, &pattern(70_000, 1));
        write(&p, 2 << 20, &pattern(1 << 20, 2));
        write(&p, size - 4096, &pattern(4096, 3));
        assert_eq!(qemu_virtual_size(&p), size, "{name}: qemu-img info size");
        let ours = weft_read(&p);
        assert_eq!(ours.len() as u64, size);
        assert!(
            qemu_read(&p, dir.path()) == ours,
            "{name}: qemu-img reads other bytes than weft"
        );
        if opts.size_policy == SizePolicy::RoundUpToGeometry {
            assert!(size >= 5_000_000, "{name}: rounded down");
        } else {
            assert_eq!(size, 5_000_192, "{name}: exact size not kept");
        }
    }
}

#[test]
fn weft_reads_qemu_images_like_qemu_does() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("src.raw");
    // Data, a hole of zeros, data again: 6 000 128 bytes (not CHS-exact).
    let mut bytes = pattern(6_000_128, 7);
    bytes[1 << 20..3 << 20].fill(0);
    std::fs::write(&raw, &bytes).unwrap();
    for (name, opts) in [
        ("default", None),
        ("fixed", Some("subformat=fixed")),
        ("force", Some("force_size=on")),
        ("fixed-force", Some("subformat=fixed,force_size=on")),
    ] {
        let p = dir.path().join(format!("q-{name}.vhd"));
        let mut cmd = Command::new(tool("qemu-img"));
        cmd.args(["convert", "-f", "raw", "-O", "vpc"]);
        if let Some(o) = opts {
            cmd.args(["-o", o]);
        }
        run(cmd.arg(&raw).arg(&p));
        let theirs = qemu_read(&p, dir.path());
        let ours = weft_read(&p);
        assert_eq!(ours.len() as u64, qemu_virtual_size(&p), "{name}: size");
        assert!(
            ours == theirs,
            "{name}: weft reads other bytes than qemu-img"
        );
        assert!(ours[..bytes.len()] == bytes[..], "{name}: data");
    }
}

fn vhdiinfo(path: &Path) -> Vec<(String, String)> {
    run(Command::new(tool("vhdiinfo")).arg(path))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn field<'a>(info: &'a [(String, String)], key: &str) -> &'a str {
    info.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("vhdiinfo printed no {key:?}: {info:?}"))
}

#[test]
fn vhdiinfo_reports_type_size_ids_and_parent() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed.vhd");
    let base = dir.path().join("base.vhd");
    let child = dir.path().join("child.vhd");
    let f = create(&fixed, &CreateOptions::fixed(3 << 20)).unwrap();
    let b = create(&base, &CreateOptions::dynamic(3 << 20)).unwrap();
    let c = create_differencing(&child, &base, &DiffOptions::default()).unwrap();
    for (path, img, kind) in [
        (&fixed, &f, "Fixed"),
        (&base, &b, "Dynamic"),
        (&child, &c, "Differential"),
    ] {
        let info = vhdiinfo(path);
        assert_eq!(field(&info, "Disk type"), kind);
        assert!(
            field(&info, "Media size").contains(&format!("({} bytes)", img.size())),
            "{info:?}"
        );
        assert_eq!(
            field(&info, "Identifier"),
            img.footer().unique_id.to_string()
        );
    }
    let info = vhdiinfo(&child);
    assert_eq!(
        field(&info, "Parent identifier"),
        b.footer().unique_id.to_string()
    );
    assert_eq!(field(&info, "Parent filename"), "base.vhd");
}

#[test]
fn pyvhdi_reads_a_three_deep_chain_like_weft() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.vhd");
    let mid = dir.path().join("mid.vhd");
    let top = dir.path().join("top.vhd");
    drop(create(&base, &CreateOptions::dynamic(4 << 20)).unwrap());
    // libvhdi reads partly-set bitmap bytes wrongly: runs are 8-sector aligned.
    let runs: [(&Path, u64, usize); 6] = [
        (&base, 0, 1 << 20),
        (&base, 3 << 20, 256 << 10),
        (&mid, 4096 * 3, 4096 * 5),
        (&mid, (2 << 20) - 4096, 8192),
        (&top, 4096 * 4, 4096),
        (&top, (3 << 20) + 4096 * 9, 4096 * 40),
    ];
    for (i, (path, off, len)) in runs.iter().enumerate() {
        if *path == mid.as_path() && !mid.exists() {
            drop(create_differencing(&mid, &base, &DiffOptions::default()).unwrap());
        }
        if *path == top.as_path() && !top.exists() {
            drop(create_differencing(&top, &mid, &DiffOptions::default()).unwrap());
        }
        write(path, *off, &pattern(*len, i as u64 + 10));
    }
    let ours = weft_read(&top);
    let script = r#"
import sys, pyvhdi
paths = sys.argv[1:4]
files = []
for p in paths:
    f = pyvhdi.file()
    f.open(p)
    files.append(f)
files[1].set_parent(files[2])
files[0].set_parent(files[1])
size = files[0].get_media_size()
sys.stdout.buffer.write(files[0].read_buffer_at_offset(size, 0))
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args([&top, &mid, &base])
        .output()
        .expect("failed to run /usr/bin/python3: run scripts/install-deps");
    assert!(
        out.status.success(),
        "pyvhdi failed (python3-libvhdi installed? run scripts/install-deps): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), ours.len());
    assert!(out.stdout == ours, "pyvhdi reads other bytes than weft");
}
