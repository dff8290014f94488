//! Tests of resumable upload sessions.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::*;
use crate::hashing::MultiHasher;
use crate::types::{CommitMeta, Op};

async fn store(dir: &Path) -> Store {
    Store::open_dir(dir.join("s")).await.unwrap()
}

fn sha256(data: &[u8]) -> Digest {
    Digest::Sha256(crate::hashing::digest_bytes(data).sha256)
}

#[tokio::test]
async fn chunks_resume_after_restart_and_finish_into_an_object() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
    let up = s
        .upload_start("repo/a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(up.offset, 0);
    let first = s
        .upload_append(&up.id, Some(0), &data[..1_000_000])
        .await
        .unwrap();
    assert_eq!(first.offset, 1_000_000);
    // A chunk at the wrong offset is a conflict and changes nothing.
    assert!(matches!(
        s.upload_append(&up.id, Some(5), &data[..10]).await,
        Err(StorageError::Conflict { .. })
    ));
    drop(s);
    // Simulate a crash in the middle of an append: bytes past the offset are debris.
    let mut f = OpenOptions::new()
        .append(true)
        .open(d.path().join("s/uploads").join(&up.id))
        .unwrap();
    f.write_all(b"garbage").unwrap();
    drop(f);
    fs::write(d.path().join("s/uploads/orphan"), b"x").unwrap();
    let s = store(d.path()).await;
    assert!(!d.path().join("s/uploads/orphan").exists());
    let again = s.upload_session(&up.id).await.unwrap().unwrap();
    assert_eq!(again.offset, 1_000_000);
    assert_eq!(again.path, "repo/a");
    s.upload_append(&up.id, None, &data[1_000_000..])
        .await
        .unwrap();
    let wrong = s.upload_finish(&up.id, Some(sha256(b"nope"))).await;
    assert!(matches!(wrong, Err(StorageError::DigestMismatch { .. })));
    assert!(
        s.upload_session(&up.id).await.unwrap().is_none(),
        "discarded"
    );

    let up = s
        .upload_start("repo/a", Duration::from_secs(60))
        .await
        .unwrap();
    s.upload_append(&up.id, Some(0), &data[..]).await.unwrap();
    let obj = s.upload_finish(&up.id, Some(sha256(&data))).await.unwrap();
    assert_eq!(obj.size, data.len() as u64);
    s.commit(
        vec![Op::Put {
            path: "blob".into(),
            object: obj,
        }],
        vec![],
        CommitMeta::new("t", "t"),
    )
    .await
    .unwrap();
    assert!(s.read("blob").await.unwrap() == data);
    assert_eq!(fs::read_dir(d.path().join("s/uploads")).unwrap().count(), 0);
    assert!(s.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn sha512_after_restart_cancel_and_expiry() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let up = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    s.upload_append(&up.id, None, &b"hello "[..]).await.unwrap();
    s.upload_append(&up.id, Some(6), &b"world"[..])
        .await
        .unwrap();
    let mut h = MultiHasher::new(true);
    h.update(b"hello world");
    let want = h.finish().sha512.unwrap();
    let obj = s
        .upload_finish(&up.id, Some(Digest::Sha512(want)))
        .await
        .unwrap();
    assert_eq!(obj.sha512, Some(want));

    let gone = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    assert!(s.upload_cancel(&gone.id).await.unwrap());
    assert!(!s.upload_cancel(&gone.id).await.unwrap());
    assert!(matches!(
        s.upload_append(&gone.id, None, &b"x"[..]).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(s.upload_session("../../etc").await.unwrap().is_none());

    let short = s.upload_start("r", Duration::from_millis(1)).await.unwrap();
    let keep = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(s.upload_session(&short.id).await.unwrap().is_none());
    assert_eq!(s.expire_uploads().await.unwrap(), 1);
    let left: Vec<_> = s
        .uploads()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(left, vec![keep.id.clone()]);
    assert_eq!(fs::read_dir(d.path().join("s/uploads")).unwrap().count(), 1);
}

/// A reader that fails like a connection reset once its data is exhausted.
struct Reset;

impl AsyncRead for Reset {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::Error::other("connection reset")))
    }
}

fn live_slots(s: &Store) -> usize {
    s.inner.uploads.live.lock().unwrap().len()
}

fn files_in(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn unknown_ids_leave_no_state_behind() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    for i in 0..50u32 {
        // Well-formed ids that were never issued, as an attacker would guess them.
        let ghost = format!("{i:032x}");
        assert!(matches!(
            s.upload_append(&ghost, None, &b"x"[..]).await,
            Err(StorageError::NotFound(_))
        ));
        assert!(matches!(
            s.upload_append(&ghost, Some(0), &b"x"[..]).await,
            Err(StorageError::NotFound(_))
        ));
        assert!(matches!(
            s.upload_finish(&ghost, None).await,
            Err(StorageError::NotFound(_))
        ));
        assert!(!s.upload_cancel(&ghost).await.unwrap());
        assert!(s.upload_session(&ghost).await.unwrap().is_none());
    }
    assert_eq!(live_slots(&s), 0, "no in-memory slot for unknown ids");
    assert!(s.uploads().await.unwrap().is_empty(), "no rows");
    assert_eq!(files_in(&d.path().join("s/uploads")), 0, "no files");

    // A finished or cancelled session is unknown too, and gives its slot back.
    let up = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    s.upload_append(&up.id, None, &b"abc"[..]).await.unwrap();
    assert_eq!(live_slots(&s), 1);
    assert!(s.upload_cancel(&up.id).await.unwrap());
    assert!(s.upload_append(&up.id, None, &b"x"[..]).await.is_err());
    assert_eq!(live_slots(&s), 0);
}

#[tokio::test]
async fn open_sessions_are_capped_per_label() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let ttl = Duration::from_secs(60);
    let a = s.upload_start_limited("repo/a", ttl, 2).await.unwrap();
    s.upload_start_limited("repo/a", ttl, 2).await.unwrap();
    let err = s.upload_start_limited("repo/a", ttl, 2).await.unwrap_err();
    assert!(
        matches!(err, StorageError::TooManyUploads { ref path, limit: 2 } if path == "repo/a"),
        "{err}"
    );
    // The refusal created nothing; other labels have their own budget.
    assert_eq!(files_in(&d.path().join("s/uploads")), 2);
    assert_eq!(s.uploads().await.unwrap().len(), 2);
    s.upload_start_limited("repo/b", ttl, 2).await.unwrap();
    // Ending a session frees its place, and expired sessions do not count.
    assert!(s.upload_cancel(&a.id).await.unwrap());
    let short = s
        .upload_start_limited("repo/a", Duration::from_millis(1), 2)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(s.upload_session(&short.id).await.unwrap().is_none());
    s.upload_start_limited("repo/a", ttl, 2).await.unwrap();
    assert!(s.upload_start_limited("repo/a", ttl, 2).await.is_err());

    // Concurrent starts never exceed the limit.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.upload_start_limited("repo/c", Duration::from_secs(60), 5)
                .await
                .is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_append_is_cut_back_to_the_durable_offset_at_once() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let up = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    s.upload_append(&up.id, None, &b"hello"[..]).await.unwrap();
    // More than one chunk reaches the file before the body breaks.
    let data = vec![7u8; 3 * 1024 * 1024 + 17];
    let err = s
        .upload_append(
            &up.id,
            Some(5),
            tokio::io::AsyncReadExt::chain(&data[..], Reset),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Io(_)), "{err}");
    let file = d.path().join("s/uploads").join(&up.id);
    assert_eq!(
        fs::metadata(&file).unwrap().len(),
        5,
        "partial bytes dropped"
    );
    let again = s.upload_session(&up.id).await.unwrap().unwrap();
    assert_eq!(again.offset, 5);
    s.upload_append(&up.id, Some(5), &b" world"[..])
        .await
        .unwrap();
    let obj = s
        .upload_finish(&up.id, Some(sha256(b"hello world")))
        .await
        .unwrap();
    assert_eq!(obj.size, 11);
}
