//! Whole stores on S3 objects (SeaweedFS): every store operation goes through `AnyObjects`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::super::s3::S3Objects;
use super::super::{ObjectBackend, S3Config};
use crate::{CommitMeta, GcOptions, ObjectsConfig, Op, StorageError, StoreManager};

// The object conformance suite includes the harness privately too; a second copy of a
// test-only helper costs nothing.
#[allow(clippy::duplicate_mod)]
#[path = "../../../tests/support/seaweedfs.rs"]
mod seaweedfs;

fn config(server: &seaweedfs::SeaweedFs, prefix: &str) -> S3Config {
    S3Config {
        endpoint: server.endpoint.clone(),
        bucket: seaweedfs::BUCKET.into(),
        prefix: prefix.into(),
        region: "us-east-1".into(),
        access_key_id: seaweedfs::ACCESS_KEY.into(),
        secret_access_key: seaweedfs::SECRET_KEY.into(),
        allow_http: true,
    }
}

fn who() -> CommitMeta {
    CommitMeta::new("t", "s3")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_on_s3_objects_work_end_to_end() {
    let Some(server) = seaweedfs::SeaweedFs::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server, "deploy/");
    let m = StoreManager::new_with(dir.path(), ObjectsConfig::S3(cfg.clone())).unwrap();
    let s = m.open("reg").await.unwrap();
    let big = pattern(20 * 1024 * 1024 + 3);
    let started = Instant::now();
    let obj = s.stage(&big[..], None).await.unwrap();
    let staged = started.elapsed();
    s.commit(
        vec![Op::Put {
            path: "blob".into(),
            object: obj.clone(),
        }],
        vec![],
        who(),
    )
    .await
    .unwrap();
    s.write("small", b"inline".to_vec(), who()).await.unwrap();

    // The bytes are in the bucket under the store's prefix, not in the store directory.
    assert!(!dir.path().join("reg/objects").exists());
    let bucket = S3Objects::open(&config(&server, "deploy/reg/"), &dir.path().join("x")).unwrap();
    assert!(bucket.exists(&obj.id).unwrap());

    let started = Instant::now();
    let mut content = s.open("blob").await.unwrap();
    let mut back = Vec::new();
    content.read_to_end(&mut back).await.unwrap();
    let read = started.elapsed();
    assert!(back == big, "read back differs");
    eprintln!("THROUGHPUT store on s3 (SeaweedFS, debug): stage 20 MiB {staged:?}, read {read:?}");
    let mut ranged = s.open("blob").await.unwrap();
    ranged
        .seek(std::io::SeekFrom::Start(5_000_000))
        .await
        .unwrap();
    let mut some = vec![0u8; 100];
    ranged.read_exact(&mut some).await.unwrap();
    assert_eq!(some, big[5_000_000..5_000_100]);

    assert!(s.verify().await.unwrap().is_ok());
    let opts = crate::ExportOptions {
        max_blob: u64::MAX,
        ..crate::ExportOptions::default()
    };
    let export = s.export(Vec::new(), opts).await.unwrap();
    assert!(
        export.len() > big.len(),
        "the blob streamed out of the bucket"
    );

    // Delete, purge at once, collect: the object leaves the bucket.
    s.delete("blob", who()).await.unwrap();
    s.set_retention(Some(Duration::ZERO)).await.unwrap();
    let report = s
        .gc(GcOptions {
            grace: Duration::ZERO,
            ..GcOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(report.objects_removed, 1, "{report:?}");
    assert!(!bucket.exists(&obj.id).unwrap());

    // Reopen through a new manager; a read-only handle works next to the owner.
    drop(s);
    drop(m);
    let m = StoreManager::new_with(dir.path(), ObjectsConfig::S3(cfg.clone())).unwrap();
    let s = m.open("reg").await.unwrap();
    assert_eq!(s.read("small").await.unwrap(), b"inline");
    let ro = m.open_read_only("reg").unwrap();
    assert!(ro.verify().await.unwrap().is_ok());

    // A store is bound to its backend: the files manager refuses it, and the other way round.
    drop(s);
    let err = StoreManager::new(dir.path()).open("reg").await.unwrap_err();
    assert!(matches!(err, StorageError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("objects = \"s3\""), "{err}");
    StoreManager::new(dir.path()).open("files").await.unwrap();
    let err = m.open("files").await.unwrap_err();
    assert!(err.to_string().contains("objects = \"file\""), "{err}");

    // An unreachable endpoint fails at construction with one line naming the bucket.
    let mut dead = cfg;
    dead.endpoint = "http://127.0.0.1:9".into();
    let err = StoreManager::new_with(dir.path(), ObjectsConfig::S3(dead)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("bucket everlock at http://127.0.0.1:9"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
}

/// Upload files are moved into the spool, not copied, and publish their bytes whole: small
/// (one conditional put) and large (multipart).
#[test]
fn s3_adopts_upload_files_by_moving_them() {
    let Some(server) = seaweedfs::SeaweedFs::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let objs = S3Objects::open(&config(&server, "adopt/"), &dir.path().join("tmp")).unwrap();
    for len in [1000, 9 * 1024 * 1024 + 5] {
        let data = pattern(len);
        let id = crate::digest::ObjectId(*blake3::hash(&data).as_bytes());
        let session = dir.path().join(format!("upload-{len}"));
        std::fs::write(&session, &data).unwrap();
        let temp = objs.adopt(session.clone()).unwrap();
        assert!(!session.exists(), "the file was moved");
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            1
        );
        objs.publish(temp, &id).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "the spool file is gone after publish"
        );
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut objs.open(&id).unwrap(), &mut back).unwrap();
        assert!(back == data, "{len} bytes came back different");
    }
}
