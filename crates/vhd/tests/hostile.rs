//! Corrupt and hostile images: each gives a clear error, never a panic,
//! hang or huge allocation.

use std::path::{Path, PathBuf};

use weft_vhd::{
    Chain, ChainOptions, CreateOptions, DiffOptions, OpenOptions, VhdImage, check, create,
    create_differencing,
};

fn dynamic_with_data(dir: &Path) -> PathBuf {
    let p = dir.join("d.vhd");
    drop(create(&p, &CreateOptions::dynamic(4 << 20)).unwrap());
    let mut c = Chain::open(
        &p,
        &ChainOptions {
            writable: true,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    c.write_at(&[1u8; 4096], 0).unwrap();
    c.write_at(&[2u8; 4096], 3 << 20).unwrap();
    p
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    let mut data = std::fs::read(path).unwrap();
    data[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, data).unwrap();
}

/// Rewrite the header at 512 with a fresh checksum after `edit`.
fn edit_header(path: &Path, edit: impl FnOnce(&mut [u8])) {
    let mut data = std::fs::read(path).unwrap();
    let h = &mut data[512..1536];
    edit(h);
    h[36..40].fill(0);
    let sum = !h.iter().fold(0u32, |a, b| a.wrapping_add(u32::from(*b)));
    h[36..40].copy_from_slice(&sum.to_be_bytes());
    std::fs::write(path, data).unwrap();
}

/// Rewrite both footers after `edit`.
fn edit_footer(path: &Path, edit: impl Fn(&mut [u8])) {
    let mut data = std::fs::read(path).unwrap();
    let n = data.len();
    for at in [0, n - 512] {
        let f = &mut data[at..at + 512];
        edit(f);
        f[64..68].fill(0);
        let sum = !f.iter().fold(0u32, |a, b| a.wrapping_add(u32::from(*b)));
        f[64..68].copy_from_slice(&sum.to_be_bytes());
    }
    std::fs::write(path, data).unwrap();
}

fn open_err(path: &Path) -> String {
    let e = VhdImage::open(path, &OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        check(path, &Default::default()).unwrap().has_errors(),
        "check missed: {e}"
    );
    e
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    let full = std::fs::read(&p).unwrap();
    for cut in [0usize, 100, 511, 512, 1500, full.len() - 600] {
        std::fs::write(&p, &full[..cut]).unwrap();
        let e = VhdImage::open(&p, &OpenOptions::default());
        assert!(e.is_err(), "truncated to {cut} opened");
    }
}

#[test]
fn bad_footer_checksum_is_reported_and_recovered_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    let len = std::fs::metadata(&p).unwrap().len();
    patch(&p, len - 512 + 40, &[0xee]);
    // The copy at offset 0 is intact: reads still work, check says error.
    let img = VhdImage::open(&p, &OpenOptions::default()).unwrap();
    assert!(img.footer_recovered());
    let r = check(&p, &Default::default()).unwrap();
    assert!(
        r.findings
            .iter()
            .any(|f| f.code == "footer" && f.message.contains("checksum")),
        "{r:?}"
    );
    // Both broken: a clear error.
    patch(&p, 40, &[0xee]);
    assert!(open_err(&p).contains("checksum"));
}

#[test]
fn bad_header_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    patch(&p, 512 + 30, &[0x55]);
    assert!(open_err(&p).contains("dynamic header: checksum"));
}

#[test]
fn bat_entry_past_eof() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    patch(&p, 1536 + 4, &0x00ff_0000u32.to_be_bytes());
    assert!(open_err(&p).contains("past the end"));
}

#[test]
fn overlapping_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    let data = std::fs::read(&p).unwrap();
    let first = data[1536..1540].to_vec();
    patch(&p, 1536 + 4, &first);
    assert!(open_err(&p).contains("overlaps"));
}

#[test]
fn absurd_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    edit_footer(&p, |f| {
        f[48..56].copy_from_slice(&(1u64 << 63).to_be_bytes())
    });
    assert!(open_err(&p).contains("2040 GiB"));

    let p = dynamic_with_data(&dir.path().join("").join({
        std::fs::create_dir(dir.path().join("b")).unwrap();
        "b"
    }));
    edit_header(&p, |h| h[28..32].copy_from_slice(&u32::MAX.to_be_bytes()));
    assert!(open_err(&p).contains("past the end"));

    let p = dir.path().join("f.vhd");
    drop(create(&p, &CreateOptions::fixed(1 << 20)).unwrap());
    edit_footer(&p, |f| f[48..56].copy_from_slice(&u64::MAX.to_be_bytes()));
    assert!(open_err(&p).contains("truncated"));
}

#[test]
fn parent_loops_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.vhd");
    let a = dir.path().join("a.vhd");
    drop(create(&base, &CreateOptions::dynamic(1 << 20)).unwrap());
    let a_img = create_differencing(&a, &base, &DiffOptions::default()).unwrap();
    let a_id = a_img.footer().unique_id;
    drop(a_img);
    // Make a its own parent: same id, name pointing at itself.
    edit_header(&a, |h| h[40..56].copy_from_slice(a_id.as_bytes()));
    let opts = ChainOptions {
        search_dirs: vec![dir.path().to_path_buf()],
        ..ChainOptions::default()
    };
    let err = Chain::open(&a, &opts).unwrap_err().to_string();
    assert!(err.contains("loop"), "{err}");
}

#[test]
fn out_of_range_access_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    let c = Chain::open(&p, &ChainOptions::default()).unwrap();
    let mut buf = [0u8; 16];
    assert!(c.read_at(&mut buf, c.size() - 8).is_err());
    assert!(c.read_at(&mut buf, u64::MAX - 4).is_err());
}

#[test]
fn an_interrupted_allocation_is_repaired_on_writable_open() {
    let dir = tempfile::tempdir().unwrap();
    let p = dynamic_with_data(dir.path());
    let before = std::fs::read(&p).unwrap();
    // A crash after the file was extended and data written for a new block,
    // before its bitmap/BAT/footer: garbage past the old footer, no footer at
    // the end.
    let mut torn = before.clone();
    torn.extend(std::iter::repeat_n(0xabu8, 4096));
    std::fs::write(&p, &torn).unwrap();
    let ro = Chain::open(&p, &ChainOptions::default()).unwrap();
    let mut buf = vec![0u8; 4096];
    ro.read_at(&mut buf, 0).unwrap();
    assert_eq!(buf, vec![1u8; 4096]);
    drop(ro);
    assert!(check(&p, &Default::default()).unwrap().has_errors());
    let rw = Chain::open(
        &p,
        &ChainOptions {
            writable: true,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    drop(rw);
    assert_eq!(
        std::fs::read(&p).unwrap(),
        before,
        "repair restores the image"
    );
    assert!(!check(&p, &Default::default()).unwrap().has_errors());
}

#[test]
fn chains_can_be_shared_between_reader_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Chain>();
}

#[test]
fn a_511_byte_footer_of_old_virtual_pc_fixed_disks_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.vhd");
    drop(create(&p, &CreateOptions::fixed(1 << 20)).unwrap());
    let mut c = Chain::open(
        &p,
        &ChainOptions {
            writable: true,
            ..ChainOptions::default()
        },
    )
    .unwrap();
    let end = c.size() - 512;
    c.write_at(&[4u8; 512], end).unwrap();
    drop(c);
    let mut bytes = std::fs::read(&p).unwrap();
    // The checksum byte sum is unchanged when the last (reserved, zero) byte goes.
    assert_eq!(bytes.pop(), Some(0));
    std::fs::write(&p, &bytes).unwrap();
    let c = Chain::open(&p, &ChainOptions::default()).unwrap();
    let mut buf = [0u8; 512];
    c.read_at(&mut buf, c.size() - 512).unwrap();
    assert_eq!(buf, [4u8; 512]);
}

#[test]
fn a_locator_pointing_past_the_file_is_ignored_not_a_crash() {
    // Found by fuzzing (open_and_read): an offset near u64::MAX overflowed.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.vhd");
    let child = dir.path().join("child.vhd");
    drop(create(&base, &CreateOptions::dynamic(1 << 20)).unwrap());
    drop(create_differencing(&child, &base, &DiffOptions::default()).unwrap());
    edit_header(&child, |h| {
        h[576 + 16..576 + 24].copy_from_slice(&(u64::MAX - 10).to_be_bytes())
    });
    let chain = Chain::open(&child, &ChainOptions::default()).unwrap();
    assert_eq!(
        chain.images().len(),
        2,
        "parent still found through the other locator"
    );
    let r = check(&child, &Default::default()).unwrap();
    assert!(
        r.findings.iter().any(|f| f.code == "locator-past-eof"),
        "{r:?}"
    );
}
