//! A whole (corrupt) image from the fuzz input: open it, check it, read
//! ranges through the chain, write to it and read back. Errors are fine;
//! panics, hangs and huge allocations are not.
#![no_main]
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use weft_vhd::{Chain, ChainOptions};

fn scratch() -> PathBuf {
    // tmpfs when there is one: the target writes a file per input.
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("weft-vhd-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join("image.vhd")
}

/// One's-complement byte sum with the 4 checksum bytes at `at` zeroed.
fn fix_checksum(bytes: &mut [u8], at: usize) {
    bytes[at..at + 4].fill(0);
    let sum = !bytes
        .iter()
        .fold(0u32, |a, b| a.wrapping_add(u32::from(*b)));
    bytes[at..at + 4].copy_from_slice(&sum.to_be_bytes());
}

/// Make footers and header checksums right (unless the input's last byte
/// says not to), so the fuzzer gets past them into the BAT, bitmaps, chain.
fn fix_up(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    let n = d.len();
    if n < 512 || d[n - 1] & 1 == 1 {
        return d;
    }
    fix_checksum(&mut d[n - 512..], 64);
    if &d[..8] == b"conectix" {
        fix_checksum(&mut d[..512], 64);
    }
    let data_offset = u64::from_be_bytes(
        d[n - 512 + 16..n - 512 + 24]
            .try_into()
            .unwrap_or([0xff; 8]),
    );
    if let Ok(at) = usize::try_from(data_offset) {
        if at.checked_add(1024).is_some_and(|end| end <= n) {
            fix_checksum(&mut d[at..at + 1024], 36);
        }
    }
    d
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    let data = &fix_up(data)[..];
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = weft_vhd::check(&path, &Default::default());
    let opts = ChainOptions {
        writable: true,
        max_depth: 4,
        ..ChainOptions::default()
    };
    let Ok(mut chain) = Chain::open(&path, &opts) else {
        return;
    };
    let size = chain.size();
    let seed = data
        .get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
    let mut buf = vec![0u8; 70_000];
    for (off, len) in [
        (0u64, 4096u64),
        (seed % size.max(1), 70_000),
        (size.saturating_sub(1000), 1000),
    ] {
        let len = len.min(size.saturating_sub(off));
        let _ = chain.extents(off, len);
        let _ = chain.read_at(&mut buf[..len as usize], off);
    }
    let off = (seed >> 7) % size.max(1);
    let len = 5000u64.min(size - off.min(size));
    let pattern = vec![0xa5u8; len as usize];
    if chain.write_at(&pattern, off).is_ok() {
        drop(chain);
        if let Ok(again) = Chain::open(&path, &ChainOptions::default()) {
            let mut back = vec![0u8; len as usize];
            if again.read_at(&mut back, off).is_ok() {
                assert_eq!(back, pattern, "write at {off}+{len} did not read back");
            }
        }
    }
});
