//! The store-level conformance checks on S3 objects (SeaweedFS) + PostgreSQL metadata, the
//! multi-node mode, with two managers standing for two nodes: the model test (random
//! operation sequences through both nodes against an in-memory model), the concurrency test
//! (compare-and-swap increments through both nodes lose no update) and the crash test (a
//! writer process killed at random moments, between object publish and commit included,
//! loses nothing it acknowledged). `model.rs`, `concurrency.rs` and `crash.rs` check the same
//! on files + SQLite. Each test starts its own servers; without them it prints SKIP (fails
//! under `CI`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

#[path = "../../tests/support/postgres.rs"]
mod postgres;
#[path = "support/seaweedfs.rs"]
mod seaweedfs;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use everlock_storage::{
    CommitMeta, Expected, MetaConfig, ObjectId, ObjectsConfig, Op, PostgresConfig, Precondition,
    S3Config, StorageError, Store, StoreManager,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

/// Both servers of one test; dropped (and stopped) at its end.
struct Servers {
    pg: postgres::Postgres,
    s3: seaweedfs::SeaweedFs,
}

impl Servers {
    fn start() -> Option<Servers> {
        if !postgres::available() {
            return None;
        }
        let pg = postgres::Postgres::start()?;
        let s3 = seaweedfs::SeaweedFs::start()?;
        Some(Servers { pg, s3 })
    }

    fn env(&self) -> [(&'static str, String); 2] {
        [
            ("EVERLOCK_TEST_PG", self.pg.url()),
            ("EVERLOCK_TEST_S3", self.s3.endpoint.clone()),
        ]
    }
}

/// A node on the servers (blocking: it checks the bucket and the database).
fn node(pg_url: &str, s3_endpoint: &str, dir: &Path) -> StoreManager {
    let objects = ObjectsConfig::S3(S3Config {
        endpoint: s3_endpoint.to_owned(),
        bucket: seaweedfs::BUCKET.into(),
        prefix: "conformance/".into(),
        region: "us-east-1".into(),
        access_key_id: seaweedfs::ACCESS_KEY.into(),
        secret_access_key: seaweedfs::SECRET_KEY.into(),
        allow_http: true,
    });
    let meta = MetaConfig::Postgres(PostgresConfig::new(pg_url));
    StoreManager::new_with_meta(dir, objects, meta).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Model test

const PATHS: &[&str] = &["a", "a/b", "a/c", "ab", "b", "b/a/x", "é/ü"];

#[derive(Clone, Debug)]
enum MOp {
    Write(usize, Vec<u8>),
    Stage(usize, Vec<u8>),
    Delete(usize),
}

fn op() -> impl Strategy<Value = MOp> {
    let content = prop_oneof![
        6 => proptest::collection::vec(0u8..4, 0..6),
        1 => (0u8..3).prop_map(|b| vec![b; everlock_storage::INLINE_MAX + 10]),
    ];
    let path = 0..PATHS.len();
    prop_oneof![
        4 => (path.clone(), content.clone()).prop_map(|(p, c)| MOp::Write(p, c)),
        1 => (path.clone(), content).prop_map(|(p, c)| MOp::Stage(p, c)),
        2 => path.prop_map(MOp::Delete),
    ]
}

/// Applies `ops` alternately through `nodes[0]` and `nodes[1]` and checks HEAD and every
/// past commit against the model on both, then on a third manager opened afterwards.
async fn run_model(nodes: &[StoreManager; 2], name: &str, ops: &[MOp]) -> (Vec<u64>, usize) {
    let stores = [
        nodes[0].open(name).await.unwrap(),
        nodes[1].open(name).await.unwrap(),
    ];
    let mut head: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut commits = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let store = &stores[i % 2];
        let meta = CommitMeta::new("p", format!("op {i}"));
        let (path, content) = match op {
            MOp::Write(p, c) | MOp::Stage(p, c) => (PATHS[*p], Some(c.clone())),
            MOp::Delete(p) => (PATHS[*p], None),
        };
        let result = match op {
            MOp::Stage(_, c) => {
                let object = store.stage(&c[..], None).await.unwrap();
                let put = Op::Put {
                    path: path.into(),
                    object,
                };
                store.commit(vec![put], vec![], meta).await
            }
            MOp::Write(_, c) => store.write(path, c.clone(), meta).await,
            MOp::Delete(_) => store.delete(path, meta).await,
        };
        match (result, content) {
            (Ok(info), content) => {
                assert_eq!(info.seq as usize, commits.len() + 1, "one chain");
                match content {
                    Some(c) => head.insert(path.to_owned(), c),
                    None => head.remove(path),
                };
                commits.push((info.id, head.clone()));
            }
            (Err(StorageError::NotFound(_)), None) if !head.contains_key(path) => {}
            (r, _) => panic!("{op:?}: {r:?}"),
        }
    }
    for store in &stores {
        check(store, &head, &commits).await;
    }
    let seqs = stores.iter().map(Store::head_seq).collect();
    (seqs, commits.len())
}

type Commits = Vec<(everlock_storage::CommitId, BTreeMap<String, Vec<u8>>)>;

async fn check(store: &Store, head: &BTreeMap<String, Vec<u8>>, commits: &Commits) {
    for path in PATHS {
        match (store.read(path).await, head.get(*path)) {
            (Ok(bytes), Some(expected)) => assert_eq!(&bytes, expected, "{path}"),
            (Err(StorageError::NotFound(_)), None) => {}
            (r, m) => panic!("{path}: store {r:?}, model {m:?}"),
        }
    }
    let listed: Vec<_> = store
        .list("a")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    let expected: Vec<_> = head
        .keys()
        .filter(|p| p.starts_with('a'))
        .cloned()
        .collect();
    assert_eq!(listed, expected);
    for (id, snapshot) in commits {
        for path in PATHS {
            match (store.read_at(path, *id).await, snapshot.get(*path)) {
                (Ok(bytes), Some(expected)) => assert_eq!(&bytes, expected),
                (Err(StorageError::NotFound(_)), None) => {}
                (r, m) => panic!("{path} at {id}: store {r:?}, model {m:?}"),
            }
        }
    }
    assert!(store.verify().await.unwrap().is_ok());
}

#[test]
fn model_through_two_nodes_on_s3_and_postgres() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let (url, endpoint) = (servers.pg.url(), servers.s3.endpoint.clone());
    let nodes = [
        node(&url, &endpoint, &dirs.path().join("a")),
        node(&url, &endpoint, &dirs.path().join("b")),
    ];
    let rt = runtime();
    let case = AtomicU64::new(0);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..16), |ops| {
            let name = format!("model-{}", case.fetch_add(1, Ordering::Relaxed));
            let (seqs, n) = rt.block_on(run_model(&nodes, &name, &ops));
            // Each node's HEAD cache follows the other node's commits.
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut seqs = seqs;
            while seqs.iter().any(|s| *s != n as u64) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                seqs = rt.block_on(async {
                    let mut v = Vec::new();
                    for node in &nodes {
                        v.push(node.open_existing(&name).await.unwrap().head_seq());
                    }
                    v
                });
            }
            prop_assert_eq!(seqs, vec![n as u64; 2]);
            Ok(())
        })
        .unwrap();
    drop(nodes);
    drop(rt);
    drop(servers);
}

// ---------------------------------------------------------------------------------------------
// Concurrency test

const TASKS: usize = 8;
const INCREMENTS: u64 = 5;

#[test]
fn compare_and_swap_through_two_nodes_loses_no_update() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let (url, endpoint) = (servers.pg.url(), servers.s3.endpoint.clone());
    let nodes = [
        node(&url, &endpoint, &dirs.path().join("a")),
        node(&url, &endpoint, &dirs.path().join("b")),
    ];
    let rt = runtime();
    rt.block_on(async {
        let stores = [
            nodes[0].open("counter").await.unwrap(),
            nodes[1].open("counter").await.unwrap(),
        ];
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let store = stores[task % 2].clone();
            handles.push(tokio::spawn(async move {
                // Even tasks share one content (a dedupe race across nodes), odd ones not.
                let data = vec![(task % 2 * task) as u8; 100_000];
                let object = store.stage(&data[..], None).await.unwrap();
                let path = format!("files/{task}");
                let meta = CommitMeta::new(format!("task{task}"), "stage");
                store
                    .commit(vec![Op::Put { path, object }], vec![], meta)
                    .await
                    .unwrap();
                for _ in 0..INCREMENTS {
                    increment(&store, task).await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let total = (TASKS as u64) * INCREMENTS;
        for store in &stores {
            assert_eq!(
                store.read("counter").await.unwrap(),
                total.to_string().as_bytes()
            );
            assert_eq!(store.history("counter").await.unwrap().len() as u64, total);
            assert!(store.verify().await.unwrap().is_ok());
        }
        let log = stores[0].log(1000).await.unwrap();
        assert_eq!(log.len(), TASKS + total as usize);
        for pair in log.windows(2) {
            assert_eq!(pair[0].parent, Some(pair[1].id));
        }
    });
    drop(nodes);
    drop(rt);
    drop(servers);
}

/// Adds one to `counter` with a compare-and-swap on its version, retrying when another task
/// (on either node) won.
async fn increment(store: &Store, task: usize) {
    loop {
        let current = store.stat("counter").await.unwrap();
        let (value, expected) = match &current {
            Some(e) => {
                let bytes = store
                    .read_at("counter", commit_of(store, e.version).await)
                    .await;
                let v: u64 = String::from_utf8(bytes.unwrap()).unwrap().parse().unwrap();
                (v, Expected::Version(e.version))
            }
            None => (0, Expected::Absent),
        };
        let result = store
            .commit(
                vec![Op::PutBytes {
                    path: "counter".into(),
                    bytes: (value + 1).to_string().into_bytes(),
                }],
                vec![Precondition {
                    path: "counter".into(),
                    expected,
                }],
                CommitMeta::new(format!("task{task}"), "increment"),
            )
            .await;
        match result {
            Ok(_) => return,
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The id of the commit with `seq`.
async fn commit_of(store: &Store, seq: u64) -> everlock_storage::CommitId {
    let history = store.history("counter").await.unwrap();
    history
        .iter()
        .find(|h| h.commit.seq == seq)
        .map(|h| h.commit.id)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Crash test

const KILLS: u32 = 8;

/// The writer: with `EVERLOCK_SHARED_CRASH_CHILD=<dir>` it stages and commits in a loop and
/// reports `done <path> <blake3>` after each acknowledged commit; otherwise it does nothing.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("EVERLOCK_SHARED_CRASH_CHILD") else {
        return;
    };
    let url = std::env::var("EVERLOCK_TEST_PG").unwrap();
    let endpoint = std::env::var("EVERLOCK_TEST_S3").unwrap();
    let manager = node(&url, &endpoint, Path::new(&dir));
    runtime().block_on(async {
        let store = manager.open("crash").await.unwrap();
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        for i in 0u64.. {
            // Big enough that a kill often lands mid-upload or between publish and commit.
            let data: Vec<u8> = (0..150_000u64)
                .map(|k| ((k * 31 + i * 7919) >> 3) as u8)
                .collect();
            let object = store.stage(&data[..], None).await.unwrap();
            let path = format!("f/{}", i % 6);
            let id = object.id;
            store
                .commit(
                    vec![Op::Put {
                        path: path.clone(),
                        object,
                    }],
                    vec![],
                    CommitMeta::new("crash", format!("step {i}")),
                )
                .await
                .unwrap();
            writeln!(out, "done {path} {id}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[test]
fn a_killed_writer_loses_nothing_it_acknowledged() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let dirs = tempfile::tempdir().unwrap();
    let mut acknowledged: BTreeMap<String, ObjectId> = BTreeMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for kill in 0..KILLS {
        // Every run is a fresh process on a fresh local directory: nothing local survives.
        let dir = dirs.path().join(format!("node-{kill}"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("EVERLOCK_SHARED_CRASH_CHILD", &dir)
            .envs(servers.env())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // libtest prints its own text first, `test crash_child ... ` on the same line.
        while !rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap()
            .ends_with("ready")
        {}
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(200 + rng % 800));
        child.kill().unwrap();
        child.wait().unwrap();
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            // A line the kill cut short does not parse and is not counted.
            if let Some((path, id)) = line.strip_prefix("done ").and_then(|r| r.split_once(' '))
                && let Ok(id) = id.parse()
            {
                acknowledged.insert(path.to_owned(), id);
            }
        }
        // Another node sees every acknowledged commit, and the store verifies.
        let check_dir = dirs.path().join(format!("check-{kill}"));
        let (url, endpoint) = (servers.pg.url(), servers.s3.endpoint.clone());
        let checker = node(&url, &endpoint, &check_dir);
        let acknowledged = acknowledged.clone();
        runtime().block_on(async move {
            let store = checker.open("crash").await.unwrap();
            for (path, id) in &acknowledged {
                let history = store.history(path).await.unwrap();
                assert!(
                    history
                        .iter()
                        .any(|h| h.content.as_ref().is_some_and(|c| c.object == *id)),
                    "acknowledged {path} = {id} is lost"
                );
            }
            let report = store.verify().await.unwrap();
            assert!(report.is_ok(), "{report:?}");
        });
    }
    assert!(!acknowledged.is_empty(), "the writer never committed");
    drop(servers);
}
