//! A full disk (a 40 MiB tmpfs) is a typed, recoverable condition: appends, stages and commits
//! fail with `StorageError::Full`, leave no partial bytes behind, and everything works again
//! once space is freed, without reopening the store.
//!
//! Mounting needs root; elsewhere the test prints a visible SKIP (and fails under `CI`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use everlock_storage::{CommitMeta, INLINE_MAX, StorageError, Store};
use tokio::io::AsyncReadExt;

const MIB: u64 = 1024 * 1024;

/// A tmpfs mounted for the test, unmounted when dropped (even when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cannot mount a tmpfs under CI: {why}"
                );
                skip(&format!("cannot mount a tmpfs (needs root): {why}"));
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes in use on the filesystem.
    fn used(&self) -> u64 {
        let st = rustix::fs::statvfs(self.path()).unwrap();
        (st.f_blocks - st.f_bfree) * st.f_frsize
    }
}

/// Writes `SKIP <test>: <reason>` to the process's standard error handle, which libtest does
/// not capture (it captures only the `print!`/`eprint!` family), so the line shows in
/// `cargo test` output although the test passes. Same as `tests/common/mod.rs`'s `skip`.
fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {reason}");
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file open: detach lazily so the mount never leaks.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

fn zeros(n: u64) -> impl tokio::io::AsyncRead + Unpin + Send {
    tokio::io::repeat(0x5a).take(n)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Fills the filesystem with one file until writes fail with ENOSPC.
fn fill(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    let block = vec![1u8; 256 * 1024];
    let mut block = block.as_slice();
    // Smaller and smaller blocks, down to single bytes, so the disk ends up exactly full.
    while !block.is_empty() {
        match f.write_all(block) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                block = &block[..block.len() / 2];
            }
            Err(e) => panic!("filling: {e}"),
        }
    }
}

fn assert_full(err: &StorageError) {
    assert!(matches!(err, StorageError::Full(_)), "{err:?}");
    assert!(!err.to_string().contains("corrupt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_typed_cleaned_up_and_recovers_without_restart() {
    let Some(fs40) = Tmpfs::mount("40m") else {
        return;
    };
    let dir = fs40.path().join("store");
    let store = Store::open_dir(&dir).await.unwrap();
    let meta = || CommitMeta::new("alice", "test");
    store.write("before", b"1".to_vec(), meta()).await.unwrap();
    let baseline = fs40.used();

    // An append larger than the disk: typed error, partial bytes dropped, session intact.
    let up = store
        .upload_start("repo", Duration::from_secs(600))
        .await
        .unwrap();
    let err = store
        .upload_append(&up.id, None, zeros(60 * MIB))
        .await
        .unwrap_err();
    assert_full(&err);
    let file = dir.join("uploads").join(&up.id);
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        0,
        "partial bytes dropped"
    );
    assert!(fs40.used() < baseline + 2 * MIB, "space given back");
    assert_eq!(
        store.upload_session(&up.id).await.unwrap().unwrap().offset,
        0
    );
    assert!(store.upload_cancel(&up.id).await.unwrap());
    assert!(!file.exists());

    // A stage larger than the disk: typed error and no temporary file left.
    let err = store.stage(zeros(60 * MIB), None).await.unwrap_err();
    assert_full(&err);
    assert!(files_in(&dir.join("tmp")).is_empty());
    assert!(fs40.used() < baseline + 2 * MIB, "space given back");

    // The disk filled by someone else: commits and session ends fail as "full", never as
    // "corrupt", and clean up what they started.
    let up = store
        .upload_start("repo", Duration::from_secs(600))
        .await
        .unwrap();
    store.upload_append(&up.id, None, zeros(MIB)).await.unwrap();
    let filler = fs40.path().join("filler");
    fill(&filler);
    let err = store
        .write("large", vec![3u8; INLINE_MAX * 64], meta())
        .await
        .unwrap_err();
    assert_full(&err);
    assert!(files_in(&dir.join("tmp")).is_empty());
    let err = store
        .upload_append(&up.id, Some(MIB), zeros(4 * MIB))
        .await
        .unwrap_err();
    assert_full(&err);
    assert_eq!(
        fs::metadata(dir.join("uploads").join(&up.id))
            .unwrap()
            .len(),
        MIB
    );
    // Small commits go to SQLite (inline content): once its WAL cannot grow, the commit
    // fails as "full" (it used to say "store corrupt: group commit failed").
    let mut sqlite_full = false;
    for i in 0..200 {
        if let Err(e) = store
            .write(&format!("small/{i}"), vec![7u8; 4000], meta())
            .await
        {
            assert_full(&e);
            sqlite_full = true;
            break;
        }
    }
    assert!(sqlite_full, "the WAL never hit the full disk");
    // Cancelling frees the session's space first, so it succeeds even on a full disk.
    assert!(store.upload_cancel(&up.id).await.unwrap());

    // Space back: everything works again with the same handle.
    fs::remove_file(&filler).unwrap();
    store
        .write("large", vec![3u8; INLINE_MAX * 64], meta())
        .await
        .unwrap();
    let up = store
        .upload_start("repo", Duration::from_secs(600))
        .await
        .unwrap();
    store
        .upload_append(&up.id, None, zeros(5 * MIB))
        .await
        .unwrap();
    let obj = store.upload_finish(&up.id, None).await.unwrap();
    assert_eq!(obj.size, 5 * MIB);
    store
        .commit(
            vec![everlock_storage::Op::Put {
                path: "blob".into(),
                object: obj,
            }],
            vec![],
            meta(),
        )
        .await
        .unwrap();
    assert_eq!(store.read("before").await.unwrap(), b"1");
    assert!(store.verify().await.unwrap().is_ok());
    drop(store);
    // And the store reopens cleanly.
    let store = Store::open_dir(&dir).await.unwrap();
    assert!(store.verify().await.unwrap().is_ok());
}
