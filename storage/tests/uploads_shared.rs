//! Upload sessions shared by several nodes (issue #12, item 4): managers on one PostgreSQL
//! database and one SeaweedFS bucket, each with its own data directory, stand for the nodes.
//! A session started on one node is continued and finished on others; two nodes appending at
//! one offset at once get exactly one winner; a session survives its nodes going away.
//!
//! Managers are made and dropped outside the async runtime (they own blocking runtimes of
//! their own); each scenario uses a store of its own on the same servers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../../tests/support/postgres.rs"]
mod postgres;
#[path = "support/seaweedfs.rs"]
mod seaweedfs;

use std::path::Path;
use std::time::Duration;

use everlock_storage::{
    CommitMeta, Digest, MetaConfig, ObjectsConfig, Op, PostgresConfig, S3Config, StorageError,
    Store, StoreManager,
};
use sha2::Digest as _;
use tokio::runtime::Runtime;

const MIB: usize = 1024 * 1024;
const TTL: Duration = Duration::from_secs(600);

struct Servers {
    pg: postgres::Postgres,
    s3: seaweedfs::SeaweedFs,
}

impl Servers {
    fn start() -> Option<Servers> {
        let pg = postgres::Postgres::start()?;
        let s3 = seaweedfs::SeaweedFs::start()?;
        Some(Servers { pg, s3 })
    }

    fn node_s3(&self) -> S3Config {
        S3Config {
            endpoint: self.s3.endpoint.clone(),
            bucket: seaweedfs::BUCKET.into(),
            prefix: "shared-uploads/".into(),
            region: "us-east-1".into(),
            access_key_id: seaweedfs::ACCESS_KEY.into(),
            secret_access_key: seaweedfs::SECRET_KEY.into(),
            allow_http: true,
        }
    }

    /// A node: a manager with its own data directory on the shared database and bucket.
    fn node(&self, dir: &Path) -> StoreManager {
        let s3 = self.node_s3();
        let pg = PostgresConfig::new(self.pg.url());
        let node =
            StoreManager::new_with_meta(dir, ObjectsConfig::S3(s3), MetaConfig::Postgres(pg))
                .unwrap();
        assert!(node.is_shared());
        node
    }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(0x9E37_79B9) as u8 ^ seed)
        .collect()
}

fn sha256(bytes: &[u8]) -> Digest {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
        .parse()
        .unwrap()
}

/// Finishes `id` on `store`, commits the object as `path` and reads it back through `reader`.
async fn finish_and_read(store: &Store, reader: &Store, id: &str, want: &[u8], path: &str) {
    let obj = store.upload_finish(id, Some(sha256(want))).await.unwrap();
    assert_eq!(obj.size, want.len() as u64);
    store
        .commit(
            vec![Op::Put {
                path: path.into(),
                object: obj,
            }],
            vec![],
            CommitMeta::new("t", "upload"),
        )
        .await
        .unwrap();
    let back = reader.read(path).await.unwrap();
    assert!(back == want, "the bytes read back differ");
    assert!(store.upload_session(id).await.unwrap().is_none());
}

#[test]
fn upload_sessions_span_nodes() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let rt = Runtime::new().unwrap();
    post_patch_put_on_three_nodes(&servers, &dirs, &rt);
    one_winner_per_offset(&servers, &dirs, &rt);
    resume_after_every_node_went_away(&servers, &dirs, &rt);
}

/// POST on A, PATCH on B then C (a part big enough for multipart), PATCH on A, PUT on C;
/// B reads the committed blob.
fn post_patch_put_on_three_nodes(servers: &Servers, dirs: &[tempfile::TempDir], rt: &Runtime) {
    let nodes: Vec<StoreManager> = dirs.iter().map(|d| servers.node(d.path())).collect();
    let data = pattern(1, 14 * MIB + 123);
    rt.block_on(async {
        let a = nodes[0].open("spans").await.unwrap();
        let b = nodes[1].open("spans").await.unwrap();
        let c = nodes[2].open("spans").await.unwrap();
        let up = a.upload_start("repo/x", TTL).await.unwrap();
        let s = b
            .upload_append(&up.id, Some(0), &data[..MIB])
            .await
            .unwrap();
        assert_eq!(s.offset, MIB as u64);
        let s = c
            .upload_append(&up.id, Some(s.offset), &data[MIB..11 * MIB])
            .await
            .unwrap();
        // A stale offset is refused wherever it arrives.
        let stale = b.upload_append(&up.id, Some(MIB as u64), &b"x"[..]).await;
        assert!(
            matches!(stale, Err(StorageError::Conflict { .. })),
            "{stale:?}"
        );
        a.upload_append(&up.id, Some(s.offset), &data[11 * MIB..])
            .await
            .unwrap();
        assert_eq!(
            b.upload_session(&up.id).await.unwrap().unwrap().offset,
            data.len() as u64
        );
        finish_and_read(&c, &b, &up.id, &data, "blob").await;
    });
    drop(nodes);
}

/// Two nodes append at the same offset at the same moment, ten times: exactly one wins each
/// time, and the finished blob holds exactly the winners' bytes.
fn one_winner_per_offset(servers: &Servers, dirs: &[tempfile::TempDir], rt: &Runtime) {
    let nodes: Vec<StoreManager> = dirs[..2].iter().map(|d| servers.node(d.path())).collect();
    rt.block_on(async {
        let a = nodes[0].open("races").await.unwrap();
        let b = nodes[1].open("races").await.unwrap();
        let up = a.upload_start("repo/y", TTL).await.unwrap();
        let mut want = Vec::new();
        for round in 0..10u8 {
            let at = want.len() as u64;
            let (x, y) = (pattern(round, 300_000), pattern(round ^ 0x55, 200_000));
            let (ra, rb) = tokio::join!(
                a.upload_append(&up.id, Some(at), &x[..]),
                b.upload_append(&up.id, Some(at), &y[..]),
            );
            match (ra, rb) {
                (Ok(_), Err(StorageError::Conflict { .. })) => want.extend_from_slice(&x),
                (Err(StorageError::Conflict { .. }), Ok(_)) => want.extend_from_slice(&y),
                other => panic!("round {round}: not exactly one winner: {other:?}"),
            }
        }
        let s = a.upload_session(&up.id).await.unwrap().unwrap();
        assert_eq!(s.offset, want.len() as u64);
        finish_and_read(&b, &a, &up.id, &want, "raced").await;
    });
    drop(nodes);
}

/// A session outlives every node that served it: appended on A, all nodes dropped, then
/// continued on a restarted A and finished on B.
fn resume_after_every_node_went_away(servers: &Servers, dirs: &[tempfile::TempDir], rt: &Runtime) {
    let data = pattern(9, 3 * MIB + 5);
    let a = servers.node(dirs[0].path());
    let id = rt.block_on(async {
        let store = a.open("restart").await.unwrap();
        let up = store.upload_start("repo/z", TTL).await.unwrap();
        store
            .upload_append(&up.id, None, &data[..2 * MIB])
            .await
            .unwrap();
        up.id
    });
    drop(a);
    let a = servers.node(dirs[0].path());
    let b = servers.node(dirs[1].path());
    rt.block_on(async {
        let on_a = a.open("restart").await.unwrap();
        let on_b = b.open("restart").await.unwrap();
        let s = on_a.upload_session(&id).await.unwrap().unwrap();
        assert_eq!(s.offset, 2 * MIB as u64);
        on_a.upload_append(&id, Some(s.offset), &data[2 * MIB..])
            .await
            .unwrap();
        finish_and_read(&on_b, &on_a, &id, &data, "resumed").await;
    });
}

/// A 256 MiB upload in eight 32 MiB appends on SeaweedFS: one node with SQLite (the local
/// session file, published once at finish) against the shared path (parts, alternating nodes).
/// `cargo test -p everlock-storage --test uploads_shared -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn upload_256_mib_on_seaweedfs() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let rt = Runtime::new().unwrap();
    let chunk = pattern(3, 32 * MIB);
    let want = chunk.repeat(8);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let single = {
        let mut s3 = servers.node_s3();
        s3.prefix = "single/".into();
        StoreManager::new_with(dirs[2].path(), ObjectsConfig::S3(s3)).unwrap()
    };
    let shared: Vec<StoreManager> = dirs[..2].iter().map(|d| servers.node(d.path())).collect();
    rt.block_on(async {
        let cases = [
            ("s3+sqlite, local file", single.open("bench").await.unwrap(), None),
            (
                "s3+postgres, parts, two nodes",
                shared[0].open("bench").await.unwrap(),
                Some(shared[1].open("bench").await.unwrap()),
            ),
        ];
        for (name, first, second) in cases {
            let started = std::time::Instant::now();
            let up = first.upload_start("r", TTL).await.unwrap();
            for i in 0..8 {
                let node = match (&second, i % 2) {
                    (Some(other), 1) => other,
                    _ => &first,
                };
                node.upload_append(&up.id, None, &chunk[..]).await.unwrap();
            }
            let appended = started.elapsed();
            let obj = first.upload_finish(&up.id, None).await.unwrap();
            let total = started.elapsed();
            assert_eq!(obj.size, want.len() as u64);
            eprintln!(
                "UPLOAD 256 MiB ({name}): appends {:.2} s, finish {:.2} s, total {:.2} s ({:.0} MiB/s)",
                appended.as_secs_f64(),
                (total - appended).as_secs_f64(),
                total.as_secs_f64(),
                256.0 / total.as_secs_f64()
            );
        }
    });
    drop(shared);
    drop(single);
}
