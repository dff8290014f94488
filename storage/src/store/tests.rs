//! Tests of the store: staging, commits, reads, history and concurrency through `Store`.

use std::fs;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::*;
use crate::types::Expected;
use crate::{Digest, StageOptions};

fn who() -> CommitMeta {
    CommitMeta::new("alice", "test")
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_dir(dir.path().join("s")).await.unwrap();
    (dir, s)
}

#[tokio::test]
async fn write_read_delete_and_history() {
    let (_d, s) = store().await;
    let c1 = s.write("a/x", b"one".to_vec(), who()).await.unwrap();
    let c2 = s
        .write("a/x", b"two".to_vec(), CommitMeta::new("bob", "second"))
        .await
        .unwrap();
    assert_eq!((c1.seq, c2.seq), (1, 2));
    assert_eq!(c2.parent, Some(c1.id));
    assert_eq!(s.read("a/x").await.unwrap(), b"two");
    assert_eq!(s.read_at("a/x", c1.id).await.unwrap(), b"one");
    let c3 = s.delete("a/x", who()).await.unwrap();
    assert!(matches!(
        s.read("a/x").await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        s.read_at("a/x", c3.id).await,
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(s.read_at("a/x", c2.id).await.unwrap(), b"two");
    assert!(matches!(
        s.delete("a/x", who()).await,
        Err(StorageError::NotFound(_))
    ));
    let h = s.history("a/x").await.unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[1].commit.principal, "bob");
    assert_eq!(h[1].commit.message, "second");
    assert!(h[2].content.is_none());
    assert_eq!(s.head().await.unwrap().unwrap().id, c3.id);
    assert_eq!(
        s.log(10)
            .await
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    assert!(matches!(
        s.read_at("a/x", CommitId([9; 32])).await,
        Err(StorageError::UnknownCommit(_))
    ));
}

#[tokio::test]
async fn batch_is_atomic_and_preconditions_compare_and_swap() {
    let (_d, s) = store().await;
    let c1 = s
        .commit(
            vec![
                Op::PutBytes {
                    path: "a".into(),
                    bytes: b"1".to_vec(),
                },
                Op::PutBytes {
                    path: "b".into(),
                    bytes: b"2".to_vec(),
                },
            ],
            vec![Precondition {
                path: "a".into(),
                expected: Expected::Absent,
            }],
            who(),
        )
        .await
        .unwrap();
    // The delete of a missing path fails the whole batch: "c" must not appear.
    let err = s
        .commit(
            vec![
                Op::PutBytes {
                    path: "c".into(),
                    bytes: vec![],
                },
                Op::Delete { path: "zz".into() },
            ],
            vec![],
            who(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound(_)));
    assert!(s.stat("c").await.unwrap().is_none());
    let stale = Precondition {
        path: "a".into(),
        expected: Expected::Version(c1.seq + 5),
    };
    let err = s
        .commit(vec![Op::Delete { path: "b".into() }], vec![stale], who())
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Conflict { .. }), "{err}");
    assert!(s.stat("b").await.unwrap().is_some());
    let a = s.stat("a").await.unwrap().unwrap();
    let ok = [
        Precondition {
            path: "a".into(),
            expected: Expected::Version(a.version),
        },
        Precondition {
            path: "b".into(),
            expected: Expected::Object(s.stat("b").await.unwrap().unwrap().object),
        },
    ];
    s.commit(vec![Op::Delete { path: "b".into() }], ok.to_vec(), who())
        .await
        .unwrap();
    assert_eq!(s.list("").await.unwrap().len(), 1);
    for bad in [vec![], vec![Op::Delete { path: "/x".into() }]] {
        assert!(matches!(
            s.commit(bad, vec![], who()).await,
            Err(StorageError::Invalid { .. })
        ));
    }
    let dup = vec![
        Op::Delete { path: "a".into() },
        Op::PutBytes {
            path: "a".into(),
            bytes: vec![],
        },
    ];
    assert!(matches!(
        s.commit(dup, vec![], who()).await,
        Err(StorageError::Invalid { .. })
    ));
}

#[tokio::test]
async fn list_by_prefix_now_and_then() {
    let (_d, s) = store().await;
    for p in ["a/1", "a/2", "a0", "b/1", "a/\u{10FFFD}"] {
        s.write(p, p.as_bytes().to_vec(), who()).await.unwrap();
    }
    let mid = s.head().await.unwrap().unwrap();
    s.delete("a/1", who()).await.unwrap();
    let now: Vec<_> = s
        .list("a/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(now, vec!["a/2", "a/\u{10FFFD}"]);
    let then: Vec<_> = s
        .list_at("a/", mid.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(then, vec!["a/1", "a/2", "a/\u{10FFFD}"]);
    assert_eq!(s.list("").await.unwrap().len(), 4);
}

#[tokio::test]
async fn stage_checks_digests_streams_and_dedupes() {
    let (_d, s) = store().await;
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sha = crate::hashing::digest_bytes(&data).sha256;
    let obj = s.stage(&data[..], Some(Digest::Sha256(sha))).await.unwrap();
    assert_eq!(obj.size, data.len() as u64);
    let again = s
        .stage_with(
            &data[..],
            StageOptions {
                expect: None,
                sha512: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(again.id, obj.id);
    assert!(again.sha512.is_some());
    let err = s
        .stage(&b"other"[..], Some(Digest::Sha256(sha)))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::DigestMismatch { .. }), "{err}");
    assert_eq!(
        fs::read_dir(s.dir().join("tmp")).unwrap().count(),
        0,
        "mismatch leaves no temp file"
    );
    s.commit(
        vec![Op::Put {
            path: "big".into(),
            object: obj.clone(),
        }],
        vec![],
        who(),
    )
    .await
    .unwrap();
    let mut c = s.open("big").await.unwrap();
    assert_eq!(c.len(), data.len() as u64);
    let mut all = Vec::new();
    c.read_to_end(&mut all).await.unwrap();
    assert!(all == data);
    let mut part = Vec::new();
    s.open("big")
        .await
        .unwrap()
        .range(1_000_000, 10)
        .await
        .unwrap()
        .read_to_end(&mut part)
        .await
        .unwrap();
    assert_eq!(part, &data[1_000_000..1_000_010]);
    let mut c = s.open("big").await.unwrap();
    c.seek(std::io::SeekFrom::End(-3)).await.unwrap();
    let mut tail = Vec::new();
    c.read_to_end(&mut tail).await.unwrap();
    assert_eq!(tail, &data[data.len() - 3..]);
    // Large PutBytes goes to a file too, and dedupes with the staged object.
    s.write("big2", data.clone(), who()).await.unwrap();
    assert_eq!(s.stat("big2").await.unwrap().unwrap().object, obj.id);
    assert_eq!(s.inner.objects.list().unwrap().len(), 1);
    let mut small = Vec::new();
    s.write("s", b"tiny".to_vec(), who()).await.unwrap();
    s.open("s")
        .await
        .unwrap()
        .read_to_end(&mut small)
        .await
        .unwrap();
    assert_eq!(small, b"tiny");
}

#[tokio::test]
async fn a_failing_reader_leaves_nothing_behind() {
    struct Failing(u32);
    impl AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.0 += 1;
            if self.0 > 3 {
                return std::task::Poll::Ready(Err(std::io::Error::other("client went away")));
            }
            buf.put_slice(&[7; 100_000]);
            std::task::Poll::Ready(Ok(()))
        }
    }
    let (_d, s) = store().await;
    assert!(matches!(
        s.stage(Failing(0), None).await,
        Err(StorageError::Io(_))
    ));
    assert_eq!(fs::read_dir(s.dir().join("tmp")).unwrap().count(), 0);
    assert!(s.inner.objects.list().unwrap().is_empty());
}

#[tokio::test]
async fn reopen_cleans_tmp_and_fails_loudly_on_a_missing_object() {
    let (d, s) = store().await;
    let data = vec![5u8; INLINE_MAX + 1];
    s.write("f", data.clone(), who()).await.unwrap();
    let id = s.stat("f").await.unwrap().unwrap().object;
    let path = s.inner.objects.path_of(&id).unwrap();
    drop(s);
    fs::write(d.path().join("s/tmp/leftover"), b"partial").unwrap();
    let s = Store::open_dir(d.path().join("s")).await.unwrap();
    assert_eq!(fs::read_dir(d.path().join("s/tmp")).unwrap().count(), 0);
    assert_eq!(s.read("f").await.unwrap(), data);
    drop(s);
    fs::remove_file(path).unwrap();
    let err = Store::open_dir(d.path().join("s")).await.unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains(&id.to_hex()));
}

#[tokio::test]
async fn head_seq_follows_durable_commits_and_survives_reopen() {
    let (d, s) = store().await;
    assert_eq!(s.head_seq(), 0);
    s.write("a", b"1".to_vec(), who()).await.unwrap();
    s.write("b", b"2".to_vec(), who()).await.unwrap();
    assert_eq!(s.head_seq(), 2);
    // A failed commit does not move it.
    assert!(s.delete("missing", who()).await.is_err());
    assert_eq!(s.head_seq(), 2);
    assert_eq!(s.head().await.unwrap().unwrap().seq, s.head_seq());
    drop(s);
    let s = Store::open_dir(d.path().join("s")).await.unwrap();
    assert_eq!(s.head_seq(), 2);
}

#[tokio::test]
async fn read_refuses_huge_content_and_rejects_bad_format() {
    let (d, s) = store().await;
    let entry = Entry {
        path: "x".into(),
        version: 1,
        object: crate::ObjectId([0; 32]),
        sha256: crate::Sha256([0; 32]),
        size: READ_MAX + 1,
    };
    assert!(matches!(
        s.inner.read_entry(&entry),
        Err(StorageError::TooLarge { .. })
    ));
    drop(s);
    fs::write(d.path().join("s/FORMAT"), "everlock-store 99\n").unwrap();
    assert!(matches!(
        Store::open_dir(d.path().join("s")).await,
        Err(StorageError::Corrupt(_))
    ));
}
