//! Tests of the online backup: snapshots taken while a writer commits, the GC hold, objects
//! deleted between the metadata snapshot and the copy, restore, and file modes.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use rusqlite::Connection;

use crate::objects::ObjectBackend;
use crate::{CommitMeta, INLINE_MAX, StorageError};

fn who() -> CommitMeta {
    CommitMeta::new("writer", "t")
}

/// Content of commit `i` for the big (file) path: unique per commit, above the inline limit.
fn big(i: u64) -> Vec<u8> {
    let mut v = vec![u8::try_from(i % 251).unwrap(); INLINE_MAX + 100];
    v.extend_from_slice(&i.to_le_bytes());
    v
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_during_commits_verify_and_are_commits_the_writer_made() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("live");
    let store = Store::open_dir(&src).await.unwrap();
    // Retention purges superseded content at once, so the writer's own purges and GC runs
    // delete objects while the snapshots are being copied.
    store.set_retention(Some(Duration::ZERO)).await.unwrap();
    let made: Arc<Mutex<HashMap<crate::CommitId, u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, made, stop) = (store.clone(), made.clone(), stop.clone());
        async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 20 {
                i += 1;
                let ops = vec![
                    crate::Op::PutBytes {
                        path: "counter".into(),
                        bytes: i.to_string().into_bytes(),
                    },
                    crate::Op::PutBytes {
                        path: format!("big/{}", i % 3),
                        bytes: big(i),
                    },
                ];
                let c = store.commit(ops, vec![], who()).await.unwrap();
                made.lock().unwrap().insert(c.id, i);
                if i.is_multiple_of(5) {
                    let gc = crate::GcOptions {
                        grace: Duration::ZERO,
                        dry_run: false,
                    };
                    if let Some(purge) = store.gc(gc).await.unwrap().purge_commit {
                        made.lock().unwrap().insert(purge.id, 0);
                    }
                }
            }
        }
    });
    while made.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut copies = Vec::new();
    for n in 0..5 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let (src, dest) = (src.clone(), dir.path().join(format!("copy{n}")));
        let copy = tokio::task::spawn_blocking(move || {
            backup_store(&src, &dest, &BackupOptions::default()).map(|c| (dest, c))
        })
        .await
        .unwrap()
        .unwrap();
        copies.push(copy);
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let made = made.lock().unwrap().clone();
    let mut heads = std::collections::BTreeSet::new();
    for (dest, copy) in copies {
        assert!(copy.verify.is_ok(), "{:?}", copy.verify);
        let head = copy
            .head
            .expect("the writer had committed before the first copy");
        let Some(&i) = made.get(&head.id) else {
            panic!(
                "HEAD {} of {} is not a commit the writer made",
                head.id,
                dest.display()
            );
        };
        heads.insert(head.seq);
        // The copy is a store in its own right, and its content is that commit's.
        let copied = Store::open_dir(&dest).await.unwrap();
        assert!(copied.verify().await.unwrap().is_ok());
        let counter: u64 = String::from_utf8(copied.read("counter").await.unwrap())
            .unwrap()
            .parse()
            .unwrap();
        if i > 0 {
            assert_eq!(counter, i, "{}", dest.display());
        }
        assert_eq!(
            copied.read(&format!("big/{}", counter % 3)).await.unwrap(),
            big(counter)
        );
    }
    assert!(
        heads.len() > 1,
        "the writer moved between snapshots: {heads:?}"
    );
}

#[tokio::test]
async fn copies_are_private_linked_or_copied_and_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("live");
    let store = Store::open_dir(&src).await.unwrap();
    store
        .write("small", b"inline".to_vec(), who())
        .await
        .unwrap();
    store.write("large", big(1), who()).await.unwrap();
    let linked = dir.path().join("linked");
    let copy = backup_store(&src, &linked, &BackupOptions::default()).unwrap();
    assert_eq!((copy.objects, copy.linked, copy.attempts), (1, 1, 1));
    assert_eq!(copy.bytes, big(1).len() as u64);
    let copied = dir.path().join("copied");
    let opts = BackupOptions {
        link: false,
        ..BackupOptions::default()
    };
    let copy = backup_store(&src, &copied, &opts).unwrap();
    assert_eq!((copy.objects, copy.linked), (1, 0));
    let id = store.stat("large").await.unwrap().unwrap().object;
    let hex = id.to_hex();
    for root in [&linked, &copied] {
        assert_eq!(mode(root), 0o700);
        assert_eq!(mode(&root.join("objects")), 0o700);
        assert_eq!(mode(&root.join("objects").join(&hex[..2])), 0o700);
        assert_eq!(
            mode(&root.join("objects").join(&hex[..2]).join(&hex)),
            0o400
        );
        let mut names: Vec<_> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["FORMAT", "LOCK", "meta.sqlite", "objects", "tmp", "uploads"],
            "a complete store, nothing else"
        );
        for file in ["FORMAT", "meta.sqlite", GC_HOLD_FILE, "LOCK"] {
            let path = if file == GC_HOLD_FILE {
                src.join(file)
            } else {
                root.join(file)
            };
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        assert!(
            !root
                .join("objects")
                .join(&hex[..2])
                .join(format!("{hex}.part"))
                .exists()
        );
    }
    let nlink = |p: &Path| {
        fs::metadata(p.join("objects").join(&hex[..2]).join(&hex))
            .unwrap()
            .nlink()
    };
    assert_eq!((nlink(&linked), nlink(&copied)), (2, 1));
    let err = backup_store(&src, &copied, &opts).unwrap_err();
    assert!(matches!(err, BackupError::TargetExists(_)), "{err}");
    let err = backup_store(dir.path(), &dir.path().join("x"), &opts).unwrap_err();
    assert!(matches!(err, BackupError::NotAStore(_)), "{err}");

    // A backup is itself a data directory the read-only tools can inspect (its metadata is
    // one rollback-journal file, no WAL).
    let ro = crate::StoreManager::new(dir.path())
        .open_read_only("linked")
        .unwrap();
    assert!(ro.verify().await.unwrap().is_ok());
    assert_eq!(ro.read("large").await.unwrap(), big(1));
    drop(ro);
    assert!(!linked.join("meta.sqlite-wal").exists());

    // A restore copies everything (nothing shared with the backup), also from a store that
    // no process has open.
    drop(store);
    // The last read-write connection to close removes `-wal` and `-shm`, as a stopped server
    // leaves its stores; a read-only backup still opens them.
    let conn = Connection::open(src.join("meta.sqlite")).unwrap();
    let _: i64 = conn
        .query_row("SELECT count(*) FROM commits", [], |r| r.get(0))
        .unwrap();
    conn.close().unwrap();
    assert!(!src.join("meta.sqlite-shm").exists());
    let offline = backup_store(&src, &dir.path().join("offline"), &opts).unwrap();
    assert!(offline.verify.is_ok() && offline.objects == 1);
    let restored = dir.path().join("restored");
    let copy = restore_store(&linked, &restored).unwrap();
    assert_eq!((copy.objects, copy.linked), (1, 0));
    assert_eq!(nlink(&restored), 1);
    assert!(
        !linked.join(GC_HOLD_FILE).exists(),
        "a restore takes no GC hold in the backup"
    );
    let s = Store::open_dir(&restored).await.unwrap();
    assert_eq!(s.read("small").await.unwrap(), b"inline");
    assert_eq!(s.read("large").await.unwrap(), big(1));

    // A backup that went through object storage comes back without its empty directories
    // and with the download's modes; the restore still yields a complete, private store.
    for name in ["LOCK", "tmp", "uploads"] {
        let path = copied.join(name);
        let _ = fs::remove_file(&path).or_else(|_| fs::remove_dir(&path));
        assert!(!path.exists());
    }
    let object = copied.join("objects").join(&hex[..2]).join(&hex);
    for path in [copied.join("meta.sqlite"), copied.join("FORMAT"), object] {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let again = dir.path().join("again");
    restore_store(&copied, &again).unwrap();
    assert_eq!(mode(&again.join("meta.sqlite")), 0o600);
    assert_eq!(
        mode(&again.join("objects").join(&hex[..2]).join(&hex)),
        0o400
    );
    assert!(again.join("tmp").is_dir() && again.join("uploads").is_dir());
}

#[tokio::test]
async fn gc_defers_deletions_while_a_backup_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let hold = BackupHold::acquire(dir.path(), Duration::ZERO).unwrap();
    let second = BackupHold::acquire(dir.path(), Duration::ZERO).unwrap();
    assert!(gc_may_delete(dir.path()).unwrap().is_none());
    drop((hold, second));
    let gc = gc_may_delete(dir.path())
        .unwrap()
        .expect("no backup any more");
    // A GC that is deleting makes a backup wait, and fail clearly when it takes too long.
    let err = BackupHold::acquire(dir.path(), Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, BackupError::GcBusy { .. }), "{err}");
    assert!(err.to_string().contains("object GC"), "{err}");
    drop(gc);
    BackupHold::acquire(dir.path(), Duration::ZERO).unwrap();
}

/// What a GC that ignores `GC-HOLD` can do between the metadata snapshot and the copy: a
/// retention purge unreferences an object and the GC deletes its row and file.
fn purge_and_collect(store: &Store, rt: &tokio::runtime::Handle, id: &ObjectId) {
    rt.block_on(store.purge(Duration::ZERO, CommitMeta::new("system", "purge")))
        .unwrap()
        .unwrap();
    let outcome = store
        .inner
        .meta
        .delete_object_if_unreferenced(id, i64::MAX, false)
        .unwrap();
    assert!(outcome.is_some(), "the purge unreferenced the object");
    assert!(store.inner.objects.remove(id).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_collected_after_the_snapshot_restarts_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("live");
    let store = Store::open_dir(&src).await.unwrap();
    let old = store.write("f", big(1), who()).await.unwrap();
    store.write("f", big(2), who()).await.unwrap();
    let victim = store.history("f").await.unwrap()[0]
        .content
        .clone()
        .unwrap()
        .object;
    let rt = tokio::runtime::Handle::current();
    let dest = dir.path().join("copy");
    let copy = tokio::task::spawn_blocking({
        let (store, src, dest) = (store.clone(), src.clone(), dest.clone());
        move || {
            copy_store(
                &src,
                &dest,
                &BackupOptions::default(),
                Direction::Backup,
                &mut |attempt| {
                    if attempt == 1 {
                        purge_and_collect(&store, &rt, &victim);
                    }
                },
            )
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(copy.attempts, 2);
    assert!(copy.verify.is_ok());
    let head = copy.head.unwrap();
    assert_eq!(
        head.principal, "system",
        "the second snapshot has the purge"
    );
    let copied = Store::open_dir(&dest).await.unwrap();
    assert!(matches!(
        copied.read_at("f", old.id).await,
        Err(StorageError::Purged { .. })
    ));
    assert_eq!(copied.read("f").await.unwrap(), big(2));

    // An object that is gone for good (its row stays) fails the backup clearly.
    let dest = dir.path().join("copy2");
    let current = store.stat("f").await.unwrap().unwrap().object;
    let err = tokio::task::spawn_blocking({
        let (store, src, dest) = (store.clone(), src.clone(), dest.clone());
        move || {
            copy_store(
                &src,
                &dest,
                &BackupOptions::default(),
                Direction::Backup,
                &mut |_| {
                    let _ = store.inner.objects.remove(&current);
                },
            )
        }
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::Vanished {
                attempts: MAX_ATTEMPTS,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&current.to_hex()), "{err}");
}

#[tokio::test]
async fn a_store_gc_during_a_backup_hold_deletes_nothing_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
    store.write("f", big(1), who()).await.unwrap();
    store.write("f", big(2), who()).await.unwrap();
    store.set_retention(Some(Duration::ZERO)).await.unwrap();
    let no_grace = crate::GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    };
    let hold = BackupHold::acquire(dir.path(), Duration::ZERO).unwrap();
    let report = store.gc(no_grace.clone()).await.unwrap();
    assert_eq!(
        report.purged_versions, 1,
        "purging is a commit, safe during a backup"
    );
    assert_eq!(report.objects_removed, 0, "deletions wait for the backup");
    assert_eq!(store.inner.objects.list().unwrap().len(), 2);
    drop(hold);
    assert_eq!(store.gc(no_grace).await.unwrap().objects_removed, 1);
    assert_eq!(store.inner.objects.list().unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_with_objects_in_s3_is_refused_not_half_copied() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("live");
    drop(Store::open_dir(&src).await.unwrap());
    // What a store opened on S3 objects carries (see `ObjectsRoot::open_store`).
    fs::write(src.join("OBJECTS-S3"), "").unwrap();
    let dest = dir.path().join("copy");
    let err = backup_store(&src, &dest, &BackupOptions::default()).unwrap_err();
    assert!(matches!(err, BackupError::RemoteObjects(_)), "{err}");
    assert!(err.to_string().contains("not supported yet"), "{err}");
    assert!(!dest.exists());
}
