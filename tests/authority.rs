//! Authority comes from authentication, never from a backend's say-so: the invariants that
//! keep `Principal` and `SystemAuthority` unforgeable hold across the whole workspace.
//!
//! Outside `everlock-auth`, a user principal comes only from authentication and the system
//! principal only from the `SystemAuthority` that `Auth::open_with_authority` mints for the
//! binary. The constructors for tests sit behind the `test-util` features of `everlock-auth`
//! and `everlock-host`; this test fails if any crate enables them outside its
//! dev-dependencies, or if anything but the binary's composition root mints an authority.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn workspace_files(ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(ROOT)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(ext) {
                out.push(path);
            }
        }
    }
    out
}

/// Whether a dependency entry enables `test-util`.
fn enables_test_util(dep: &toml::Value) -> bool {
    dep.get("features")
        .and_then(|f| f.as_array())
        .is_some_and(|f| f.iter().any(|v| v.as_str() == Some("test-util")))
}

#[test]
fn test_constructors_are_enabled_only_by_dev_dependencies() {
    let manifests = workspace_files("Cargo.toml");
    assert!(manifests.len() >= 8, "{manifests:?}");
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        for section in ["dependencies", "build-dependencies"] {
            let Some(deps) = doc.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for (name, dep) in deps {
                assert!(
                    !(name.starts_with("everlock-") && enables_test_util(dep)),
                    "{}: [{section}] {name} enables test-util; only dev-dependencies may",
                    manifest.display()
                );
            }
        }
        // A feature of the crate itself must not switch test-util on for normal builds
        // either, except the host's own `test-util`, which only dev-dependencies enable.
        if let Some(features) = doc.get("features").and_then(|f| f.as_table()) {
            for (feature, enables) in features {
                let forwards = enables
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v.as_str().is_some_and(|s| s.ends_with("/test-util")));
                assert!(
                    !forwards || feature == "test-util",
                    "{}: feature `{feature}` forwards test-util",
                    manifest.display()
                );
            }
        }
    }
}

#[test]
fn only_the_composition_root_mints_the_system_authority() {
    let minted_in: Vec<String> = workspace_files(".rs")
        .into_iter()
        .filter(|p| !p.starts_with(Path::new(ROOT).join("auth")))
        .filter(|p| !p.ends_with("tests/authority.rs"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("open_with_authority")
        })
        .map(|p| p.strip_prefix(ROOT).unwrap().display().to_string())
        .collect();
    // `src/users_cmd.rs` is the offline password recovery (`everlock users passwd`): it runs
    // instead of the server, holding the users store's lock, and acts as `system` through
    // `Auth::recover_password`, which nothing but the authority can call.
    let mut minted_in = minted_in;
    minted_in.sort();
    assert_eq!(minted_in, ["src/serve.rs", "src/users_cmd.rs"]);
}

/// Whether `path` holds test code only: a `tests` directory, `tests.rs` or `*_tests.rs`.
fn is_test_source(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || path
            .strip_prefix(ROOT)
            .unwrap()
            .components()
            .any(|c| c.as_os_str() == "tests")
}

/// The workspace's Rust files (relative paths) whose text contains any of `needles`.
fn files_mentioning(needles: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = workspace_files(".rs")
        .into_iter()
        .filter(|p| !p.ends_with("tests/authority.rs"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            needles.iter().any(|n| text.contains(n))
        })
        .map(|p| p.strip_prefix(ROOT).unwrap().display().to_string())
        .collect();
    found.sort();
    found
}

#[test]
fn only_the_host_constructs_the_administration_handle() {
    // The console receives an `Arc<dyn HostAdmin>`; the only implementation that reaches the
    // host is the crate-private `runtime::Administration` (the compile-fail doctests on it
    // show a backend cannot name or build one, nor pass a `Host` off as one). This keeps
    // the host itself honest: one place builds it, and nothing else implements the trait
    // outside tests.
    let built_in: Vec<String> = files_mentioning(&["Administration {"])
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(p)).unwrap();
            text.lines().any(|l| {
                l.contains("Administration {")
                    && !l.contains("struct Administration")
                    && !l.contains("impl ")
                    && !l.trim_start().starts_with("//")
            })
        })
        .collect();
    assert_eq!(built_in, ["host/src/runtime.rs"]);
    let implemented_in: Vec<String> = files_mentioning(&["impl HostAdmin for", "HostAdmin for "])
        .into_iter()
        .filter(|p| !is_test_source(&Path::new(ROOT).join(p)))
        .collect();
    assert_eq!(implemented_in, ["host/src/admin/grant.rs"]);
}

#[test]
fn only_the_composition_root_grants_administration() {
    // Tests that start a host with the console grant it as the binary does; no other
    // production code may, so no backend can give itself (or another kind) the host.
    let granted_in: Vec<String> = files_mentioning(&["grant_administration("])
        .into_iter()
        .filter(|p| !is_test_source(&Path::new(ROOT).join(p)))
        .collect();
    assert_eq!(granted_in, ["host/src/runtime.rs", "src/serve.rs"]);
}

#[test]
fn factories_cannot_declare_administration() {
    // The registration used to carry `admin: bool`, a flag a factory set for itself; it must
    // not come back under any spelling.
    let backend = std::fs::read_to_string(Path::new(ROOT).join("host/src/api/factory.rs")).unwrap();
    let start = backend.find("pub struct BackendFactory {").unwrap();
    let end = start + backend[start..].find("\n}\n").unwrap();
    let declared: Vec<&str> = backend[start..end]
        .lines()
        .filter(|l| l.trim_start().starts_with("pub ") && l.contains("admin"))
        .collect();
    assert!(declared.is_empty(), "{declared:?}");
}
