//! Shared mode (PostgreSQL metadata): several managers on one database stand for several
//! nodes. Each test starts its own PostgreSQL (and SeaweedFS where it needs S3) through the
//! harnesses, which print SKIP when they are missing locally and fail under `CI`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[allow(clippy::duplicate_mod)]
#[path = "../../tests/support/postgres.rs"]
mod pg_harness;
#[allow(clippy::duplicate_mod)]
#[path = "../tests/support/seaweedfs.rs"]
mod seaweedfs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{
    CommitMeta, CopyReport, GcOptions, MetaConfig, ObjectsConfig, Op, PostgresConfig, S3Config,
    StorageError, StoreManager,
};
use pg_harness::Postgres;

fn who() -> CommitMeta {
    CommitMeta::new("t", "shared")
}

/// A server of its own, started off the async workers (it blocks for about a second).
async fn postgres() -> Option<Postgres> {
    if !pg_harness::available() {
        return None;
    }
    tokio::task::spawn_blocking(Postgres::start).await.unwrap()
}

/// A node: a manager with its own data directory on the shared database.
async fn node(url: &str, dir: &Path, objects: ObjectsConfig) -> StoreManager {
    let (url, dir): (String, PathBuf) = (url.to_owned(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || {
        StoreManager::new_with_meta(dir, objects, MetaConfig::Postgres(PostgresConfig::new(url)))
    })
    .await
    .unwrap()
    .unwrap()
}

fn s3(server: &seaweedfs::SeaweedFs, prefix: &str) -> ObjectsConfig {
    ObjectsConfig::S3(S3Config {
        endpoint: server.endpoint.clone(),
        bucket: seaweedfs::BUCKET.into(),
        prefix: prefix.into(),
        region: "us-east-1".into(),
        access_key_id: seaweedfs::ACCESS_KEY.into(),
        secret_access_key: seaweedfs::SECRET_KEY.into(),
        allow_http: true,
    })
}

/// Waits until `rx` reaches `seq`; fails after `within`.
async fn reaches(rx: &mut tokio::sync::watch::Receiver<u64>, seq: u64, within: Duration) {
    tokio::time::timeout(within, rx.wait_for(|v| *v >= seq))
        .await
        .unwrap_or_else(|_| panic!("HEAD did not reach {seq} within {within:?}"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_are_registered_in_the_database_and_shared_by_nodes() {
    let Some(server) = postgres().await else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let a = node(&server.url(), &dirs.path().join("a"), ObjectsConfig::File).await;
    let b = node(&server.url(), &dirs.path().join("b"), ObjectsConfig::File).await;
    assert!(a.is_shared() && !StoreManager::new(dirs.path()).is_shared());
    assert!(b.list().unwrap().is_empty());
    let sa = a.open("alpha").await.unwrap();
    assert!(sa.is_shared());
    let c1 = sa.write("x", b"1".to_vec(), who()).await.unwrap();
    assert_eq!(b.list().unwrap(), vec!["alpha".to_owned()]);
    let err = b.open_existing("nothing").await.unwrap_err();
    assert!(matches!(err, StorageError::NoSuchStore(_)), "{err}");
    // No LOCK: the second node opens the same store and writes to it.
    let sb = b.open_existing("alpha").await.unwrap();
    assert!(!dirs.path().join("a/alpha/LOCK").exists());
    assert_eq!(sb.read("x").await.unwrap(), b"1");
    assert_eq!(sb.head_seq(), c1.seq);
    let c2 = sb.write("y", b"2".to_vec(), who()).await.unwrap();
    assert_eq!(c2.parent, Some(c1.id), "one chain across nodes");
    // A's HEAD cache follows B's commit within a second.
    let mut rx = sa.changes();
    reaches(&mut rx, c2.seq, Duration::from_secs(1)).await;
    assert_eq!(sa.head_seq(), c2.seq);
    // A read-only handle reads and follows, but never writes.
    let ro = tokio::task::spawn_blocking({
        let b = b.clone();
        move || b.open_read_only("alpha")
    })
    .await
    .unwrap()
    .unwrap();
    assert!(ro.is_read_only());
    assert_eq!(ro.read("y").await.unwrap(), b"2");
    let err = ro.write("z", b"3".to_vec(), who()).await.unwrap_err();
    assert!(matches!(err, StorageError::ReadOnly(_)), "{err}");
    assert!(sb.verify().await.unwrap().is_ok());
    drop((sa, sb, ro, a, b));
}

/// The listener is terminated and kept from reconnecting: the polling fallback still moves
/// the other node's watch within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_follow_other_nodes_even_without_the_listener() {
    let Some(server) = postgres().await else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let a = node(&server.url(), &dirs.path().join("a"), ObjectsConfig::File).await;
    let b = node(&server.url(), &dirs.path().join("b"), ObjectsConfig::File).await;
    let sa = a.open("users").await.unwrap();
    let sb = b.open("users").await.unwrap();
    let mut rx = sb.changes();
    let c = sa.write("u", b"1".to_vec(), who()).await.unwrap();
    reaches(&mut rx, c.seq, Duration::from_secs(1)).await;

    let listener = b.listener().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let pid = loop {
        if let Some(pid) = listener.listener_pid() {
            break pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no listener came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    listener.hold_reconnect(true);
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let killed: bool = client
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    while listener.listener_pid().is_some() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for round in 0..3u8 {
        let c = sa.write("u", vec![round], who()).await.unwrap();
        reaches(&mut rx, c.seq, Duration::from_secs(1)).await;
    }
    assert!(listener.listener_pid().is_none(), "the fallback did it");
    // Once allowed, the listener comes back.
    listener.hold_reconnect(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while listener.listener_pid().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener did not return"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((sa, sb, a, b));
}

/// GC runs on one node at a time: while one holds the store's maintenance lock, another's
/// GC reports that it skipped; afterwards it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_of_a_shared_store_runs_on_one_node_at_a_time() {
    let Some(server) = postgres().await else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let a = node(&server.url(), &dirs.path().join("a"), ObjectsConfig::File).await;
    let b = node(&server.url(), &dirs.path().join("b"), ObjectsConfig::File).await;
    let sa = a.open("reg").await.unwrap();
    let sb = b.open("reg").await.unwrap();
    sa.write("p", vec![1u8; crate::INLINE_MAX + 1], who())
        .await
        .unwrap();
    sa.write("p", b"small".to_vec(), who()).await.unwrap();
    sa.set_retention(Some(Duration::ZERO)).await.unwrap();
    let no_grace = GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    };
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let inner = sa.inner.clone();
    let holder = std::thread::spawn(move || {
        let guard = inner.meta.try_maintenance_lock().unwrap();
        assert!(guard.is_some());
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        drop(guard);
    });
    held_rx.recv().unwrap();
    let skipped = sb.gc(no_grace.clone()).await.unwrap();
    assert!(skipped.skipped_locked, "{skipped:?}");
    assert_eq!(skipped.purged_versions, 0);
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let ran = sb.gc(no_grace).await.unwrap();
    assert!(!ran.skipped_locked);
    assert_eq!((ran.purged_versions, ran.objects_removed), (1, 1));
    assert!(sa.verify().await.unwrap().is_ok());
    drop((sa, sb, a, b));
}

/// A single-node store (files + SQLite) moves into S3 + PostgreSQL with its history: the
/// same commit ids, purges included, its content readable and `verify` clean; a second copy
/// into the now non-empty store is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_a_single_node_store_into_s3_and_postgres() {
    let Some(server) = postgres().await else {
        return;
    };
    let Some(bucket) = tokio::task::spawn_blocking(seaweedfs::SeaweedFs::start)
        .await
        .unwrap()
    else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let single = StoreManager::new(dirs.path().join("single"));
    let src = single.open("site").await.unwrap();
    let expected = fill(&src).await;
    let dest = node(&server.url(), &dirs.path().join("node"), s3(&bucket, "c/")).await;
    let report = dest.copy_store(&src, "site").await.unwrap();
    assert_eq!(report.commits, expected.len() as u64);
    assert!(report.objects >= 3 && report.bytes > 100_000, "{report:?}");
    let copied = dest.open_existing("site").await.unwrap();
    check_same(&src, &copied).await;
    let err = dest.copy_store(&src, "site").await.unwrap_err();
    assert!(matches!(err, StorageError::NotEmpty(_)), "{err}");
    drop((copied, dest, src, single));
}

/// file → file: the same between two single-node data directories.
#[tokio::test]
async fn copy_between_single_node_data_dirs_keeps_the_history() {
    let dirs = tempfile::tempdir().unwrap();
    let src = StoreManager::new(dirs.path().join("one"))
        .open("s")
        .await
        .unwrap();
    fill(&src).await;
    let dest = StoreManager::new(dirs.path().join("two"));
    let report = dest.copy_store(&src, "s").await.unwrap();
    assert_ne!(report, CopyReport::default());
    let copied = dest.open_existing("s").await.unwrap();
    check_same(&src, &copied).await;
    assert_eq!(
        copied.retention_policy().await.unwrap(),
        src.retention_policy().await.unwrap()
    );
}

/// A history with inline and file objects, a delete, a batch and a retention purge whose
/// content GC removed. Returns the commit ids, newest first.
async fn fill(s: &crate::Store) -> Vec<crate::CommitId> {
    let big = |b: u8| vec![b; 60_000];
    s.write("a", b"one".to_vec(), who()).await.unwrap();
    s.write("big", big(1), who()).await.unwrap();
    s.write("big", big(2), who()).await.unwrap();
    s.commit(
        vec![
            Op::PutBytes {
                path: "b".into(),
                bytes: big(3),
            },
            Op::Delete { path: "a".into() },
        ],
        vec![],
        who(),
    )
    .await
    .unwrap();
    s.set_retention(Some(Duration::ZERO)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = s
        .gc(GcOptions {
            grace: Duration::ZERO,
            dry_run: false,
        })
        .await
        .unwrap();
    assert!(report.purged_versions >= 2 && report.objects_removed >= 1);
    s.write("c", b"after".to_vec(), who()).await.unwrap();
    s.log(100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

async fn check_same(src: &crate::Store, copied: &crate::Store) {
    assert_eq!(src.log(100).await.unwrap(), copied.log(100).await.unwrap());
    assert_eq!(copied.head_seq(), src.head_seq());
    for path in ["b", "big", "c"] {
        assert_eq!(
            copied.read(path).await.unwrap(),
            src.read(path).await.unwrap()
        );
    }
    assert_eq!(
        copied.history("big").await.unwrap(),
        src.history("big").await.unwrap()
    );
    let report = copied.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");
}

/// Another node's GC removes an object while a stage here had found its bytes present (and
/// skipped the upload) but not yet written its row: the row waits for the GC's lock, and the
/// commit that follows must fail with `ObjectMissing` (stage again) instead of acknowledging
/// a commit whose bytes are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_never_references_bytes_another_nodes_gc_removed() {
    let Some(server) = postgres().await else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let a = node(&server.url(), dirs.path(), ObjectsConfig::File).await;
    let s = a.open("race").await.unwrap();
    let data = vec![5u8; crate::INLINE_MAX * 2];
    let staged = s.stage(&data[..], None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let digests = crate::hashing::digest_bytes(&data);
    let inner = s.inner.clone();
    let gc = tokio::task::spawn_blocking(move || {
        let mut stager = None;
        let outcome = inner
            .meta
            .delete_object_with(&digests.blake3, crate::meta::now_ms(), &mut || {
                // The other node's stage: its publish found the bytes, its row now waits.
                let other = inner.clone();
                stager = Some(std::thread::spawn(move || {
                    other.meta.upsert_object(&digests, crate::meta::now_ms())
                }));
                std::thread::sleep(Duration::from_millis(200));
                crate::objects::ObjectBackend::remove(&inner.objects, &digests.blake3)?;
                Ok(())
            })
            .unwrap();
        assert!(outcome.is_some_and(|o| o.is_file));
        stager.unwrap().join().unwrap().unwrap();
    });
    gc.await.unwrap();
    let put = Op::Put {
        path: "p".into(),
        object: staged,
    };
    let err = s.commit(vec![put], vec![], who()).await.unwrap_err();
    assert!(matches!(err, StorageError::ObjectMissing(_)), "{err}");
    // The stage's row without bytes is unreferenced: the next GC takes it, and staging
    // again works.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let no_grace = GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    };
    assert_eq!(s.gc(no_grace).await.unwrap().objects_removed, 1);
    assert!(s.verify().await.unwrap().is_ok());
    let staged = s.stage(&data[..], None).await.unwrap();
    let put = Op::Put {
        path: "p".into(),
        object: staged,
    };
    s.commit(vec![put], vec![], who()).await.unwrap();
    assert_eq!(s.read("p").await.unwrap(), data);
    drop((s, a));
}

/// A database that cannot be reached fails the manager at once with one `Unavailable` error
/// naming where it looked, without the password.
#[test]
fn an_unreachable_database_is_one_clear_unavailable_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://everlock:s3cret@127.0.0.1:{port}/everlock");
    let err = StoreManager::new_with_meta(
        dir.path(),
        ObjectsConfig::File,
        MetaConfig::Postgres(PostgresConfig::new(url.clone())),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StorageError::Unavailable(_)), "{err}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let config = PostgresConfig::new(url);
    assert!(!format!("{config:?}").contains("s3cret"));
    assert_eq!(
        crate::manager::redact_url("postgres://u:p@h/db?x=1"),
        "postgres://u:***@h/db?x=1"
    );
    assert_eq!(
        crate::manager::redact_url("host=h password=p user=u"),
        "host=h password=*** user=u"
    );
    let err = StoreManager::new_with_meta(
        dir.path(),
        ObjectsConfig::File,
        MetaConfig::Postgres(PostgresConfig::new("postgres://h:notaport/db")),
    )
    .unwrap_err();
    assert!(matches!(err, StorageError::Invalid { .. }), "{err}");
}
