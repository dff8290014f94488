//! One conformance suite for every [`ObjectBackend`]: the files backend and the S3 backend
//! against a real SeaweedFS (tests/support/seaweedfs.rs) must behave the same.
//!
//! Each backend runs every case in one test so that a single SeaweedFS serves them all; every
//! case gets a fresh backend (for S3 a fresh key prefix in the shared bucket, which also
//! proves that prefixes isolate deployments).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

#[path = "../../tests/support/seaweedfs.rs"]
mod seaweedfs;

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use super::s3::{S3Config, S3Objects};
use super::{FsObjects, ObjectBackend, PartKey, Published, TempObject};
use crate::digest::ObjectId;

fn id_of(bytes: &[u8]) -> ObjectId {
    ObjectId(*blake3::hash(bytes).as_bytes())
}

/// Deterministic, incompressible-enough bytes: `len` of them from `seed`.
fn pattern(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let x = (offset + i).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
            (x >> 29) as u8
        })
        .collect()
}

fn publish<B: ObjectBackend>(b: &B, bytes: &[u8]) -> (ObjectId, Published) {
    let id = id_of(bytes);
    let mut t = b.create_temp().unwrap();
    t.write_all(bytes).unwrap();
    t.sync().unwrap();
    (id, b.publish(t, &id).unwrap())
}

fn read_all<B: ObjectBackend>(b: &B, id: &ObjectId) -> Vec<u8> {
    let mut out = Vec::new();
    b.open(id).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// create_temp, write, sync, publish, open, exists, remove, list, clean_temp, and dedupe.
fn lifecycle<B: ObjectBackend>(b: &B) {
    let (id, first) = publish(b, b"hello");
    assert_eq!(first, Published::New);
    let (_, second) = publish(b, b"hello");
    assert_eq!(second, Published::AlreadyPresent, "publish twice dedupes");
    assert_eq!(read_all(b, &id), b"hello");
    assert!(b.exists(&id).unwrap());
    let (empty, _) = publish(b, b"");
    assert_eq!(read_all(b, &empty), b"");

    let mut listed: Vec<ObjectId> = b.list().unwrap().into_iter().map(|(i, _)| i).collect();
    listed.sort();
    let mut want = vec![id, empty];
    want.sort();
    assert_eq!(listed, want);

    // A discarded or abandoned temp object leaves nothing behind and publishes nothing.
    let mut t = b.create_temp().unwrap();
    t.write_all(b"never published").unwrap();
    t.discard();
    assert!(!b.exists(&id_of(b"never published")).unwrap());
    assert_eq!(b.clean_temp().unwrap(), 0);
    let _left = b.create_temp().unwrap();
    assert_eq!(b.clean_temp().unwrap(), 1);

    assert!(b.remove(&id).unwrap());
    assert!(!b.remove(&id).unwrap());
    assert!(!b.exists(&id).unwrap());
    let missing = b.open(&id).err().expect("opening a removed object fails");
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    assert_eq!(b.list().unwrap().len(), 1);
}

/// Seeks and reads across an object larger than the S3 read window.
fn seek_read<B: ObjectBackend>(b: &B) {
    let len = 9 * 1024 * 1024 + 17;
    let bytes = pattern(7, 0, len);
    let (id, _) = publish(b, &bytes);
    let mut r = b.open(&id).unwrap();
    let cases: [(SeekFrom, usize); 6] = [
        (SeekFrom::Start(0), 10),
        (SeekFrom::Start(4 * 1024 * 1024 - 3), 10),
        (SeekFrom::End(-5), 100),
        (SeekFrom::Current(-20), 7),
        (SeekFrom::Start(123_456), 5 * 1024 * 1024),
        (SeekFrom::Start(len as u64 + 10), 10),
    ];
    for (to, want) in cases {
        let pos = r.seek(to).unwrap() as usize;
        let mut got = Vec::new();
        (&mut r).take(want as u64).read_to_end(&mut got).unwrap();
        let end = (pos + want).min(len).max(pos.min(len));
        assert_eq!(got, bytes[pos.min(len)..end], "read at {pos}");
    }
    assert!(r.seek(SeekFrom::End(-(len as i64) - 1)).is_err());
}

/// Eight publishers of the same id at the same moment: exactly one `New`.
fn concurrent_publish<B: ObjectBackend>(b: Arc<B>) {
    let bytes = pattern(3, 0, 100_000);
    let id = id_of(&bytes);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (b, bytes, barrier) = (b.clone(), bytes.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut t = b.create_temp().unwrap();
                t.write_all(&bytes).unwrap();
                t.sync().unwrap();
                barrier.wait();
                b.publish(t, &id).unwrap()
            })
        })
        .collect();
    let outcomes: Vec<Published> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let new = outcomes.iter().filter(|o| **o == Published::New).count();
    assert_eq!(new, 1, "{outcomes:?}");
    assert_eq!(read_all(&*b, &id), bytes);
}

/// Peak resident memory so far (VmHWM), after resetting it; `None` where Linux cannot reset.
fn reset_peak_rss() -> Option<()> {
    std::fs::write("/proc/self/clear_refs", "5").ok()
}

fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A 64 MiB object (multipart on S3) written and read back in 1 MiB chunks: the bytes round
/// trip, and neither side ever holds the whole object. Prints the throughput.
fn large_object<B: ObjectBackend>(b: &B, name: &str) {
    const MIB: usize = 1024 * 1024;
    let total = 64 * MIB;
    let before = reset_peak_rss().and_then(|()| peak_rss());
    let mut hasher = blake3::Hasher::new();
    // Timed from the first write: the files backend does its work (and fdatasync) there.
    let started = Instant::now();
    let mut t = b.create_temp().unwrap();
    for i in 0..64 {
        let chunk = pattern(11, (i * MIB) as u64, MIB);
        hasher.update(&chunk);
        t.write_all(&chunk).unwrap();
    }
    t.sync().unwrap();
    let id = ObjectId(*hasher.finalize().as_bytes());
    let publishing = Instant::now();
    assert_eq!(b.publish(t, &id).unwrap(), Published::New);
    let publish_only_s = publishing.elapsed().as_secs_f64();
    let publish_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut r = b.open(&id).unwrap();
    let mut back = blake3::Hasher::new();
    let mut buf = vec![0u8; MIB];
    let mut read = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        back.update(&buf[..n]);
        read += n;
    }
    let open_s = started.elapsed().as_secs_f64();
    assert_eq!(read, total);
    assert_eq!(ObjectId(*back.finalize().as_bytes()), id);
    let after = peak_rss();
    let grown = before.zip(after).map(|(b, a)| a.saturating_sub(b));
    eprintln!(
        "THROUGHPUT {name}: stage+publish 64 MiB {:.0} MiB/s (publish alone {:.2} s), \
         read {:.0} MiB/s, peak RSS growth {:?} MiB",
        64.0 / publish_s,
        publish_only_s,
        64.0 / open_s,
        grown.map(|g| g / MIB as u64)
    );
    if let Some(grown) = grown {
        // Holding the object would need 64 MiB; other tests in this process share the figure,
        // so the bound is the object size, not the ~26 MiB the upload actually buffers.
        assert!(grown < total as u64, "peak RSS grew by {grown} bytes");
    }
    // Publishing it again is a dedupe hit without a second upload.
    let mut again = b.create_temp().unwrap();
    again.write_all(&vec![0u8; 9 * MIB]).unwrap();
    assert_eq!(b.publish(again, &id).unwrap(), Published::AlreadyPresent);
}

fn put_part<B: ObjectBackend>(b: &B, part: &PartKey, bytes: &[u8]) {
    let mut t = b.create_temp().unwrap();
    t.write_all(bytes).unwrap();
    t.sync().unwrap();
    b.put_part(part, t).unwrap();
}

fn read_part<B: ObjectBackend>(b: &B, part: &PartKey) -> Vec<u8> {
    let mut out = Vec::new();
    b.open_part(part).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Upload session parts: put (small, empty and multipart-sized), open, list, remove; parts of
/// one offset with different tags never touch each other, and parts are not objects.
fn parts<B: ObjectBackend>(b: &B) {
    let s1 = "0123456789abcdef0123456789abcdef";
    let s2 = "fedcba9876543210fedcba9876543210";
    let big = pattern(5, 0, 9 * 1024 * 1024 + 3);
    let a = PartKey::new(s1, 0).unwrap();
    let b1 = PartKey::new(s1, 5).unwrap();
    // A second append racing for offset 5 writes its own part.
    let b2 = PartKey::new(s1, 5).unwrap();
    let c = PartKey::new(s2, 0).unwrap();
    let e = PartKey::new(s2, big.len() as u64).unwrap();
    put_part(b, &a, b"hello");
    put_part(b, &b1, b"world");
    put_part(b, &b2, b"other");
    put_part(b, &c, &big);
    put_part(b, &e, b"");
    assert_eq!(read_part(b, &a), b"hello");
    assert_eq!(read_part(b, &b1), b"world");
    assert_eq!(read_part(b, &b2), b"other");
    assert!(
        read_part(b, &c) == big,
        "a multipart-sized part round trips"
    );
    assert_eq!(read_part(b, &e), b"");
    let mut want = vec![a.clone(), b1.clone(), b2.clone(), c.clone(), e.clone()];
    want.sort();
    let listed: Vec<PartKey> = b
        .list_parts()
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(listed, want);
    assert!(b.list().unwrap().is_empty(), "parts are not objects");
    assert_eq!(
        b.clean_temp().unwrap(),
        0,
        "a stored part left no temp behind"
    );

    // The loser of a race removes only its own part.
    b.remove_parts(std::slice::from_ref(&b2)).unwrap();
    assert_eq!(read_part(b, &b1), b"world");
    let gone = b.open_part(&b2).err().expect("a removed part is gone");
    assert_eq!(gone.kind(), io::ErrorKind::NotFound);
    // Removing is idempotent, and removes whole sessions.
    b.remove_parts(&[a, b1, b2]).unwrap();
    let listed: Vec<PartKey> = b
        .list_parts()
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(listed, [c.clone(), e.clone()]);
    b.remove_parts(&[c, e]).unwrap();
    assert!(b.list_parts().unwrap().is_empty());
}

/// Runs every case, each on a fresh backend from `make`.
fn suite<B: ObjectBackend>(name: &str, make: &mut dyn FnMut() -> B) {
    lifecycle(&make());
    parts(&make());
    seek_read(&make());
    concurrent_publish(Arc::new(make()));
    large_object(&make(), name);
}

#[test]
fn files_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    suite("files", &mut || {
        n += 1;
        let store = dir.path().join(format!("store{n}"));
        std::fs::create_dir(&store).unwrap();
        FsObjects::open(&store).unwrap()
    });
}

fn s3_config(server: &seaweedfs::SeaweedFs, prefix: &str) -> S3Config {
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

#[test]
fn s3_backend_conforms_on_seaweedfs() {
    let Some(server) = seaweedfs::SeaweedFs::start() else {
        return;
    };
    let spool = tempfile::tempdir().unwrap();
    let mut n = 0;
    suite("s3 (SeaweedFS)", &mut || {
        n += 1;
        let objs = S3Objects::open(
            &s3_config(&server, &format!("deploy{n}/")),
            &spool.path().join(format!("spool{n}")),
        )
        .unwrap();
        objs.check().unwrap();
        objs
    });
    s3_bad_settings_fail_clearly(&server);
    s3_from_tokio_blocking_pool(&server);
}

/// Wrong credentials, a missing bucket and plain HTTP without `allow-http` are errors of the
/// right kind at `check`/`open`, not at the first push.
fn s3_bad_settings_fail_clearly(server: &seaweedfs::SeaweedFs) {
    let spool = tempfile::tempdir().unwrap();
    let mut wrong_key = s3_config(server, "");
    wrong_key.secret_access_key = "not-the-secret".into();
    let err = S3Objects::open(&wrong_key, spool.path())
        .unwrap()
        .check()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");

    let mut no_bucket = s3_config(server, "");
    no_bucket.bucket = "no-such-bucket".into();
    assert!(
        S3Objects::open(&no_bucket, spool.path())
            .unwrap()
            .check()
            .is_err()
    );

    let mut http = s3_config(server, "");
    http.allow_http = false;
    let err = S3Objects::open(&http, spool.path()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("allow-http"), "{err}");
}

/// The store calls the backend from tokio's blocking pool, on both runtime flavours.
fn s3_from_tokio_blocking_pool(server: &seaweedfs::SeaweedFs) {
    let spool = tempfile::tempdir().unwrap();
    let objs = Arc::new(S3Objects::open(&s3_config(server, "tokio/"), spool.path()).unwrap());
    for rt in [
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_multi_thread().build().unwrap(),
    ] {
        let objs = objs.clone();
        let got = rt.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let (id, _) = publish(&*objs, b"from the blocking pool");
                read_all(&*objs, &id)
            })
            .await
            .unwrap()
        });
        assert_eq!(got, b"from the blocking pool");
    }
    // The sync-to-async hop costs next to nothing beside a round trip: time small HEADs.
    let id = id_of(b"from the blocking pool");
    let started = Instant::now();
    for _ in 0..200 {
        assert!(objs.exists(&id).unwrap());
    }
    let per_op = started.elapsed() / 200;
    eprintln!("THROUGHPUT s3 (SeaweedFS): exists (HEAD) {per_op:?} per call through the bridge");
}
