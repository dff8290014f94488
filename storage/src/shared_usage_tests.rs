//! Shared mode's use of resources: one manager (one node) stays within `[storage.postgres]
//! max-connections` however many stores it serves, while commits on all of them go through;
//! a shared store's usage figure comes from the database, not from this node's spool. Starts
//! its own PostgreSQL (SKIP when missing locally, failure under `CI`).

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

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::{CommitMeta, MetaConfig, ObjectsConfig, PostgresConfig, StoreManager};

/// Connections the manager may open in all (the listener's one included).
const BUDGET: u32 = 6;
const STORES: usize = 40;
const COMMITS: usize = 5;

/// Samples how many client connections other than its own the server has, every 10 ms, and
/// keeps the largest figure until `stop` is set.
async fn watch_connections(url: String, stop: Arc<AtomicBool>, most: Arc<AtomicI64>) {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    while !stop.load(Ordering::Acquire) {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
                 AND datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        most.fetch_max(row.get::<_, i64>(0), Ordering::AcqRel);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A server of its own, started off the async workers (it blocks for about a second).
async fn postgres() -> Option<pg_harness::Postgres> {
    if !pg_harness::available() {
        return None;
    }
    tokio::task::spawn_blocking(pg_harness::Postgres::start)
        .await
        .unwrap()
}

/// A manager on `url` with a budget of `max_connections`.
async fn node(url: String, dir: &Path, max_connections: u32) -> StoreManager {
    let config = PostgresConfig {
        max_connections,
        ..PostgresConfig::new(url)
    };
    let path = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        StoreManager::new_with_meta(path, ObjectsConfig::File, MetaConfig::Postgres(config))
    })
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_stores_share_one_connection_budget() {
    let Some(server) = postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manager = node(server.url(), dir.path(), BUDGET).await;
    let (stop, most) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicI64::new(0)),
    );
    let watcher = tokio::spawn(watch_connections(server.url(), stop.clone(), most.clone()));
    let mut stores = Vec::new();
    for i in 0..STORES {
        stores.push(manager.open(&format!("s{i}")).await.unwrap());
    }
    // Every store commits at once, so a per-store pool would open many connections each.
    let mut writers = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..COMMITS {
                let meta = CommitMeta::new("t", "budget");
                store
                    .write(&format!("k{n}"), format!("{i}/{n}").into_bytes(), meta)
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::Release);
    watcher.await.unwrap();
    let most = most.load(Ordering::Acquire);
    assert!(
        most <= i64::from(BUDGET),
        "{most} connections for a budget of {BUDGET}"
    );
    // The sampler saw the manager's connections at all (the listener and the pool).
    assert!(most >= 2, "{most}");
    // Connections moved between schemas: each store still holds exactly its own commits.
    for (i, store) in stores.iter().enumerate() {
        assert_eq!(store.head_seq(), COMMITS as u64);
        let last = store.read(&format!("k{}", COMMITS - 1)).await.unwrap();
        assert_eq!(last, format!("{i}/{}", COMMITS - 1).into_bytes());
        assert!(store.verify().await.unwrap().is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_stores_usage_is_the_objects_table_on_every_node() {
    let Some(server) = postgres().await else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let a = node(server.url(), &dirs.path().join("a"), 4).await;
    let b = node(server.url(), &dirs.path().join("b"), 4).await;
    let sa = a.open("usage").await.unwrap();
    // Not a multiple of a filesystem block, so a walk of object files could not match.
    let big = vec![5u8; 100_001];
    sa.write("big", big, CommitMeta::new("t", "usage"))
        .await
        .unwrap();
    sa.write("small", b"hi".to_vec(), CommitMeta::new("t", "usage"))
        .await
        .unwrap();
    let stats = sa.stats().await.unwrap();
    assert_eq!(stats.bytes, 100_003);
    assert_eq!(sa.disk_bytes().await.unwrap(), stats.bytes);
    // The other node, whose data directory never held these objects, says the same.
    let sb = b.open_existing("usage").await.unwrap();
    assert_eq!(sb.disk_bytes().await.unwrap(), stats.bytes);
}

/// With the smallest budget (two pooled connections for three stores used in turn) connections
/// keep switching schemas, past the point where PostgreSQL caches a generic plan for each
/// statement: what one store staged or wrote must never be looked up, or recorded, in the
/// schema of the store a connection served before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn few_connections_serve_many_stores_without_mixing_them() {
    let Some(server) = postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The listener's connection and two for every store.
    let manager = node(server.url(), dir.path(), 3).await;
    let stores = [
        manager.open("one").await.unwrap(),
        manager.open("two").await.unwrap(),
        manager.open("three").await.unwrap(),
    ];
    for round in 0..8u8 {
        for (i, store) in stores.iter().enumerate() {
            // The same content in every store: each must get its own object row.
            let object = store.stage(&[round, 1][..], None).await.unwrap();
            let put = crate::Op::Put {
                path: format!("p{round}"),
                object,
            };
            store
                .commit(vec![put], vec![], CommitMeta::new("t", "switch"))
                .await
                .unwrap();
            let own = format!("{i}/{round}").into_bytes();
            store
                .write("own", own.clone(), CommitMeta::new("t", "switch"))
                .await
                .unwrap();
            assert_eq!(store.read("own").await.unwrap(), own);
        }
    }
    for store in &stores {
        assert_eq!(store.stats().await.unwrap().objects, 16);
        assert!(store.verify().await.unwrap().is_ok());
    }
    // Maintenance holds its advisory lock on one connection and works on the other, so the
    // smallest budget still collects (within the pool's wait limit, not stuck).
    let options = crate::GcOptions {
        grace: Duration::ZERO,
        dry_run: false,
    };
    let report = tokio::time::timeout(Duration::from_secs(20), stores[0].gc(options))
        .await
        .unwrap()
        .unwrap();
    assert!(!report.skipped_locked, "{report:?}");
}

/// Staging content a shared store already keeps inline publishes no bytes; committing it must
/// not report the object missing (the shared model test hit this at random).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_content_already_inline_commits() {
    let Some(server) = postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manager = node(server.url(), dir.path(), 4).await;
    let store = manager.open("inline").await.unwrap();
    for content in [&b""[..], &b"hi"[..]] {
        store
            .write("first", content.to_vec(), CommitMeta::new("t", "inline"))
            .await
            .unwrap();
        let object = store.stage(content, None).await.unwrap();
        let put = crate::Op::Put {
            path: "again".into(),
            object,
        };
        store
            .commit(vec![put], vec![], CommitMeta::new("t", "inline"))
            .await
            .unwrap();
        assert_eq!(store.read("again").await.unwrap(), content);
    }
}
