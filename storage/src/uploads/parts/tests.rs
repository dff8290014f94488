//! The parts code path on a single-node store (forced), where each node-local state can be
//! dropped at will to stand for "the next request reached another node". The same code on
//! PostgreSQL and SeaweedFS with three managers is `storage/tests/uploads_shared.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::types::{CommitMeta, Op};

async fn store(dir: &Path) -> Store {
    let s = Store::open_dir(dir.join("s")).await.unwrap();
    s.inner.uploads.force_parts();
    s
}

fn sha256(data: &[u8]) -> Digest {
    Digest::Sha256(crate::hashing::digest_bytes(data).sha256)
}

fn stored_parts(s: &Store) -> Vec<PartKey> {
    s.inner
        .objects
        .list_parts()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

fn data(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(7) % 251) as u8)
        .collect()
}

/// Appends through "different nodes" (the running hash dropped in between), finish, and the
/// bytes and digest of the object; nothing of the session is left afterwards.
#[tokio::test]
async fn parts_append_resume_and_finish_into_an_object() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let bytes = data(3_500_000);
    let up = s
        .upload_start("repo/a", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        !d.path().join("s/uploads").join(&up.id).exists(),
        "no local file"
    );
    let first = s
        .upload_append(&up.id, Some(0), &bytes[..1_000_000])
        .await
        .unwrap();
    assert_eq!(first.offset, 1_000_000);
    assert!(matches!(
        s.upload_append(&up.id, Some(5), &bytes[..10]).await,
        Err(StorageError::Conflict { .. })
    ));
    // Another node continues: it has no running hash.
    s.inner.uploads.forget(&up.id);
    s.upload_append(&up.id, Some(1_000_000), &bytes[1_000_000..3_000_000])
        .await
        .unwrap();
    s.upload_append(&up.id, None, &b""[..]).await.unwrap();
    s.upload_append(&up.id, None, &bytes[3_000_000..])
        .await
        .unwrap();
    assert_eq!(stored_parts(&s).len(), 3, "an empty append stores no part");
    s.inner.uploads.forget(&up.id);
    let wrong = s.upload_finish(&up.id, Some(sha256(b"nope"))).await;
    assert!(matches!(wrong, Err(StorageError::DigestMismatch { .. })));
    assert!(
        s.upload_session(&up.id).await.unwrap().is_none(),
        "discarded"
    );
    assert!(stored_parts(&s).is_empty(), "with its parts");

    for forget in [false, true] {
        let up = s
            .upload_start("repo/a", Duration::from_secs(60))
            .await
            .unwrap();
        s.upload_append(&up.id, None, &bytes[..2_000_000])
            .await
            .unwrap();
        s.upload_append(&up.id, None, &bytes[2_000_000..])
            .await
            .unwrap();
        if forget {
            s.inner.uploads.forget(&up.id);
        }
        let obj = s.upload_finish(&up.id, Some(sha256(&bytes))).await.unwrap();
        assert_eq!(obj.size, bytes.len() as u64);
        s.commit(
            vec![Op::Put {
                path: format!("blob{forget}"),
                object: obj,
            }],
            vec![],
            CommitMeta::new("t", "m"),
        )
        .await
        .unwrap();
        assert!(s.read(&format!("blob{forget}")).await.unwrap() == bytes);
        assert!(stored_parts(&s).is_empty());
        assert!(s.uploads().await.unwrap().is_empty());
    }
}

/// Two appends at one offset, the second with the row it read before the first one moved it
/// (as on a second node): it loses the compare-and-swap, gets the offset conflict, and deletes
/// its own part only.
#[tokio::test]
async fn the_loser_of_an_offset_race_deletes_only_its_own_part() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let up = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    let row = s.live_session_row(&up.id).await.unwrap().unwrap();
    let mut none = None;
    append(&s, row.clone(), &mut none, &b"winner"[..])
        .await
        .unwrap();
    let err = append(&s, row, &mut none, &b"loser!"[..])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StorageError::Conflict { found, .. } if found == "offset 6"),
        "{err}"
    );
    assert_eq!(stored_parts(&s).len(), 1);
    let obj = s
        .upload_finish(&up.id, Some(sha256(b"winner")))
        .await
        .unwrap();
    assert_eq!(obj.size, 6);
}

/// Cancel and expiry delete the parts; the sweep deletes old parts that no row names and
/// leaves young ones (an append between storing and recording its part) alone.
#[tokio::test]
async fn cancel_expiry_and_the_orphan_sweep_delete_parts() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let up = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    s.upload_append(&up.id, None, &b"abc"[..]).await.unwrap();
    assert!(s.upload_cancel(&up.id).await.unwrap());
    assert!(!s.upload_cancel(&up.id).await.unwrap());
    assert!(stored_parts(&s).is_empty());

    let short = s
        .upload_start("r", Duration::from_millis(300))
        .await
        .unwrap();
    s.upload_append(&short.id, None, &b"abc"[..]).await.unwrap();
    let kept = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    s.upload_append(&kept.id, None, &b"def"[..]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;

    // Debris of appends that died before recording their part: one old, one young.
    let put = |key: &PartKey| {
        let mut t = s.inner.objects.create_temp().unwrap();
        t.write_all(b"debris").unwrap();
        t.sync().unwrap();
        s.inner.objects.put_part(key, t).unwrap();
    };
    let old = PartKey::new(&kept.id, 3).unwrap();
    let young = PartKey::new(&kept.id, 3).unwrap();
    put(&old);
    put(&young);
    let file = d.path().join("s/uploads").join(&kept.id).join(old.name());
    let long_ago = SystemTime::now() - Duration::from_millis(2 * ORPHAN_GRACE_MS as u64);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    assert_eq!(s.expire_uploads().await.unwrap(), 1);
    let left = stored_parts(&s);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&young) && !left.contains(&old));
    let obj = s
        .upload_finish(&kept.id, Some(sha256(b"def")))
        .await
        .unwrap();
    assert_eq!(obj.size, 3);
    assert_eq!(stored_parts(&s), [young], "only the young orphan is left");
}

/// A session this node appended to but another node finished leaves no slot here once the
/// next expiry run sees its row gone.
#[tokio::test]
async fn slots_of_sessions_ended_elsewhere_are_dropped() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path()).await;
    let up = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    let other = s.upload_start("r", Duration::from_secs(60)).await.unwrap();
    s.upload_append(&up.id, None, &b"abc"[..]).await.unwrap();
    s.upload_append(&other.id, None, &b"abc"[..]).await.unwrap();
    assert_eq!(s.inner.uploads.live.lock().unwrap().len(), 2);
    // "Another node" ends the session: only its row goes, this node's slot stays behind.
    let id = up.id.clone();
    s.blocking(move |inner| end(inner, &id, None))
        .await
        .unwrap();
    assert_eq!(s.inner.uploads.live.lock().unwrap().len(), 2);
    assert_eq!(s.expire_uploads().await.unwrap(), 0);
    let live = s.inner.uploads.live.lock().unwrap();
    assert_eq!(live.keys().collect::<Vec<_>>(), [&other.id]);
}

/// The figures behind keeping the local file for single-node stores: a 256 MiB upload in eight
/// 32 MiB appends, then finish, on the local-file path and on the parts path (files backend).
/// `cargo test -p everlock-storage --lib upload_256_mib -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn upload_256_mib_local_file_vs_parts() {
    const MIB: usize = 1024 * 1024;
    let chunk = data(32 * MIB);
    for parts in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open_dir(d.path().join("s")).await.unwrap();
        if parts {
            s.inner.uploads.force_parts();
        }
        let started = std::time::Instant::now();
        let up = s.upload_start("r", Duration::from_secs(600)).await.unwrap();
        for _ in 0..8 {
            s.upload_append(&up.id, None, &chunk[..]).await.unwrap();
        }
        let appended = started.elapsed();
        let obj = s.upload_finish(&up.id, None).await.unwrap();
        let total = started.elapsed();
        assert_eq!(obj.size, 256 * MIB as u64);
        eprintln!(
            "UPLOAD 256 MiB ({}): appends {:.2} s, finish {:.2} s, total {:.2} s ({:.0} MiB/s)",
            if parts { "parts" } else { "local file" },
            appended.as_secs_f64(),
            (total - appended).as_secs_f64(),
            total.as_secs_f64(),
            256.0 / total.as_secs_f64()
        );
    }
}
