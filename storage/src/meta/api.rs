//! The metadata interface: everything a [`Store`](crate::Store) needs from its metadata
//! database, with no SQL engine in its signatures. SQLite implements it today
//! ([`SqliteMeta`](super::SqliteMeta)); a PostgreSQL implementation adds one more, and the
//! conformance suite (`meta/conformance.rs`) checks both the same way.
//!
//! The traits are object-safe (`Box<dyn MetaStore>` in the store's `Inner`), so the engine can
//! be chosen from configuration at runtime; callbacks are `&mut dyn FnMut` for that reason.
//! Every method is blocking: the store calls them on tokio's blocking pool.
//!
//! Units of work: each [`MetaStore`] method that writes is one transaction of its own (a
//! commit with its preconditions, a purge with its commit, a GC re-check with its delete, a
//! setting change with the keys it replaces), so no connection or transaction handle ever
//! leaves the implementation. Reads run through [`MetaStore::read`] (each query sees the
//! latest durable state) or [`MetaStore::snapshot`] (every query of the closure sees the same
//! state), both handing the closure a [`MetaRead`].

use std::fmt;

use super::{CommitRequest, Cutoff, ObjectOutcome, ObjectRow, Resolved, UploadRow};
use crate::digest::{CommitId, ObjectId};
use crate::error::Result;
use crate::hashing::Digests;
use crate::types::{CommitInfo, CommitMeta, Entry, HistoryEntry};

/// A store's metadata database. The rows of upload sessions kept as parts in object storage
/// are behind [`UploadMeta`](super::UploadMeta) (`meta/uploads.rs`).
pub(crate) trait MetaStore: super::UploadMeta + Send + Sync + fmt::Debug + 'static {
    /// Runs `f` with reads that each see the newest durable state.
    fn read(&self, f: &mut dyn FnMut(&dyn MetaRead) -> Result<()>) -> Result<()>;
    /// Runs `f` with reads that all see one consistent state (a read transaction), while
    /// commits go on: for verification, export and statistics.
    fn snapshot(&self, f: &mut dyn FnMut(&dyn MetaRead) -> Result<()>) -> Result<()>;

    /// Applies one commit: checks its preconditions, checks that every referenced object has a
    /// row, and appends the hash-chained record, all in one transaction serialised with every
    /// other commit of the store. Returns once the commit is durable.
    fn commit(&self, request: CommitRequest) -> Result<CommitInfo>;
    /// Records a published object, or restarts the grace period of an existing row.
    fn upsert_object(&self, digests: &Digests, now_ms: i64) -> Result<()>;
    /// An object's row as of now, read where the writes happen (no older snapshot).
    fn object_row_now(&self, id: &ObjectId) -> Result<Option<ObjectRow>>;
    /// Purges the versions `cutoff` selects in one commit; `None` when nothing qualifies.
    /// Returns the commit, the number of versions and their bytes.
    fn purge_superseded(
        &self,
        cutoff: Cutoff,
        meta: &CommitMeta,
        now_ms: i64,
    ) -> Result<Option<(CommitInfo, u64, u64)>>;
    /// Deletes an object row if, inside the same transaction, no unpurged version references
    /// it and it was created before `created_before_ms` (the GC's re-check). A dry run checks
    /// without deleting.
    fn delete_object_if_unreferenced(
        &self,
        id: &ObjectId,
        created_before_ms: i64,
        dry_run: bool,
    ) -> Result<Option<ObjectOutcome>>;
    /// The GC's deletion of an object row (as [`MetaStore::delete_object_if_unreferenced`],
    /// never a dry run) that also removes the object's bytes through `remove` when it had a
    /// file. An engine shared by several nodes calls `remove` before its transaction
    /// commits, under the store's write lock: a stage on another node that found the bytes
    /// still there waits with its row for that lock, and its commit then sees the bytes gone
    /// (`Inner::commit` checks in shared mode). SQLite calls it after the delete, as before
    /// (only one process writes, and the stripe locks order it with stages).
    fn delete_object_with(
        &self,
        id: &ObjectId,
        created_before_ms: i64,
        remove: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Option<ObjectOutcome>> {
        let outcome = self.delete_object_if_unreferenced(id, created_before_ms, false)?;
        if outcome.as_ref().is_some_and(|o| o.is_file) {
            remove()?;
        }
        Ok(outcome)
    }
    /// Calls `remove` (which deletes an object's bytes) if the object has no row, under the
    /// same write lock as [`MetaStore::delete_object_with`]; whether it did.
    fn remove_orphan(&self, id: &ObjectId, remove: &mut dyn FnMut() -> Result<()>) -> Result<bool> {
        if self.object_row_now(id)?.is_some() {
            return Ok(false);
        }
        remove()?;
        Ok(true)
    }
    /// Sets `key` and removes each of `remove`, atomically.
    fn replace_setting(&self, key: &str, value: &str, remove: &[&str]) -> Result<()>;
    /// Sets `key` unless it or any of `also` is set, atomically; whether it wrote.
    fn init_setting(&self, key: &str, value: &str, also: &[&str]) -> Result<bool>;
    /// Appends a commit record copied from another store (`StoreManager::copy_store`) with
    /// its bytes unchanged, so it keeps its id; it must extend this store's chain (next seq,
    /// HEAD as its parent). `inline` objects are inserted with their bytes first; purge
    /// operations mark their versions purged. One transaction, serialised with commits.
    fn replay(
        &self,
        record: &[u8],
        inline: &[(Digests, Vec<u8>)],
        now_ms: i64,
    ) -> Result<CommitInfo>;
    /// Takes the store's maintenance lock (GC and retention run on one node at a time), or
    /// `None` when another holder has it. Released when the guard drops. With SQLite the
    /// store's `LOCK` already keeps every other process out, so it always succeeds.
    fn try_maintenance_lock(&self) -> Result<Option<MaintenanceGuard<'_>>>;
    /// Gives space freed by a GC back to the filesystem where the engine holds on to it (the
    /// SQLite WAL). Best effort, never fails because of concurrent readers.
    fn compact(&self) -> Result<()>;

    /// Inserts an upload session unless its path has `max_open` live sessions at `now_ms`,
    /// atomically; whether it inserted.
    fn insert_upload_capped(&self, row: &UploadRow, max_open: u64, now_ms: i64) -> Result<bool>;
    /// A session by id, expired or not.
    fn upload_row(&self, id: &str) -> Result<Option<UploadRow>>;
    /// Records a durable append: the new offset and a renewed lease.
    fn advance_upload(&self, id: &str, offset: u64, lease_until_ms: i64) -> Result<()>;
    /// Deletes a session row; whether it existed.
    fn delete_upload(&self, id: &str) -> Result<bool>;
    /// Every session row, oldest id first.
    fn all_uploads(&self) -> Result<Vec<UploadRow>>;
}

/// A held maintenance lock ([`MetaStore::try_maintenance_lock`]); dropping it releases it.
pub(crate) type MaintenanceGuard<'a> = Box<dyn Send + 'a>;

/// The read queries, on one connection or one snapshot.
pub(crate) trait MetaRead {
    /// The newest commit.
    fn last_commit(&self) -> Result<Option<CommitInfo>>;
    /// A commit by id; `UnknownCommit` if there is none.
    fn commit_by_id(&self, id: &CommitId) -> Result<CommitInfo>;
    /// The newest commits first, at most `limit`.
    fn log(&self, limit: u64) -> Result<Vec<CommitInfo>>;
    /// The HEAD entry of a path.
    fn head_entry(&self, path: &str) -> Result<Option<Entry>>;
    /// What `path` resolves to at commit `seq`.
    fn resolve_at(&self, path: &str, seq: u64) -> Result<Resolved>;
    /// Live paths under `prefix` at HEAD, in path order.
    fn list_head(&self, prefix: &str) -> Result<Vec<Entry>>;
    /// Live paths under `prefix` at commit `seq`, in path order.
    fn list_at(&self, prefix: &str, seq: u64) -> Result<Vec<Entry>>;
    /// Every change of a path, oldest first.
    fn history(&self, path: &str) -> Result<Vec<HistoryEntry>>;
    /// An object's row, without its inline bytes.
    fn object_row(&self, id: &ObjectId) -> Result<Option<ObjectRow>>;
    /// An inline object's bytes; `None` for a file object or an unknown one.
    fn inline_bytes(&self, id: &ObjectId) -> Result<Option<Vec<u8>>>;
    /// A setting.
    fn setting(&self, key: &str) -> Result<Option<String>>;
    /// Objects the newest `n` commits reference (the startup check).
    fn recent_objects(&self, n: u64) -> Result<Vec<ObjectId>>;
    /// The seq of the `n`-th newest commit that changed a path.
    fn nth_changing_commit(&self, n: u64) -> Result<Option<u64>>;
    /// Paths of the tree at `seq` whose content was purged.
    fn purged_paths_at(&self, seq: u64) -> Result<u64>;
    /// Number and bytes of the versions a purge with `cutoff` would take.
    fn superseded_before(&self, cutoff: Cutoff) -> Result<(u64, u64)>;
    /// Live upload sessions of `path` at `now_ms`.
    fn count_live_uploads(&self, path: &str, now_ms: i64) -> Result<u64>;
    /// GC candidates: unreferenced objects created before `created_before_ms`.
    fn gc_candidates(&self, created_before_ms: i64) -> Result<Vec<ObjectId>>;
    /// Object, byte and commit counts.
    fn counts(&self) -> Result<StoreCounts>;

    /// Every commit row, oldest first (verify, export).
    fn for_each_commit(&self, f: &mut dyn FnMut(RawCommit) -> Result<()>) -> Result<()>;
    /// The version rows commit `seq` wrote.
    fn versions_at(&self, seq: u64) -> Result<Vec<RawVersion>>;
    /// Whether the version of `path` at `seq` is purged; `None` without such a row.
    fn version_purged(&self, path: &str, seq: u64) -> Result<Option<bool>>;
    /// Every purged version as `(path, seq)`.
    fn purged_versions(&self) -> Result<Vec<(String, u64)>>;
    /// The newest version row of every path ever written.
    fn latest_versions(&self) -> Result<Vec<RawVersion>>;
    /// The HEAD table as stored.
    fn head_rows(&self) -> Result<Vec<RawHead>>;
    /// Raw ids of objects an unpurged version references without a row.
    fn referenced_without_row(&self) -> Result<Vec<Vec<u8>>>;
    /// Every object row with its inline bytes, in id order.
    fn for_each_object(&self, f: &mut dyn FnMut(RawObject) -> Result<()>) -> Result<()>;
    /// Objects whose bytes live in files, with sizes, in id order.
    fn file_objects(&self) -> Result<Vec<(ObjectId, u64)>>;
}

/// Runs a read closure that returns a value through the object-safe [`MetaStore::read`].
pub(crate) fn read<T>(
    meta: &dyn MetaStore,
    f: impl FnOnce(&dyn MetaRead) -> Result<T>,
) -> Result<T> {
    run(|g| meta.read(g), f)
}

/// Like [`read`], through [`MetaStore::snapshot`].
pub(crate) fn snapshot<T>(
    meta: &dyn MetaStore,
    f: impl FnOnce(&dyn MetaRead) -> Result<T>,
) -> Result<T> {
    run(|g| meta.snapshot(g), f)
}

fn run<T>(
    call: impl FnOnce(&mut dyn FnMut(&dyn MetaRead) -> Result<()>) -> Result<()>,
    f: impl FnOnce(&dyn MetaRead) -> Result<T>,
) -> Result<T> {
    let mut f = Some(f);
    let mut out = None;
    call(&mut |r| {
        if let Some(f) = f.take() {
            out = Some(f(r)?);
        }
        Ok(())
    })?;
    out.ok_or_else(|| crate::error::StorageError::Worker("a metadata read did not run".into()))
}

/// Aggregate counts for `Store::stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoreCounts {
    pub(crate) objects: u64,
    pub(crate) bytes: u64,
    pub(crate) commits: u64,
}

/// A commit row as stored, for the walks.
#[derive(Clone, Debug)]
pub(crate) struct RawCommit {
    pub(crate) seq: u64,
    pub(crate) id: Vec<u8>,
    pub(crate) parent: Option<Vec<u8>>,
    pub(crate) time_ms: i64,
    pub(crate) principal: String,
    pub(crate) message: String,
    pub(crate) record: Vec<u8>,
}

/// A version row as stored (a `None` object is a delete).
#[derive(Clone, Debug)]
pub(crate) struct RawVersion {
    pub(crate) path: String,
    pub(crate) seq: u64,
    pub(crate) object: Option<Vec<u8>>,
    pub(crate) size: u64,
    pub(crate) sha256: Option<Vec<u8>>,
}

/// A HEAD row as stored.
#[derive(Clone, Debug)]
pub(crate) struct RawHead {
    pub(crate) path: String,
    pub(crate) seq: u64,
    pub(crate) object: Vec<u8>,
    pub(crate) size: u64,
    pub(crate) sha256: Vec<u8>,
}

/// An object row as stored.
#[derive(Clone, Debug)]
pub(crate) struct RawObject {
    pub(crate) id: Vec<u8>,
    pub(crate) sha256: Vec<u8>,
    pub(crate) size: u64,
    pub(crate) inline: Option<Vec<u8>>,
}

/// Decides a compare-and-swap precondition against the path's current HEAD entry: the one
/// rule every engine applies inside its commit transaction, with the same conflict message.
pub(crate) fn evaluate_precondition(
    pre: &crate::types::Precondition,
    head: Option<crate::types::Entry>,
) -> Result<()> {
    use crate::types::Expected;
    let ok = match (&pre.expected, &head) {
        (Expected::Absent, None) => true,
        (Expected::Version(v), Some(e)) => e.version == *v,
        (Expected::Object(o), Some(e)) => e.object == *o,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let found = match head {
        None => "absent".to_owned(),
        Some(e) => format!("version {} ({})", e.version, e.object),
    };
    let expected = match &pre.expected {
        Expected::Absent => "absent".to_owned(),
        Expected::Version(v) => format!("version {v}"),
        Expected::Object(o) => format!("object {o}"),
    };
    Err(crate::error::StorageError::Conflict {
        path: pre.path.clone(),
        expected,
        found,
    })
}
