//! File modes: whatever the umask, everything a store writes is private to the server's user
//! (directories 0700, files 0600, published objects 0400), and a store created by an older,
//! world-readable build is tightened when it is opened.
//!
//! The umask is per process, so this binary holds a single test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use everlock_storage::{CommitMeta, INLINE_MAX, StoreManager};
use rustix::fs::Mode;
use tokio::io::AsyncWriteExt;

/// Every path below `dir` (inclusive) with its mode bits.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    let meta = fs::symlink_metadata(dir).unwrap();
    out.push((
        dir.to_owned(),
        meta.is_dir(),
        meta.permissions().mode() & 0o777,
    ));
    if meta.is_dir() {
        for entry in fs::read_dir(dir).unwrap() {
            walk(&entry.unwrap().path(), out);
        }
    }
}

/// Asserts the private modes on everything under `dir`; returns how many files were seen.
fn assert_private(dir: &Path) -> usize {
    let mut all = Vec::new();
    walk(dir, &mut all);
    let mut files = 0;
    for (path, is_dir, mode) in &all {
        if *is_dir {
            assert_eq!(*mode, 0o700, "{} is {mode:o}", path.display());
        } else {
            files += 1;
            let under_objects = path.components().any(|c| c.as_os_str() == "objects");
            let want = if under_objects { 0o400 } else { 0o600 };
            assert_eq!(*mode, want, "{} is {mode:o}", path.display());
        }
    }
    files
}

fn names(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    walk(dir, &mut all);
    all.iter()
        .map(|(p, _, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_in_a_store_is_private_whatever_the_umask() {
    let previous = rustix::process::umask(Mode::from_raw_mode(0o022));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let stores = StoreManager::new(&data);
    let store = stores.open("private").await.unwrap();
    let meta = || CommitMeta::new("alice", "secret");
    store
        .write("small", b"bcrypt hash".to_vec(), meta())
        .await
        .unwrap();
    // Large enough to be an object file rather than inline in SQLite.
    store
        .write("large", vec![9u8; INLINE_MAX * 4], meta())
        .await
        .unwrap();
    let up = store
        .upload_start("repo", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .upload_append(&up.id, None, &b"partial upload"[..])
        .await
        .unwrap();

    // A stage in flight: its temporary file in tmp/ is private too.
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    let staging = {
        let store = store.clone();
        tokio::spawn(async move { store.stage(rx, None).await })
    };
    let feeder = tokio::spawn(async move {
        tx.write_all(&vec![1u8; 3 * 1024 * 1024]).await.unwrap();
        tx
    });
    let tmp_dir = data.join("private/tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fs::read_dir(&tmp_dir).unwrap().count() == 0 {
        assert!(std::time::Instant::now() < deadline, "no temporary file");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let files = assert_private(&data);
    let seen = names(&data);
    for name in [
        "LOCK",
        "FORMAT",
        "meta.sqlite",
        "meta.sqlite-wal",
        "meta.sqlite-shm",
        up.id.as_str(),
    ] {
        assert!(seen.iter().any(|n| n == name), "{name} missing: {seen:?}");
    }
    assert!(files >= 8, "{seen:?}");
    drop(feeder.await.unwrap());
    staging.await.unwrap().unwrap();
    assert_private(&data);
    drop(store);

    // A store written by an older build, world-readable, is tightened on open.
    let store_dir = data.join("private");
    for path in [&data, &store_dir, &store_dir.join("objects"), &tmp_dir] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for name in ["LOCK", "FORMAT", "meta.sqlite"] {
        fs::set_permissions(store_dir.join(name), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = stores.open("private").await.unwrap();
    assert_eq!(store.read("small").await.unwrap(), b"bcrypt hash");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&store_dir), 0o700);
    assert_eq!(mode(&store_dir.join("objects")), 0o700);
    assert_eq!(mode(&store_dir.join("meta.sqlite")), 0o600);
    assert_eq!(mode(&store_dir.join("FORMAT")), 0o600);
    assert_eq!(mode(&store_dir.join("LOCK")), 0o600);
    rustix::process::umask(previous);
}
