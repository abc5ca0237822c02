//! Benchmark helper for `bench/vhd.sh` (build with `--release`).
//!
//! - `make-half PATH SIZE_MIB`: a dynamic image with every other 2 MiB block
//!   written (half allocated), data that is not zero.
//! - `chain-read DIR SIZE_MIB`: build a 3-deep chain and the same bytes as a
//!   flat raw file in DIR, then time sequential and random 4 KiB reads
//!   through the chain against `pread` on the raw file (warm page cache:
//!   both are read once first) and print a table with the ratio.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use weft_vhd::{Chain, ChainOptions, CreateOptions, DiffOptions, SizePolicy};

fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for c in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
}

fn writable(path: &Path) -> Chain {
    Chain::open(
        path,
        &ChainOptions {
            writable: true,
            ..ChainOptions::default()
        },
    )
    .expect("open chain")
}

fn make_half(path: &Path, mib: u64) {
    let size = mib << 20;
    drop(
        weft_vhd::create(
            path,
            &CreateOptions {
                size_policy: SizePolicy::Exact,
                ..CreateOptions::dynamic(size)
            },
        )
        .expect("create"),
    );
    let mut c = writable(path);
    let mut buf = vec![0u8; 2 << 20];
    for block in (0..size / (2 << 20)).step_by(2) {
        fill(&mut buf, block + 1);
        c.write_at(&buf, block * (2 << 20)).expect("write");
    }
    c.flush().expect("flush");
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn chain_read(dir: &Path, mib: u64) {
    let size = mib << 20;
    let base = dir.join("base.vhd");
    let mid = dir.join("mid.vhd");
    let top = dir.join("top.vhd");
    let raw = dir.join("flat.raw");
    for p in [&base, &mid, &top, &raw] {
        let _ = std::fs::remove_file(p);
    }
    drop(
        weft_vhd::create(
            &base,
            &CreateOptions {
                size_policy: SizePolicy::Exact,
                ..CreateOptions::dynamic(size)
            },
        )
        .expect("create"),
    );
    let mut buf = vec![0u8; 1 << 20];
    {
        let mut c = writable(&base);
        for off in (0..size).step_by(1 << 20) {
            fill(&mut buf, off + 7);
            c.write_at(&buf, off).expect("write base");
        }
    }
    // Middle and top: scattered 4 KiB-64 KiB runs over ~1/4 of the disk each.
    let mut rng = Rng(0x1234_5678);
    for (child, parent) in [(&mid, &base), (&top, &mid)] {
        drop(weft_vhd::create_differencing(child, parent, &DiffOptions::default()).expect("diff"));
        let mut c = writable(child);
        let mut written = 0;
        while written < size / 4 {
            let len = 4096 * (1 + rng.next() % 16);
            let off = (rng.next() % (size - len)) / 4096 * 4096;
            fill(&mut buf[..len as usize], rng.next());
            c.write_at(&buf[..len as usize], off).expect("write child");
            written += len;
        }
    }
    weft_vhd::convert_to_raw(&top, &raw, &[]).expect("flatten to raw");
    let chain = Chain::open(&top, &ChainOptions::default()).expect("open");
    let flat = File::open(&raw).expect("open raw");
    let mut page = vec![0u8; 4096];
    // Warm both (and check they agree).
    let mut other = vec![0u8; 1 << 20];
    for off in (0..size).step_by(1 << 20) {
        chain.read_at(&mut buf, off).expect("read");
        flat.read_exact_at(&mut other, off).expect("read raw");
        assert!(buf == other, "chain and raw differ at {off}");
    }
    let n_random = 200_000u64;
    let offsets: Vec<u64> = {
        let mut r = Rng(99);
        (0..n_random)
            .map(|_| r.next() % (size / 4096) * 4096)
            .collect()
    };
    // Rounds alternate chain and raw so both see the same background load;
    // the best round counts. CPU time of this thread is reported too: page
    // cache reads are CPU-bound, and it is less disturbed by other load.
    let mut seq = Measure::default();
    let mut rnd = Measure::default();
    for _ in 0..7 {
        seq.chain.take(|| {
            for off in (0..size).step_by(4096) {
                chain.read_at(&mut page, off).expect("read");
            }
        });
        seq.raw.take(|| {
            for off in (0..size).step_by(4096) {
                flat.read_exact_at(&mut page, off).expect("read");
            }
        });
        rnd.chain.take(|| {
            for &off in &offsets {
                chain.read_at(&mut page, off).expect("read");
            }
        });
        rnd.raw.take(|| {
            for &off in &offsets {
                flat.read_exact_at(&mut page, off).expect("read");
            }
        });
    }
    let seq_mib = size as f64 / (1 << 20) as f64;
    let rnd_mib = (n_random * 4096) as f64 / (1 << 20) as f64;
    println!(
        "| 4 KiB reads ({mib} MiB disk, warm cache, best of 7) | 3-deep chain | flat raw (pread) | chain / raw | chain / raw (thread CPU time) |"
    );
    println!("|---|---|---|---|---|");
    for (name, m, mib) in [
        ("sequential", &seq, seq_mib),
        ("random (200000 reads)", &rnd, rnd_mib),
    ] {
        println!(
            "| {name} | {:.0} MiB/s | {:.0} MiB/s | {:.0}% | {:.0}% |",
            mib / m.chain.wall,
            mib / m.raw.wall,
            100.0 * m.raw.wall / m.chain.wall,
            100.0 * m.raw.cpu / m.chain.cpu
        );
    }
}

/// Best wall-clock and thread-CPU seconds over the rounds.
struct Best {
    wall: f64,
    cpu: f64,
}

impl Default for Best {
    fn default() -> Self {
        Best {
            wall: f64::MAX,
            cpu: f64::MAX,
        }
    }
}

impl Best {
    fn take(&mut self, f: impl FnOnce()) {
        let (t, c) = (Instant::now(), thread_cpu());
        f();
        self.wall = self.wall.min(t.elapsed().as_secs_f64());
        self.cpu = self.cpu.min(thread_cpu() - c);
    }
}

#[derive(Default)]
struct Measure {
    chain: Best,
    raw: Best,
}

fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("make-half") if args.len() == 4 => {
            make_half(Path::new(&args[2]), args[3].parse().expect("size in MiB"))
        }
        Some("chain-read") if args.len() == 4 => {
            chain_read(Path::new(&args[2]), args[3].parse().expect("size in MiB"))
        }
        _ => {
            eprintln!("usage: vhd_bench make-half PATH SIZE_MIB | chain-read DIR SIZE_MIB");
            std::process::exit(2);
        }
    }
}
