//! A whole (corrupt) image from the fuzz input: open it, check it, read
//! ranges through the chain, write to it and read back. Errors are fine;
//! panics, hangs and huge allocations are not.
#![no_main]
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use weft_vhd::{Chain, ChainOptions};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-vhd-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir.join("image.vhd")
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
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
