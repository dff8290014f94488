//! The conformance suite of the metadata interface: every [`MetaStore`] implementation must
//! pass these tests unchanged. Each test takes a factory producing a fresh, empty store;
//! [`conformance_tests!`] turns the whole suite into `#[test]` functions for one factory, so a
//! new implementation (PostgreSQL) adds one instantiation next to SQLite's at the bottom.
//!
//! The tests speak only the interface: commits with compare-and-swap preconditions, the hash
//! chain (commit ids must be the same as the SQLite format for the same history), history,
//! settings, retention purges, the GC's candidates and re-check, upload session rows, the
//! whole-store walks and snapshot isolation.

use std::any::Any;

use super::api::{MetaStore, read, snapshot};
use super::{CommitRequest, Cutoff, PreparedOp, Resolved, UploadRow};
use crate::digest::ObjectId;
use crate::error::StorageError;
use crate::hashing::{Digests, digest_bytes};
use crate::record::{Record, RecordOp, id_of};
use crate::types::{CommitInfo, CommitMeta, Expected, Precondition};

/// A fresh metadata store and whatever keeps it alive (a temporary directory, a database).
pub(crate) struct Fixture {
    /// The store under test.
    pub(crate) meta: Box<dyn MetaStore>,
    /// Dropped after the test.
    pub(crate) _guard: Box<dyn Any>,
}

/// Produces a fresh, empty store per call.
pub(crate) type Factory = dyn Fn() -> Fixture;

fn who(msg: &str) -> CommitMeta {
    CommitMeta::new("alice", msg)
}

fn put_inline(path: &str, bytes: &[u8]) -> PreparedOp {
    PreparedOp::PutInline {
        path: path.into(),
        digests: digest_bytes(bytes),
        bytes: bytes.to_vec(),
    }
}

fn request(ops: Vec<PreparedOp>, preconditions: Vec<Precondition>) -> CommitRequest {
    CommitRequest {
        ops,
        preconditions,
        meta: who("test"),
    }
}

fn commit(meta: &dyn MetaStore, ops: Vec<PreparedOp>) -> CommitInfo {
    meta.commit(request(ops, vec![])).unwrap()
}

/// Digests of a file object (its bytes are never needed by the metadata).
fn file_digests(seed: u8) -> Digests {
    digest_bytes(&[seed; 100])
}

/// Puts, deletes and compare-and-swap preconditions; a failed commit changes nothing.
pub(crate) fn commits_and_preconditions(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    let c1 = m
        .commit(request(
            vec![put_inline("a/x", b"1"), put_inline("b", b"2")],
            vec![Precondition {
                path: "a/x".into(),
                expected: Expected::Absent,
            }],
        ))
        .unwrap();
    assert_eq!((c1.seq, c1.parent), (1, None));
    let a = read(m, |r| r.head_entry("a/x")).unwrap().unwrap();
    assert_eq!((a.version, a.size), (1, 1));
    let stale = Precondition {
        path: "a/x".into(),
        expected: Expected::Version(7),
    };
    let err = m
        .commit(request(vec![put_inline("c", b"3")], vec![stale]))
        .unwrap_err();
    assert!(matches!(err, StorageError::Conflict { .. }), "{err}");
    let err = m
        .commit(request(
            vec![
                put_inline("c", b"3"),
                PreparedOp::Delete { path: "zz".into() },
            ],
            vec![],
        ))
        .unwrap_err();
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
    let missing = PreparedOp::Put {
        path: "d".into(),
        object: file_digests(1).blake3,
    };
    let err = m.commit(request(vec![missing], vec![])).unwrap_err();
    assert!(matches!(err, StorageError::ObjectMissing(_)), "{err}");
    assert!(read(m, |r| r.head_entry("c")).unwrap().is_none());
    assert_eq!(read(m, |r| r.last_commit()).unwrap().unwrap().seq, 1);
    // The right version and object swap; a staged file object can be referenced.
    let d = file_digests(2);
    m.upsert_object(&d, super::now_ms()).unwrap();
    let ok = vec![
        Precondition {
            path: "a/x".into(),
            expected: Expected::Version(1),
        },
        Precondition {
            path: "b".into(),
            expected: Expected::Object(digest_bytes(b"2").blake3),
        },
    ];
    let ops = vec![
        PreparedOp::Delete { path: "b".into() },
        PreparedOp::Put {
            path: "a/big".into(),
            object: d.blake3,
        },
    ];
    let c2 = m.commit(request(ops, ok)).unwrap();
    assert_eq!((c2.seq, c2.parent), (2, Some(c1.id)));
    let now: Vec<_> = read(m, |r| r.list_head("a/")).unwrap();
    let paths: Vec<_> = now.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a/big", "a/x"]);
    assert_eq!(now.first().map(|e| e.size), Some(100));
    let then = read(m, |r| r.list_at("", 1)).unwrap();
    assert_eq!(then.len(), 2);
    assert!(matches!(
        read(m, |r| r.resolve_at("b", 1)).unwrap(),
        Resolved::Live(_)
    ));
    assert_eq!(read(m, |r| r.resolve_at("b", 2)).unwrap(), Resolved::Absent);
}

/// Commit ids are blake3 of the canonical record, chained by parent, exactly the SQLite
/// format, so the same history has the same ids in every implementation.
pub(crate) fn hash_chain_and_log(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    let mut infos = Vec::new();
    for i in 0..3u8 {
        infos.push(commit(m, vec![put_inline("p", &[i])]));
    }
    infos.push(commit(m, vec![PreparedOp::Delete { path: "p".into() }]));
    let mut parent = None;
    for (i, info) in infos.iter().enumerate() {
        let op = match i {
            3 => RecordOp::Delete { path: "p".into() },
            _ => {
                let d = digest_bytes(&[u8::try_from(i).unwrap()]);
                RecordOp::Put {
                    path: "p".into(),
                    object: d.blake3,
                    size: 1,
                    sha256: d.sha256,
                }
            }
        };
        let record = Record {
            seq: info.seq,
            parent,
            time_ms: info.time_ms,
            principal: "alice".into(),
            message: "test".into(),
            ops: vec![op],
        };
        assert_eq!(record.id(), info.id, "commit {}", info.seq);
        assert_eq!(info.parent, parent);
        parent = Some(info.id);
        assert_eq!(read(m, |r| r.commit_by_id(&info.id)).unwrap(), *info);
    }
    let log = read(m, |r| r.log(2)).unwrap();
    assert_eq!(log.iter().map(|c| c.seq).collect::<Vec<_>>(), [4, 3]);
    assert!(matches!(
        read(m, |r| r.commit_by_id(&crate::CommitId([9; 32]))),
        Err(StorageError::UnknownCommit(_))
    ));
    let mut walked = Vec::new();
    snapshot(m, |r| {
        r.for_each_commit(&mut |row| {
            assert_eq!(id_of(&row.record).as_bytes().as_slice(), row.id.as_slice());
            walked.push(row.seq);
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(walked, [1, 2, 3, 4]);
}

/// History lists every change of a path, deletes included, oldest first.
pub(crate) fn history_of_a_path(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    commit(m, vec![put_inline("h", b"one")]);
    commit(m, vec![put_inline("other", b"x")]);
    commit(m, vec![put_inline("h", b"two")]);
    commit(m, vec![PreparedOp::Delete { path: "h".into() }]);
    let h = read(m, |r| r.history("h")).unwrap();
    assert_eq!(
        h.iter().map(|e| e.commit.seq).collect::<Vec<_>>(),
        [1, 3, 4]
    );
    let first = h.first().and_then(|e| e.content.clone()).unwrap();
    assert_eq!((first.size, first.purged), (3, false));
    assert!(h.last().unwrap().content.is_none());
    assert!(read(m, |r| r.history("never")).unwrap().is_empty());
}

/// Settings: set, replace (removing old keys) and initialise without overwriting.
pub(crate) fn settings(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    assert_eq!(read(m, |r| r.setting("k")).unwrap(), None);
    assert!(m.init_setting("k", "default", &["old"]).unwrap());
    assert!(!m.init_setting("k", "other", &[]).unwrap());
    m.replace_setting("old", "1", &[]).unwrap();
    m.replace_setting("k", "chosen", &["old"]).unwrap();
    assert_eq!(
        read(m, |r| Ok((r.setting("k")?, r.setting("old")?))).unwrap(),
        (Some("chosen".into()), None)
    );
    m.replace_setting("legacy", "5", &[]).unwrap();
    assert!(!m.init_setting("new", "x", &["legacy"]).unwrap());
    assert_eq!(read(m, |r| r.setting("new")).unwrap(), None);
}

/// A purge marks superseded versions purged in one commit that the log records.
pub(crate) fn retention_purge(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    commit(m, vec![put_inline("f", b"old")]);
    commit(m, vec![put_inline("f", b"new"), put_inline("g", b"g")]);
    assert_eq!(
        read(m, |r| r.superseded_before(Cutoff::Seq(1))).unwrap(),
        (0, 0)
    );
    assert_eq!(
        read(m, |r| r.superseded_before(Cutoff::Seq(2))).unwrap(),
        (1, 3)
    );
    let (purge, n, bytes) = m
        .purge_superseded(Cutoff::Seq(2), &who("purge"), super::now_ms())
        .unwrap()
        .unwrap();
    assert_eq!((purge.seq, n, bytes), (3, 1, 3));
    assert_eq!(
        read(m, |r| r.resolve_at("f", 1)).unwrap(),
        Resolved::Purged { version: 1 }
    );
    assert_eq!(read(m, |r| r.version_purged("f", 1)).unwrap(), Some(true));
    assert_eq!(read(m, |r| r.version_purged("f", 2)).unwrap(), Some(false));
    assert_eq!(read(m, |r| r.purged_paths_at(1)).unwrap(), 1);
    assert_eq!(read(m, |r| r.purged_paths_at(2)).unwrap(), 0);
    assert_eq!(
        read(m, |r| r.purged_versions()).unwrap(),
        [("f".to_owned(), 1)]
    );
    // The purge commit changes no path, so it does not count as a changing commit.
    assert_eq!(read(m, |r| r.nth_changing_commit(1)).unwrap(), Some(2));
    assert!(
        m.purge_superseded(Cutoff::Seq(3), &who("again"), super::now_ms())
            .unwrap()
            .is_none()
    );
    let h = read(m, |r| r.history("f")).unwrap();
    assert!(h.first().and_then(|e| e.content.as_ref()).unwrap().purged);
}

/// GC candidates are unreferenced objects past the grace period, and the re-check refuses
/// anything a commit references or that is too young.
pub(crate) fn gc_candidates_and_recheck(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    let t0 = super::now_ms();
    let (loose, kept, inline) = (file_digests(1), file_digests(2), digest_bytes(b"small"));
    m.upsert_object(&loose, t0).unwrap();
    m.upsert_object(&kept, t0).unwrap();
    commit(
        m,
        vec![
            PreparedOp::Put {
                path: "kept".into(),
                object: kept.blake3,
            },
            put_inline("small", b"small"),
        ],
    );
    let later = t0 + 60_000;
    assert_eq!(read(m, |r| r.gc_candidates(later)).unwrap(), [loose.blake3]);
    assert!(read(m, |r| r.gc_candidates(t0)).unwrap().is_empty());
    assert!(
        m.delete_object_if_unreferenced(&kept.blake3, later, false)
            .unwrap()
            .is_none()
    );
    assert!(
        m.delete_object_if_unreferenced(&loose.blake3, t0, false)
            .unwrap()
            .is_none(),
        "too young"
    );
    let dry = m
        .delete_object_if_unreferenced(&loose.blake3, later, true)
        .unwrap()
        .unwrap();
    assert!(dry.is_file && dry.size == 100);
    assert!(m.object_row_now(&loose.blake3).unwrap().is_some());
    m.delete_object_if_unreferenced(&loose.blake3, later, false)
        .unwrap()
        .unwrap();
    assert!(m.object_row_now(&loose.blake3).unwrap().is_none());
    assert!(
        m.delete_object_if_unreferenced(&loose.blake3, later, false)
            .unwrap()
            .is_none()
    );
    // Deleting the path and purging its version makes the inline object collectable.
    commit(
        m,
        vec![PreparedOp::Delete {
            path: "small".into(),
        }],
    );
    m.purge_superseded(Cutoff::Seq(2), &who("purge"), super::now_ms())
        .unwrap()
        .unwrap();
    assert_eq!(
        read(m, |r| r.gc_candidates(later)).unwrap(),
        [inline.blake3]
    );
    let gone = m
        .delete_object_if_unreferenced(&inline.blake3, later, false)
        .unwrap()
        .unwrap();
    assert!(!gone.is_file);
    // A commit referencing a collected object fails instead of dangling.
    let err = m
        .commit(request(
            vec![PreparedOp::Put {
                path: "again".into(),
                object: loose.blake3,
            }],
            vec![],
        ))
        .unwrap_err();
    assert!(matches!(err, StorageError::ObjectMissing(_)), "{err}");
}

fn upload(id: &str, path: &str, now: i64, ttl: i64) -> UploadRow {
    UploadRow {
        id: id.into(),
        path: path.into(),
        started_ms: now,
        offset: 0,
        ttl_ms: ttl,
        lease_until_ms: now + ttl,
    }
}

/// Upload session rows: capped insert, offsets, expiry and deletion.
pub(crate) fn upload_session_rows(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    let now = super::now_ms();
    assert!(
        m.insert_upload_capped(&upload("b1", "p", now, 1000), 2, now)
            .unwrap()
    );
    assert!(
        m.insert_upload_capped(&upload("a1", "p", now, 1000), 2, now)
            .unwrap()
    );
    assert!(
        !m.insert_upload_capped(&upload("c1", "p", now, 1000), 2, now)
            .unwrap()
    );
    assert!(
        m.insert_upload_capped(&upload("c1", "q", now, 1000), 2, now)
            .unwrap()
    );
    assert_eq!(read(m, |r| r.count_live_uploads("p", now)).unwrap(), 2);
    // Expired sessions do not count against the limit.
    assert_eq!(
        read(m, |r| r.count_live_uploads("p", now + 5000)).unwrap(),
        0
    );
    assert!(
        m.insert_upload_capped(&upload("d1", "p", now + 5000, 1000), 2, now + 5000)
            .unwrap()
    );
    m.advance_upload("a1", 4096, now + 9000).unwrap();
    let a = m.upload_row("a1").unwrap().unwrap();
    assert_eq!(
        (a.offset, a.lease_until_ms, a.path.as_str()),
        (4096, now + 9000, "p")
    );
    let ids: Vec<_> = m.all_uploads().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["a1", "b1", "c1", "d1"]);
    assert!(m.delete_upload("b1").unwrap());
    assert!(!m.delete_upload("b1").unwrap());
    assert!(m.upload_row("b1").unwrap().is_none());
}

/// The whole-store walks agree with each other and with the commits made.
pub(crate) fn walks_and_counts(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    let d = file_digests(3);
    m.upsert_object(&d, super::now_ms()).unwrap();
    commit(
        m,
        vec![
            put_inline("a", b"aa"),
            PreparedOp::Put {
                path: "f".into(),
                object: d.blake3,
            },
        ],
    );
    commit(m, vec![PreparedOp::Delete { path: "a".into() }]);
    snapshot(m, |r| {
        let counts = r.counts()?;
        assert_eq!((counts.objects, counts.bytes, counts.commits), (2, 102, 2));
        assert_eq!(r.file_objects()?, [(d.blake3, 100)]);
        assert!(r.referenced_without_row()?.is_empty());
        let heads = r.head_rows()?;
        assert_eq!(heads.len(), 1);
        let latest = r.latest_versions()?;
        assert_eq!(latest.len(), 2);
        assert!(latest.iter().any(|v| v.path == "a" && v.object.is_none()));
        assert_eq!(r.versions_at(1)?.len(), 2);
        let mut ids = Vec::new();
        r.for_each_object(&mut |o| {
            ids.push(ObjectId::from_slice(&o.id)?);
            Ok(())
        })?;
        assert_eq!(ids.len(), 2);
        // The newest commit only deletes; the one before references both objects.
        assert!(r.recent_objects(1)?.is_empty());
        assert_eq!(r.recent_objects(2)?.len(), 2);
        Ok(())
    })
    .unwrap();
}

/// The GC's deletions that remove bytes too: `remove` runs exactly for a collected file
/// object, and for an object without a row.
pub(crate) fn gc_removal_and_orphans(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    let t0 = super::now_ms() - 120_000;
    let (kept, loose) = (file_digests(1), file_digests(2));
    m.upsert_object(&kept, t0).unwrap();
    m.upsert_object(&loose, t0).unwrap();
    commit(
        m,
        vec![PreparedOp::Put {
            path: "kept".into(),
            object: kept.blake3,
        }],
    );
    let later = t0 + 60_000;
    let mut removed = 0;
    let mut remove = || -> crate::error::Result<()> {
        removed += 1;
        Ok(())
    };
    assert!(
        m.delete_object_with(&kept.blake3, later, &mut remove)
            .unwrap()
            .is_none()
    );
    let gone = m
        .delete_object_with(&loose.blake3, later, &mut remove)
        .unwrap()
        .unwrap();
    assert!(gone.is_file && gone.size == 100);
    assert!(m.object_row_now(&loose.blake3).unwrap().is_none());
    assert!(m.remove_orphan(&loose.blake3, &mut remove).unwrap());
    assert!(!m.remove_orphan(&kept.blake3, &mut remove).unwrap());
    assert_eq!(removed, 2);
}

/// A snapshot keeps seeing the state of its first read while commits land.
pub(crate) fn snapshot_isolation(make: &Factory) {
    let f = make();
    let m = &*f.meta;
    commit(m, vec![put_inline("a", b"1")]);
    snapshot(m, |r| {
        let before = r.last_commit()?;
        commit(m, vec![put_inline("a", b"2")]);
        assert_eq!(r.last_commit()?, before);
        assert_eq!(r.head_entry("a")?.map(|e| e.version), Some(1));
        Ok(())
    })
    .unwrap();
    assert_eq!(read(m, |r| r.last_commit()).unwrap().unwrap().seq, 2);
}

/// Generates one `#[test]` per conformance test for a factory expression.
macro_rules! conformance_tests {
    ($module:ident, $factory:expr) => {
        mod $module {
            use super::*;
            conformance_tests!(@each $factory;
                commits_and_preconditions, hash_chain_and_log, history_of_a_path, settings,
                retention_purge, gc_candidates_and_recheck, upload_session_rows,
                walks_and_counts, snapshot_isolation, gc_removal_and_orphans);
        }
    };
    (@each $factory:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                super::$name(&$factory);
            }
        )*
    };
    // A suite that needs an external server: each test first checks `$gate` (which prints
    // a visible SKIP, or fails under CI, when the server cannot run here).
    ($module:ident, $factory:expr, if $gate:expr) => {
        mod $module {
            conformance_tests!(@gated $factory, $gate;
                commits_and_preconditions, hash_chain_and_log, history_of_a_path, settings,
                retention_purge, gc_candidates_and_recheck, upload_session_rows,
                walks_and_counts, snapshot_isolation, gc_removal_and_orphans);
        }
    };
    (@gated $factory:expr, $gate:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                if $gate {
                    super::$name(&$factory);
                }
            }
        )*
    };
}

/// A fresh SQLite store in a temporary directory.
fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta = super::SqliteMeta::open(&dir.path().join("meta.sqlite")).unwrap();
    Fixture {
        meta: Box::new(meta),
        _guard: Box::new(dir),
    }
}

conformance_tests!(sqlite_meta, sqlite);
conformance_tests!(postgres_meta, crate::meta::postgres::fixture, if crate::meta::postgres::available());
