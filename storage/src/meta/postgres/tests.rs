//! The PostgreSQL side of the metadata conformance suite (its factory and gate), and what only
//! this engine needs checking: several handles (nodes) on one store, and calls from tokio's
//! blocking pool. Each test starts its own throw-away server (tests/support/postgres.rs),
//! stopped when the fixture drops, so no test leaves a server behind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../../../../tests/support/postgres.rs"]
mod pg_harness;

use std::sync::Arc;
use std::time::Instant;

use super::super::api::{MetaStore, read};
use super::super::conformance::Fixture;
use super::super::{CommitRequest, PreparedOp};
use super::PostgresMeta;
use crate::error::StorageError;
use crate::hashing::digest_bytes;
use crate::types::{CommitMeta, Expected, Precondition};
use pg_harness::Postgres;

/// Whether PostgreSQL can run here (prints SKIP, or fails under CI, when not).
pub(crate) fn available() -> bool {
    pg_harness::available()
}

/// A fresh store in a server of its own.
pub(crate) fn fixture() -> Fixture {
    let server = Postgres::start().expect("PostgreSQL is available (checked by the gate)");
    let meta = PostgresMeta::open(&server.url(), "conformance").unwrap();
    // `meta` is declared first in `Fixture`, so its connections close before the server stops.
    Fixture {
        meta: Box::new(meta),
        _guard: Box::new(server),
    }
}

fn put(path: &str, bytes: &[u8], pre: Vec<Precondition>) -> CommitRequest {
    CommitRequest {
        ops: vec![PreparedOp::PutInline {
            path: path.into(),
            digests: digest_bytes(bytes),
            bytes: bytes.to_vec(),
        }],
        preconditions: pre,
        meta: CommitMeta::new("bench", "small commit"),
    }
}

/// Two handles on one store stand for two nodes: concurrent compare-and-swap commits on one
/// path through both never fork the chain, and each successful one saw the one before.
#[test]
fn two_nodes_serialise_commits_on_one_store() {
    if !available() {
        return;
    }
    let server = Postgres::start().unwrap();
    let a = Arc::new(PostgresMeta::open(&server.url(), "shared").unwrap());
    let b = Arc::new(PostgresMeta::open(&server.url(), "shared").unwrap());
    let threads: Vec<_> = (0..8u8)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                let mut won = 0u32;
                for round in 0..10u8 {
                    let seen = read(&*node, |r| r.head_entry("tag")).unwrap();
                    let expected = match seen {
                        Some(e) => Expected::Version(e.version),
                        None => Expected::Absent,
                    };
                    let pre = vec![Precondition {
                        path: "tag".into(),
                        expected,
                    }];
                    match node.commit(put("tag", &[i, round], pre)) {
                        Ok(_) => won += 1,
                        Err(StorageError::Conflict { .. }) => {}
                        Err(e) => panic!("commit: {e}"),
                    }
                }
                won
            })
        })
        .collect();
    let won: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(won >= 10, "at least one writer wins each round, got {won}");
    let log = read(&*b, |r| r.log(1000)).unwrap();
    assert_eq!(log.len() as u32, won, "every success is one commit");
    for pair in log.windows(2) {
        assert_eq!(pair[0].parent, Some(pair[1].id), "one linear chain");
        assert_eq!(pair[0].seq, pair[1].seq + 1);
    }
    let history = read(&*a, |r| r.history("tag")).unwrap();
    assert_eq!(
        history.len() as u32,
        won,
        "no commit lost a CAS race silently"
    );
    drop((a, b));
}

/// The store calls the interface from tokio's blocking pool; the client's own runtime must
/// not mind (nesting `block_on` in a runtime thread would panic).
#[test]
fn works_from_the_blocking_pool_of_another_runtime() {
    if !available() {
        return;
    }
    let server = Postgres::start().unwrap();
    let meta: Arc<dyn MetaStore> = Arc::new(PostgresMeta::open(&server.url(), "pool").unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let m = meta.clone();
    let seq = rt
        .block_on(async move {
            tokio::task::spawn_blocking(move || {
                m.commit(put("a", b"1", vec![])).unwrap();
                read(&*m, |r| r.last_commit()).unwrap().unwrap().seq
            })
            .await
        })
        .unwrap();
    assert_eq!(seq, 1);
    // Dropped inside async code, as the last handle of a store may be.
    rt.block_on(async move { drop(meta) });
}

/// Small commits per second, one committer and eight, on PostgreSQL (the harness server runs
/// with fsync off; set EVERLOCK_BENCH_PG_URL to measure a durable server instead) and on SQLite
/// in a temporary directory (`synchronous=FULL`) for comparison.
/// `cargo test -p everlock-storage postgres::tests::bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark"]
fn bench_small_commits() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = super::super::SqliteMeta::open(&dir.path().join("meta.sqlite")).unwrap();
    bench("sqlite", Arc::new(sqlite));
    let server;
    let url = match std::env::var("EVERLOCK_BENCH_PG_URL") {
        Ok(url) => url,
        Err(_) => {
            if !available() {
                return;
            }
            server = Postgres::start().unwrap();
            server.url()
        }
    };
    let schema = format!("bench_{}", std::process::id());
    bench(
        "postgres",
        Arc::new(PostgresMeta::open(&url, &schema).unwrap()),
    );
}

fn bench(label: &str, meta: Arc<dyn MetaStore>) {
    for threads in [1u32, 8] {
        let n = 2000 / threads;
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let meta = meta.clone();
                std::thread::spawn(move || {
                    for i in 0..n {
                        meta.commit(put(&format!("t{t}/p{i}"), &i.to_le_bytes(), vec![]))
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let rate = f64::from(n * threads) / start.elapsed().as_secs_f64();
        println!("{label}: {threads} committer(s): {rate:.0} commits/s");
    }
}

/// A read closure that panics inside a snapshot must not hand its still-open read-only
/// transaction to the next caller of the pool.
#[test]
fn a_panicking_snapshot_does_not_poison_the_pool() {
    if !available() {
        return;
    }
    let server = Postgres::start().unwrap();
    let meta = PostgresMeta::open(&server.url(), "panics").unwrap();
    meta.commit(put("a", b"1", vec![])).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = super::super::api::snapshot(&meta, |_| -> crate::error::Result<()> {
            panic!("reader failed")
        });
    }));
    assert!(caught.is_err());
    let next = meta.commit(put("a", b"2", vec![])).unwrap();
    assert_eq!(next.seq, 2);
    assert_eq!(read(&meta, |r| r.last_commit()).unwrap().unwrap().seq, 2);
}

/// The same history, at the same times, gives the same commit records (hence ids) on SQLite
/// and on PostgreSQL: puts inline and by reference, a delete, a purge.
#[test]
fn the_same_history_has_the_same_commit_ids_on_sqlite_and_postgres() {
    if !available() {
        return;
    }
    let server = Postgres::start().unwrap();
    let pg = PostgresMeta::open(&server.url(), "same").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = super::super::SqliteMeta::open(&dir.path().join("meta.sqlite")).unwrap();
    let big = digest_bytes(&[9u8; 40_000]);
    let t0 = 1_700_000_000_000i64;
    super::super::write::upsert_object(&mut sqlite.writer(), &big, t0).unwrap();
    pg.upsert_object(&big, t0).unwrap();
    let history = |i: usize| -> CommitRequest {
        match i {
            0 => put("a", b"one", vec![]),
            1 => CommitRequest {
                ops: vec![PreparedOp::Put {
                    path: "dir/big".into(),
                    object: big.blake3,
                }],
                preconditions: vec![],
                meta: CommitMeta::new("alice", "by reference"),
            },
            2 => put("a", b"two", vec![]),
            _ => CommitRequest {
                ops: vec![PreparedOp::Delete { path: "a".into() }],
                preconditions: vec![],
                meta: CommitMeta::new("bob", "delete"),
            },
        }
    };
    for i in 0..4 {
        let now = t0 + i as i64 * 1000;
        let s = super::super::write::apply_batch(&mut sqlite.writer(), vec![history(i)], now)
            .pop()
            .unwrap()
            .unwrap();
        let conn = pg.pool.get().unwrap();
        let p = pg
            .transaction(
                &conn,
                "BEGIN",
                super::write::commit(conn.client(), history(i), now),
            )
            .unwrap();
        assert_eq!(s, p, "commit {i}");
    }
    let who = CommitMeta::new("system", "purge");
    let cutoff = super::super::Cutoff::Seq(4);
    let now = t0 + 10_000;
    let s = super::super::write::purge_superseded(&mut sqlite.writer(), cutoff, &who, now)
        .unwrap()
        .unwrap();
    let p = pg.purge_superseded(cutoff, &who, now).unwrap().unwrap();
    assert_eq!((s.0.id, s.1, s.2), (p.0.id, p.1, p.2));
    let log = |m: &dyn MetaStore| read(m, |r| r.log(100)).unwrap();
    assert_eq!(log(&sqlite), log(&pg));
    assert_eq!(log(&pg).len(), 5);
}
