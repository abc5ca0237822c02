//! Open, verify and unpack arbitrary bytes as a package: never a panic, and
//! nothing written outside the temporary target's directory.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use weft_package::{Limits, Package, UnpackOptions};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_total_size: 16 << 20,
        max_entry_size: 8 << 20,
        max_entries: 10_000,
        ..Limits::default()
    };
    let Ok(mut package) = Package::from_reader(Cursor::new(data), limits) else {
        return;
    };
    let report = package.verify();
    let roles: Vec<String> = package
        .manifest()
        .roles
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    for role in roles {
        let target = dir.path().join("out").join(&role);
        let result = package.unpack_role(&role, &target, UnpackOptions::default());
        if result.is_ok() {
            // Unpacking checks the whole structure but only this role's
            // contents: verify must have found nothing about this role.
            let prefix = format!("roles/{role}/");
            let about_role: Vec<String> = report
                .findings
                .iter()
                .map(ToString::to_string)
                .filter(|f| f.contains(&prefix) || !f.contains("entry "))
                .collect();
            assert!(
                about_role.is_empty(),
                "unpack of {role} succeeded where verify found {about_role:?}"
            );
        }
        // Only the target itself may exist in out/: no temporary leftovers.
        for entry in std::fs::read_dir(dir.path().join("out"))
            .into_iter()
            .flatten()
            .flatten()
        {
            assert!(
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| package.manifest().role(n).is_some()),
                "unexpected leftover {:?}",
                entry.path()
            );
        }
    }
});
