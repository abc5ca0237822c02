//! Chains against a plain byte-array model: random writes to a child over a
//! random parent, then merge and flatten.

use std::path::Path;

use proptest::prelude::*;
use weft_vhd::{
    Chain, ChainOptions, CreateOptions, DiffOptions, DiskType, MergeOptions, OpenOptions, Source,
    VhdImage, create, create_differencing, flatten, merge,
};

const SIZE: u64 = 3 << 20; // 3 MiB, with 64 KiB blocks: 48 blocks
const BLOCK: u32 = 64 << 10;

fn writable(path: &Path) -> Chain {
    Chain::open(
        path,
        &ChainOptions {
            writable: true,
            ..ChainOptions::default()
        },
    )
    .unwrap()
}

fn read_all(path: &Path) -> Vec<u8> {
    let chain = Chain::open(path, &ChainOptions::default()).unwrap();
    let mut buf = vec![0u8; chain.size() as usize];
    chain.read_at(&mut buf, 0).unwrap();
    buf
}

#[derive(Debug, Clone)]
struct Write {
    offset: u64,
    len: usize,
    byte: u8,
}

fn writes() -> impl Strategy<Value = Vec<Write>> {
    prop::collection::vec(
        (0..SIZE - 1, 1usize..200_000, any::<u8>()).prop_map(|(offset, len, byte)| Write {
            offset,
            len: len.min((SIZE - offset) as usize),
            byte,
        }),
        0..12,
    )
}

fn apply(chain: &mut Chain, model: &mut [u8], w: &[Write]) {
    for w in w {
        // A pattern, not a constant, so misplaced sectors show.
        let data: Vec<u8> = (0..w.len)
            .map(|i| w.byte ^ (i as u8).wrapping_mul(31))
            .collect();
        chain.write_at(&data, w.offset).unwrap();
        model[w.offset as usize..w.offset as usize + w.len].copy_from_slice(&data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn chain_reads_merge_and_flatten_match_the_model(
        parent_writes in writes(), child_writes in writes(), fixed_base in any::<bool>(), fixed_flat in any::<bool>(),
        reads in prop::collection::vec((0..SIZE, 1usize..300_000), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.vhd");
        let child = dir.path().join("child.vhd");
        let opts = CreateOptions {
            block_size: BLOCK,
            size_policy: weft_vhd::SizePolicy::Exact,
            ..if fixed_base { CreateOptions::fixed(SIZE) } else { CreateOptions::dynamic(SIZE) }
        };
        drop(create(&base, &opts).unwrap());
        let mut model = vec![0u8; SIZE as usize];
        apply(&mut writable(&base), &mut model, &parent_writes);
        drop(create_differencing(&child, &base, &DiffOptions::default()).unwrap());
        let mut c = writable(&child);
        apply(&mut c, &mut model, &child_writes);
        // Random reads, then the whole disk.
        for (off, len) in reads {
            let len = len.min((SIZE - off) as usize);
            let mut buf = vec![0u8; len];
            c.read_at(&mut buf, off).unwrap();
            prop_assert!(buf == model[off as usize..off as usize + len], "read at {off}+{len}");
        }
        drop(c);
        prop_assert!(read_all(&child) == model);

        let flat = dir.path().join("flat.vhd");
        let kind = if fixed_flat { DiskType::Fixed } else { DiskType::Dynamic };
        drop(flatten(&child, &flat, kind, BLOCK, &[]).unwrap());
        prop_assert!(read_all(&flat) == model, "flatten");

        let report = merge(&child, &MergeOptions::default()).unwrap();
        prop_assert!(report.child_removed);
        prop_assert!(!child.exists());
        prop_assert!(read_all(&base) == model, "merge");
    }
}

#[test]
fn extents_report_which_level_holds_data() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.vhd");
    let child = dir.path().join("child.vhd");
    let opts = CreateOptions {
        block_size: BLOCK,
        size_policy: weft_vhd::SizePolicy::Exact,
        ..CreateOptions::dynamic(SIZE)
    };
    drop(create(&base, &opts).unwrap());
    writable(&base).write_at(&[1u8; 4096], 0).unwrap();
    drop(create_differencing(&child, &base, &DiffOptions::default()).unwrap());
    writable(&child).write_at(&[2u8; 1024], 1024).unwrap();
    let chain = Chain::open(&child, &ChainOptions::default()).unwrap();
    let e = chain.extents(0, 1 << 20).unwrap();
    let got: Vec<(u64, u64, Source)> = e.iter().map(|e| (e.offset, e.len, e.source)).collect();
    assert_eq!(
        got,
        vec![
            (0, 1024, Source::Image(1)),
            (1024, 1024, Source::Image(0)),
            (2048, 2048, Source::Image(1)),
            (4096, (1 << 20) - 4096, Source::Zero),
        ]
    );
}

#[test]
fn unaligned_writes_keep_the_parent_bytes_around_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("b.vhd");
    let child = dir.path().join("c.vhd");
    drop(create(&base, &CreateOptions::dynamic(SIZE)).unwrap());
    writable(&base).write_at(&[7u8; 1536], 0).unwrap();
    drop(create_differencing(&child, &base, &DiffOptions::default()).unwrap());
    writable(&child).write_at(&[9u8; 3], 510).unwrap();
    let all = read_all(&child);
    assert_eq!(&all[508..515], &[7, 7, 9, 9, 9, 7, 7]);
    assert_eq!(all[1536], 0);
}

#[test]
fn a_parent_with_another_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.vhd");
    let child = dir.path().join("child.vhd");
    drop(create(&base, &CreateOptions::dynamic(SIZE)).unwrap());
    drop(create_differencing(&child, &base, &DiffOptions::default()).unwrap());
    std::fs::remove_file(&base).unwrap();
    drop(create(&base, &CreateOptions::dynamic(SIZE)).unwrap());
    let err = Chain::open(&child, &ChainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_moved_parent_is_found_through_the_search_path_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let base = dir.path().join("base.vhd");
    let child = dir.path().join("child.vhd");
    drop(create(&base, &CreateOptions::dynamic(SIZE)).unwrap());
    drop(create_differencing(&child, &base, &DiffOptions::default()).unwrap());
    std::fs::rename(&base, store.join("renamed.vhd")).unwrap();
    assert!(Chain::open(&child, &ChainOptions::default()).is_err());
    let chain = Chain::open(
        &child,
        &ChainOptions {
            search_dirs: vec![store.clone()],
            ..ChainOptions::default()
        },
    )
    .unwrap();
    assert_eq!(chain.images()[1].path(), store.join("renamed.vhd"));
}

#[test]
fn writes_survive_reopening_and_keep_the_footer_copy_equal() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.vhd");
    drop(create(&p, &CreateOptions::dynamic(SIZE)).unwrap());
    writable(&p).write_at(&[5u8; 8192], SIZE - 8192).unwrap();
    let img = VhdImage::open(&p, &OpenOptions::default()).unwrap();
    assert_eq!(img.allocated_blocks(), 1);
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(&bytes[..512], &bytes[bytes.len() - 512..]);
    let report = weft_vhd::check(&p, &Default::default()).unwrap();
    assert!(!report.has_errors(), "{report:?}");
}

#[test]
fn the_relative_locator_finds_a_parent_in_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("images");
    let b = dir.path().join("instances/web_0");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let base = a.join("base.vhd");
    let child = b.join("disk.vhd");
    drop(create(&base, &CreateOptions::dynamic(SIZE)).unwrap());
    drop(create_differencing(&child, &base, &DiffOptions::default()).unwrap());
    let img = VhdImage::open(&child, &OpenOptions::default()).unwrap();
    assert_eq!(
        img.locator_path(0).unwrap().as_deref(),
        Some("..\\..\\images\\base.vhd")
    );
    // Move the whole tree: only the relative locator still points right.
    let moved = dir.path().join("moved");
    std::fs::rename(dir.path().join("instances"), dir.path().join("tmp-i")).unwrap();
    std::fs::create_dir(&moved).unwrap();
    std::fs::rename(dir.path().join("tmp-i"), moved.join("instances")).unwrap();
    std::fs::rename(&a, moved.join("images")).unwrap();
    let chain = Chain::open(
        &moved.join("instances/web_0/disk.vhd"),
        &ChainOptions::default(),
    )
    .unwrap();
    assert_eq!(chain.images().len(), 2);
}
