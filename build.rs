//! Records the git commit the binary is built from, for `everlock --version`.
//!
//! `EVERLOCK_GIT_COMMIT` in the build environment wins (packagers building from a tarball set
//! it); otherwise `git rev-parse --short HEAD`; otherwise "unknown". The build never fails
//! for lack of git or of a repository.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=EVERLOCK_GIT_COMMIT");
    let commit = match std::env::var("EVERLOCK_GIT_COMMIT") {
        Ok(given) if !given.trim().is_empty() => given.trim().to_owned(),
        _ => {
            watch_git();
            git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned())
        }
    };
    println!("cargo:rustc-env=EVERLOCK_GIT_COMMIT={commit}");
}

/// Runs git in the package directory; `None` on any failure.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Reruns this script when HEAD moves: HEAD itself (a checkout) and the branch it names (a
/// commit). Only existing files are watched: Cargo treats a missing one as always changed,
/// which would rebuild the binary on every build.
fn watch_git() {
    let mut watched = Vec::new();
    if let Some(head) = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]) {
        watched.push(PathBuf::from(head));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(file) = git(&["rev-parse", "--path-format=absolute", "--git-path", &branch])
    {
        watched.push(PathBuf::from(file));
    }
    if let Some(packed) = git(&[
        "rev-parse",
        "--path-format=absolute",
        "--git-path",
        "packed-refs",
    ]) {
        watched.push(PathBuf::from(packed));
    }
    for path in watched.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
