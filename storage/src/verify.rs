//! `verify`: re-hash every object and re-check the hash chain and the derived tables.
//!
//! The chain makes history tamper-evident: changing any commit row, record or version row
//! breaks either an id, a parent link or the agreement between a record and its rows. Object
//! files are re-hashed against their names, so a flipped byte is found too.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::io::Read;

use crate::digest::{CommitId, ObjectId, Sha256};
use crate::error::Result;
use crate::hashing::{Digests, MultiHasher, digest_bytes};
use crate::meta::{MetaRead, RawCommit, RawObject};
use crate::objects::ObjectBackend;
use crate::record::{Record, RecordOp, id_of};
use crate::store::Store;
use crate::store::inner::Inner;

/// The outcome of a verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Commits checked.
    pub commits: u64,
    /// Objects re-hashed (rows and orphan files).
    pub objects: u64,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Everything found wrong, in the order found: commits first, then objects.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether the store verified cleanly.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A commit row, its record or its version rows are inconsistent.
    Commit {
        /// The commit's seq.
        seq: u64,
        /// The commit's id as stored.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// An object's bytes, row or file are wrong.
    Object {
        /// The object id.
        id: ObjectId,
        /// What is wrong.
        reason: String,
    },
    /// The `head` table disagrees with `versions`.
    Head {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Commit { seq, id, reason } => write!(f, "bad commit {seq} ({id}): {reason}"),
            Problem::Object { id, reason } => write!(f, "bad object {id}: {reason}"),
            Problem::Head { path, reason } => write!(f, "bad head entry {path:?}: {reason}"),
        }
    }
}

impl Store {
    /// Verifies the whole store; see [`VerifyReport`]. Runs concurrently with commits, on a
    /// consistent snapshot of the metadata.
    pub async fn verify(&self) -> Result<VerifyReport> {
        self.blocking(verify).await
    }
}

pub(crate) fn verify(inner: &Inner) -> Result<VerifyReport> {
    inner.snapshot(|meta| {
        let mut report = VerifyReport::default();
        check_chain(meta, &mut report)?;
        check_head(meta, &mut report)?;
        check_objects(inner, meta, &mut report)?;
        Ok(report)
    })
}

type VersionRow = (Option<ObjectId>, u64, Option<Sha256>);

/// The chain walk's state between two commit rows.
#[derive(Default)]
struct ChainWalk {
    /// The previous commit's seq, id as recomputed, and time.
    prev: Option<(u64, CommitId, i64)>,
    /// Purge operations the records hold.
    purge_ops: u64,
}

fn check_chain(meta: &dyn MetaRead, report: &mut VerifyReport) -> Result<()> {
    let mut walk = ChainWalk::default();
    meta.for_each_commit(&mut |row| check_commit(meta, row, &mut walk, report))?;
    let purged_rows = meta.purged_versions()?.len() as u64;
    if purged_rows != walk.purge_ops {
        let (seq, id) = walk
            .prev
            .map_or((0, String::new()), |p| (p.0, p.1.to_hex()));
        report.problems.push(Problem::Commit {
            seq,
            id,
            reason: format!(
                "{purged_rows} versions are marked purged but the log records {} purges",
                walk.purge_ops
            ),
        });
    }
    Ok(())
}

/// Checks one commit row against its predecessor, its record and its version rows.
fn check_commit(
    meta: &dyn MetaRead,
    row: RawCommit,
    walk: &mut ChainWalk,
    report: &mut VerifyReport,
) -> Result<()> {
    report.commits += 1;
    let RawCommit {
        seq,
        id: id_raw,
        parent: parent_raw,
        time_ms: ts,
        principal,
        message,
        record: bytes,
    } = row;
    let prev = walk.prev;
    let mut bad = |reason: String| {
        report.problems.push(Problem::Commit {
            seq,
            id: hex::encode(&id_raw),
            reason,
        });
    };
    let expected_seq = prev.map_or(1, |p| p.0 + 1);
    if seq != expected_seq {
        bad(format!("expected seq {expected_seq}: a commit is missing"));
    }
    let computed = id_of(&bytes);
    if computed.as_bytes().as_slice() != id_raw.as_slice() {
        bad(format!(
            "id does not match the record, which hashes to {computed}"
        ));
    }
    let prev_id = prev.map(|p| p.1);
    if parent_raw.as_deref() != prev_id.as_ref().map(|p| p.as_bytes().as_slice()) {
        bad("parent column does not link to the previous commit".into());
    }
    let record = match Record::decode(&bytes) {
        Ok(rec) => rec,
        Err(e) => {
            bad(e.to_string());
            walk.prev = CommitId::from_slice(&id_raw).ok().map(|id| (seq, id, ts));
            return Ok(());
        }
    };
    if record.seq != seq || record.parent != prev_id {
        bad("record's seq or parent does not match the chain".into());
    }
    if record.time_ms != ts || record.principal != principal || record.message != message {
        bad("time, principal or message column differs from the record".into());
    }
    if prev.is_some_and(|p| ts < p.2) {
        bad("time goes backwards".into());
    }
    if let Some(reason) = compare_versions(meta, seq, &record)? {
        bad(reason);
    }
    for op in &record.ops {
        if let RecordOp::Purge { path, version } = op {
            walk.purge_ops += 1;
            let purged = meta.version_purged(path, *version)?;
            if purged != Some(true) || *version >= seq {
                bad(format!(
                    "purge of {path:?} at {version} is not reflected in versions"
                ));
            }
        }
    }
    walk.prev = Some((seq, computed, ts));
    Ok(())
}

/// Compares a record's put and delete operations with the version rows of its seq.
fn compare_versions(meta: &dyn MetaRead, seq: u64, record: &Record) -> Result<Option<String>> {
    let mut expected: BTreeMap<String, VersionRow> = BTreeMap::new();
    for op in &record.ops {
        match op {
            RecordOp::Put {
                path,
                object,
                size,
                sha256,
            } => {
                expected.insert(path.clone(), (Some(*object), *size, Some(*sha256)));
            }
            RecordOp::Delete { path } => {
                expected.insert(path.clone(), (None, 0, None));
            }
            RecordOp::Purge { .. } => {}
        }
    }
    let mut actual: BTreeMap<String, VersionRow> = BTreeMap::new();
    for row in meta.versions_at(seq)? {
        let parsed = (
            row.object.map(|o| ObjectId::from_slice(&o)).transpose(),
            row.sha256.map(|s| Sha256::from_slice(&s)).transpose(),
        );
        let (Ok(object), Ok(sha)) = parsed else {
            return Ok(Some("a version row holds a malformed hash".into()));
        };
        actual.insert(row.path, (object, row.size, sha));
    }
    if expected == actual {
        return Ok(None);
    }
    let differing = expected
        .keys()
        .chain(actual.keys())
        .find(|p| expected.get(*p) != actual.get(*p))
        .cloned()
        .unwrap_or_default();
    Ok(Some(format!(
        "version rows differ from the record at path {differing:?}"
    )))
}

fn check_head(meta: &dyn MetaRead, report: &mut VerifyReport) -> Result<()> {
    let mut derived: BTreeMap<String, (u64, Vec<u8>, u64, Vec<u8>)> = BTreeMap::new();
    for v in meta.latest_versions()? {
        if let (Some(o), Some(s)) = (v.object, v.sha256) {
            derived.insert(v.path, (v.seq, o, v.size, s));
        }
    }
    let mut seen = HashSet::new();
    for head in meta.head_rows()? {
        let path = head.path;
        let row = (head.seq, head.object, head.size, head.sha256);
        if derived.get(&path) != Some(&row) {
            report.problems.push(Problem::Head {
                path: path.clone(),
                reason: "differs from the latest version".into(),
            });
        }
        seen.insert(path);
    }
    for path in derived.keys().filter(|p| !seen.contains(*p)) {
        report.problems.push(Problem::Head {
            path: path.clone(),
            reason: "live path missing from head".into(),
        });
    }
    Ok(())
}

fn check_objects(inner: &Inner, meta: &dyn MetaRead, report: &mut VerifyReport) -> Result<()> {
    for raw in meta.referenced_without_row()? {
        if let Ok(id) = ObjectId::from_slice(&raw) {
            report.problems.push(Problem::Object {
                id,
                reason: "referenced but has no row".into(),
            });
        }
    }
    let mut with_row = BTreeSet::new();
    meta.for_each_object(&mut |row| check_object(inner, row, &mut with_row, report))?;
    // Files without a row are debris of a crash between publish and commit; they must still be
    // intact, because nothing half-written may ever carry an object name.
    for (id, _) in inner.objects.list()? {
        if with_row.contains(&id) {
            continue;
        }
        report.objects += 1;
        match hash_file(inner, &id) {
            Ok(d) if d.blake3 == id => report.bytes += d.size,
            // Listed, then collected by a concurrent GC: nothing is wrong.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(d) => report.problems.push(Problem::Object {
                id,
                reason: format!("orphan file hashes to {}", d.blake3),
            }),
            Err(e) => report.problems.push(Problem::Object {
                id,
                reason: format!("cannot read the orphan file: {e}"),
            }),
        }
    }
    Ok(())
}

/// Re-hashes one object with a row (inline bytes or its file) and compares it with the row.
fn check_object(
    inner: &Inner,
    row: RawObject,
    with_row: &mut BTreeSet<ObjectId>,
    report: &mut VerifyReport,
) -> Result<()> {
    let RawObject {
        id: raw,
        sha256: sha,
        size,
        inline,
    } = row;
    let (Ok(id), Ok(sha)) = (ObjectId::from_slice(&raw), Sha256::from_slice(&sha)) else {
        report.problems.push(Problem::Object {
            id: ObjectId([0; 32]),
            reason: "malformed row".into(),
        });
        return Ok(());
    };
    with_row.insert(id);
    report.objects += 1;
    let digests = match inline {
        Some(bytes) => digest_bytes(&bytes),
        None => match hash_file(inner, &id) {
            Ok(d) => d,
            // The snapshot is older than the disk: the owner's GC (another process, when
            // this is a read-only handle) may have removed row and file since.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !still_has_row(inner, &id)? => {
                return Ok(());
            }
            Err(e) => {
                report.problems.push(Problem::Object {
                    id,
                    reason: format!("cannot read the file: {e}"),
                });
                return Ok(());
            }
        },
    };
    report.bytes += digests.size;
    if digests.blake3 != id {
        report.problems.push(Problem::Object {
            id,
            reason: format!("content hashes to {}", digests.blake3),
        });
    } else if digests.sha256 != sha || digests.size != size {
        report.problems.push(Problem::Object {
            id,
            reason: "sha256 or size differs from the row".into(),
        });
    }
    Ok(())
}

/// Whether the object still has a row now, outside the verification's snapshot.
fn still_has_row(inner: &Inner, id: &ObjectId) -> Result<bool> {
    Ok(inner.read(|r| r.object_row(id))?.is_some())
}

fn hash_file(inner: &Inner, id: &ObjectId) -> std::io::Result<Digests> {
    let mut file = inner.objects.open(id)?;
    let mut hasher = MultiHasher::new(false);
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommitMeta, GcOptions, INLINE_MAX, StoreManager};

    /// A verification reads one metadata snapshot while the owner (possibly another process)
    /// keeps collecting: an object whose row and file went after the snapshot is not a problem.
    #[tokio::test]
    async fn objects_collected_after_the_snapshot_are_not_problems() {
        let dir = tempfile::tempdir().unwrap();
        let owner = StoreManager::new(dir.path()).open("s").await.unwrap();
        owner
            .write("big", vec![1; INLINE_MAX + 1], CommitMeta::new("t", "put"))
            .await
            .unwrap();
        owner
            .set_retention(Some(std::time::Duration::ZERO))
            .await
            .unwrap();
        owner
            .delete("big", CommitMeta::new("t", "delete"))
            .await
            .unwrap();
        let reader = StoreManager::new(dir.path()).open_read_only("s").unwrap();
        let inner = reader.inner.clone();
        let mut conn = crate::meta::open_reader(&inner.dir.join("meta.sqlite")).unwrap();
        let tx = conn.transaction().unwrap();
        let snapshot: &dyn MetaRead = &*tx;
        // The first read fixes the snapshot, which still holds the object's row.
        assert_eq!(snapshot.file_objects().unwrap().len(), 1);
        let gc = owner
            .gc(GcOptions {
                grace: std::time::Duration::ZERO,
                dry_run: false,
            })
            .await
            .unwrap();
        assert_eq!(gc.objects_removed, 1, "{gc:?}");
        let mut report = VerifyReport::default();
        check_objects(&inner, snapshot, &mut report).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
