//! The backend contract is a leaf: `host/src/api/` (the names, the factory, the `Backend`
//! trait, the SSH session trait, the HTTP auth helpers and the administration views that every
//! backend compiles against) imports nothing else from the host. This is what lets a backend
//! crate, the host's runtime and its frontends all depend on the contract without the
//! contract ever depending back on them (issue #13 item 1), and it fails the build's tests the
//! moment a `use crate::runtime::...` or similar creeps into `api/`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The host modules a source text names through `crate::<module>`, including those inside a
/// `use crate::{a, b::c}` group.
fn crate_modules(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let word: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !word.is_empty() {
                    out.push(word);
                }
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(word);
        }
    }
    out
}

/// Modules the contract may name: itself, and the crate root's hidden re-export of
/// `inventory` that `register_backend!` expands to.
const ALLOWED: [&str; 2] = ["api", "__private_inventory"];

#[test]
fn the_backend_contract_imports_nothing_else_from_the_host() {
    let api = Path::new(ROOT).join("host/src/api");
    let files = rust_files(&api);
    assert!(
        files.len() >= 5,
        "expected the contract's files under {}, found {files:?}",
        api.display()
    );
    let mut offences = Vec::new();
    for file in &files {
        // Tests of the contract may build a whole host; only the contract itself must be a
        // leaf, so test files and `#[cfg(test)]` modules (always last in a file) are skipped.
        if file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"))
        {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let source = text.split("#[cfg(test)]").next().unwrap_or_default();
        for module in crate_modules(source) {
            if !ALLOWED.contains(&module.as_str()) {
                offences.push(format!("{}: crate::{module}", file.display()));
            }
        }
        // The contract's files sit flat in api/: `super::` from `mod.rs`, or `super::super::`
        // from any other file, climbs out of the contract.
        let climbs = if file.ends_with("mod.rs") {
            source.contains("super::")
        } else {
            source.contains("super::super::")
        };
        if climbs {
            offences.push(format!("{}: climbs out with super::", file.display()));
        }
    }
    assert!(
        offences.is_empty(),
        "host/src/api must be a leaf; these name other host modules:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_module_scanner_sees_plain_and_grouped_imports() {
    let found = crate_modules("use crate::runtime::Host;\nuse crate::{config::X, api};\n");
    assert_eq!(found, ["runtime", "config", "api"]);
}
