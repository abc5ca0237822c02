//! Random trees survive build → unpack unchanged, and build twice to the
//! same bytes.

mod common;

use std::fs;

use common::*;
use proptest::prelude::*;
use weft_package::{Limits, UnpackOptions, unpack};

fn tree() -> impl Strategy<Value = Vec<(String, Vec<u8>, bool)>> {
    let name = prop::sample::select(vec!["a", "b", "A", "a-b", "x.y", "long name", "é", "_"]);
    let path = prop::collection::vec(name, 1..4).prop_map(|v| v.join("/"));
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        (any::<u8>(), 0usize..20_000).prop_map(|(b, n)| vec![b; n]),
    ];
    prop::collection::vec((path, content, any::<bool>()), 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_trees_round_trip(files in tree(), empty_dirs in prop::collection::vec("[a-c]{1,3}", 0..3)) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir(&src).unwrap();
        for (path, content, exec) in &files {
            // Skip paths that collide with an existing file or directory.
            let p = src.join(path);
            if p.exists() || p.ancestors().skip(1).any(|a| a.is_file()) {
                continue;
            }
            make_tree(&src, &[(path.as_str(), content.as_slice(), *exec)]);
        }
        for d in &empty_dirs {
            if !src.join(d).exists() {
                fs::create_dir(src.join(d)).unwrap();
            }
        }
        let pkg1 = tmp.path().join("1.cspkg");
        let pkg2 = tmp.path().join("2.cspkg");
        build(&[("Role", &src)], &pkg1);
        build(&[("Role", &src)], &pkg2);
        prop_assert_eq!(fs::read(&pkg1).unwrap(), fs::read(&pkg2).unwrap());
        let target = tmp.path().join("out");
        unpack(&pkg1, "Role", &target, Limits::default(), UnpackOptions::default()).unwrap();
        prop_assert_eq!(snapshot(&target), snapshot(&src));
    }
}
