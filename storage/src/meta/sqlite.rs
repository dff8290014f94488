//! [`MetaStore`] on SQLite: one writer connection (SQLite has one writer anyway) with group
//! commit, and a small pool of read-only connections that see consistent WAL snapshots while
//! commits proceed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::api::{MetaRead, MetaStore, RawCommit, RawHead, RawObject, RawVersion, StoreCounts};
use super::{CommitRequest, Cutoff, ObjectOutcome, ObjectRow, Resolved, UploadRow, walk};
use crate::digest::{CommitId, ObjectId};
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::types::{CommitInfo, CommitMeta, Entry, HistoryEntry};

/// Idle read connections kept for reuse.
const READER_POOL: usize = 8;

/// How long the WAL checkpoint after a GC waits for readers before leaving the log as it is.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(200);

/// A commit waiting for the next group commit, with where its result goes.
type Queued = (CommitRequest, SyncSender<Result<CommitInfo>>);

/// The SQLite metadata of one store (`meta.sqlite` in the store directory).
#[derive(Debug)]
pub(crate) struct SqliteMeta {
    /// The database file, for opening more readers.
    file: PathBuf,
    /// Idle read-only connections. Declared before the writer so they close first: only the
    /// last connection to close checkpoints and removes the `-wal` and `-shm` files, and a
    /// read-only one cannot, so a cleanly closed store would otherwise keep its WAL.
    readers: Mutex<Vec<Connection>>,
    /// The only connection that writes (read-only for a read-only handle).
    writer: Mutex<Connection>,
    /// Commits waiting for the next group commit.
    queue: Mutex<Vec<Queued>>,
    /// Group-commit transactions run so far (each holds one or more commits).
    batches: AtomicU64,
}

impl SqliteMeta {
    /// Opens the database for writing, creating the file and schema if needed.
    pub(crate) fn open(file: &Path) -> Result<SqliteMeta> {
        Ok(SqliteMeta::with_writer(file, super::open_writer(file)?))
    }

    /// Opens an existing database for reading only, next to a writer in another process.
    pub(crate) fn open_read_only(file: &Path) -> Result<SqliteMeta> {
        Ok(SqliteMeta::with_writer(file, super::open_reader(file)?))
    }

    fn with_writer(file: &Path, writer: Connection) -> SqliteMeta {
        SqliteMeta {
            file: file.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            writer: Mutex::new(writer),
            queue: Mutex::new(Vec::new()),
            batches: AtomicU64::new(0),
        }
    }

    /// The writer connection. A poisoned mutex is still usable: SQLite rolled back whatever
    /// transaction the panicking thread had open when its `Transaction` was dropped.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Group-commit transactions run so far.
    #[cfg(test)]
    pub(crate) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Commits queued behind the current leader.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Runs `f` on a pooled read-only connection.
    fn with_reader<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => super::open_reader(&self.file)?,
        };
        let out = f(&mut conn);
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        out
    }
}

impl MetaStore for SqliteMeta {
    fn read(&self, f: &mut dyn FnMut(&dyn MetaRead) -> Result<()>) -> Result<()> {
        self.with_reader(|c| f(&*c))
    }

    fn snapshot(&self, f: &mut dyn FnMut(&dyn MetaRead) -> Result<()>) -> Result<()> {
        self.with_reader(|c| {
            // A read transaction pins one WAL snapshot for every statement of `f`.
            let tx = c.transaction()?;
            f(&*tx)?;
            tx.finish()?;
            Ok(())
        })
    }

    /// Queues the commit and waits until it is durable.
    ///
    /// Whoever holds the writer connection applies every queued commit in one transaction, so
    /// concurrent committers share one fsync (group commit, reference/storage.md §5). A
    /// waiting committer either finds its result already delivered by the previous leader or
    /// becomes the next leader itself; its request can never be left behind, because every
    /// leader drains the whole queue.
    fn commit(&self, request: CommitRequest) -> Result<CommitInfo> {
        let (reply, result) = std::sync::mpsc::sync_channel(1);
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((request, reply));
        let mut conn = self.writer();
        if let Ok(done) = result.try_recv() {
            return done;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        self.batches.fetch_add(1, Ordering::Relaxed);
        let results = super::apply_batch(&mut conn, requests, super::now_ms());
        // Replies go out while the writer is still held, so the next leader never finds a
        // processed request without its answer. A channel of capacity one never blocks here.
        for (reply, r) in replies.into_iter().zip(results) {
            // A committer that gave up waiting is gone; its commit is durable regardless.
            let _ = reply.send(r);
        }
        drop(conn);
        result
            .recv()
            .map_err(|_| StorageError::Worker("group commit lost a request".into()))?
    }

    fn upsert_object(&self, digests: &Digests, now_ms: i64) -> Result<()> {
        super::upsert_object(&mut self.writer(), digests, now_ms)
    }

    fn object_row_now(&self, id: &ObjectId) -> Result<Option<ObjectRow>> {
        super::object_row(&self.writer(), id)
    }

    fn purge_superseded(
        &self,
        cutoff: Cutoff,
        meta: &CommitMeta,
        now_ms: i64,
    ) -> Result<Option<(CommitInfo, u64, u64)>> {
        super::purge_superseded(&mut self.writer(), cutoff, meta, now_ms)
    }

    fn delete_object_if_unreferenced(
        &self,
        id: &ObjectId,
        created_before_ms: i64,
        dry_run: bool,
    ) -> Result<Option<ObjectOutcome>> {
        super::delete_object_if_unreferenced(&mut self.writer(), id, created_before_ms, dry_run)
    }

    fn replace_setting(&self, key: &str, value: &str, remove: &[&str]) -> Result<()> {
        super::replace_setting(&mut self.writer(), key, value, remove)
    }

    fn init_setting(&self, key: &str, value: &str, also: &[&str]) -> Result<bool> {
        super::init_setting(&mut self.writer(), key, value, also)
    }

    fn replay(
        &self,
        record: &[u8],
        inline: &[(Digests, Vec<u8>)],
        now_ms: i64,
    ) -> Result<CommitInfo> {
        super::replay::replay(&mut self.writer(), record, inline, now_ms)
    }

    fn try_maintenance_lock(&self) -> Result<Option<super::api::MaintenanceGuard<'_>>> {
        Ok(Some(Box::new(())))
    }

    fn compact(&self) -> Result<()> {
        super::checkpoint_truncate(&self.writer(), CHECKPOINT_WAIT)
    }

    fn insert_upload_capped(&self, row: &UploadRow, max_open: u64, now_ms: i64) -> Result<bool> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if super::count_live_uploads(&tx, &row.path, now_ms)? >= max_open {
            return Ok(false);
        }
        super::insert_upload(&tx, row)?;
        tx.commit()?;
        Ok(true)
    }

    fn upload_row(&self, id: &str) -> Result<Option<UploadRow>> {
        super::upload_row(&self.writer(), id)
    }

    fn advance_upload(&self, id: &str, offset: u64, lease_until_ms: i64) -> Result<()> {
        super::advance_upload(&self.writer(), id, offset, lease_until_ms)
    }

    fn delete_upload(&self, id: &str) -> Result<bool> {
        super::delete_upload(&self.writer(), id)
    }

    fn all_uploads(&self) -> Result<Vec<UploadRow>> {
        super::all_uploads(&self.writer())
    }
}

/// Every read query on a plain connection or inside a read transaction (which derefs to one).
impl MetaRead for Connection {
    fn last_commit(&self) -> Result<Option<CommitInfo>> {
        super::last_commit(self)
    }
    fn commit_by_id(&self, id: &CommitId) -> Result<CommitInfo> {
        super::commit_by_id(self, id)
    }
    fn log(&self, limit: u64) -> Result<Vec<CommitInfo>> {
        super::log(self, limit)
    }
    fn head_entry(&self, path: &str) -> Result<Option<Entry>> {
        super::head_entry(self, path)
    }
    fn resolve_at(&self, path: &str, seq: u64) -> Result<Resolved> {
        super::resolve_at(self, path, seq)
    }
    fn list_head(&self, prefix: &str) -> Result<Vec<Entry>> {
        super::list_head(self, prefix)
    }
    fn list_at(&self, prefix: &str, seq: u64) -> Result<Vec<Entry>> {
        super::list_at(self, prefix, seq)
    }
    fn history(&self, path: &str) -> Result<Vec<HistoryEntry>> {
        super::history(self, path)
    }
    fn object_row(&self, id: &ObjectId) -> Result<Option<ObjectRow>> {
        super::object_row(self, id)
    }
    fn inline_bytes(&self, id: &ObjectId) -> Result<Option<Vec<u8>>> {
        super::inline_bytes(self, id)
    }
    fn setting(&self, key: &str) -> Result<Option<String>> {
        super::setting(self, key)
    }
    fn recent_objects(&self, n: u64) -> Result<Vec<ObjectId>> {
        super::recent_objects(self, n)
    }
    fn nth_changing_commit(&self, n: u64) -> Result<Option<u64>> {
        super::nth_changing_commit(self, n)
    }
    fn purged_paths_at(&self, seq: u64) -> Result<u64> {
        super::purged_paths_at(self, seq)
    }
    fn superseded_before(&self, cutoff: Cutoff) -> Result<(u64, u64)> {
        super::superseded_before(self, cutoff)
    }
    fn count_live_uploads(&self, path: &str, now_ms: i64) -> Result<u64> {
        super::count_live_uploads(self, path, now_ms)
    }
    fn gc_candidates(&self, created_before_ms: i64) -> Result<Vec<ObjectId>> {
        walk::gc_candidates(self, created_before_ms)
    }
    fn counts(&self) -> Result<StoreCounts> {
        walk::counts(self)
    }
    fn for_each_commit(&self, f: &mut dyn FnMut(RawCommit) -> Result<()>) -> Result<()> {
        walk::for_each_commit(self, f)
    }
    fn versions_at(&self, seq: u64) -> Result<Vec<RawVersion>> {
        walk::versions_at(self, seq)
    }
    fn version_purged(&self, path: &str, seq: u64) -> Result<Option<bool>> {
        walk::version_purged(self, path, seq)
    }
    fn purged_versions(&self) -> Result<Vec<(String, u64)>> {
        walk::purged_versions(self)
    }
    fn latest_versions(&self) -> Result<Vec<RawVersion>> {
        walk::latest_versions(self)
    }
    fn head_rows(&self) -> Result<Vec<RawHead>> {
        walk::head_rows(self)
    }
    fn referenced_without_row(&self) -> Result<Vec<Vec<u8>>> {
        walk::referenced_without_row(self)
    }
    fn for_each_object(&self, f: &mut dyn FnMut(RawObject) -> Result<()>) -> Result<()> {
        walk::for_each_object(self, f)
    }
    fn file_objects(&self) -> Result<Vec<(ObjectId, u64)>> {
        walk::file_objects(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Expected, Precondition};

    fn put(path: &str, bytes: &[u8], pre: Vec<Precondition>, who: &str) -> CommitRequest {
        CommitRequest {
            ops: vec![super::super::PreparedOp::PutInline {
                path: path.into(),
                digests: crate::hashing::digest_bytes(bytes),
                bytes: bytes.to_vec(),
            }],
            preconditions: pre,
            meta: CommitMeta::new(who, "group"),
        }
    }

    #[test]
    fn queued_commits_share_one_transaction_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::sync::Arc::new(SqliteMeta::open(&dir.path().join("meta.sqlite")).unwrap());
        meta.commit(put("taken", b"x", vec![], "t")).unwrap();
        let before = meta.batches();
        // Hold the writer so that every committer queues up behind it.
        let guard = meta.writer();
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let meta = meta.clone();
                std::thread::spawn(move || {
                    let pre = if i == 3 {
                        vec![Precondition {
                            path: "taken".into(),
                            expected: Expected::Absent,
                        }]
                    } else {
                        vec![]
                    };
                    meta.commit(put(&format!("p{i}"), &[i], pre, &format!("t{i}")))
                })
            })
            .collect();
        while meta.queued() < 8 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(guard);
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            meta.batches() - before,
            1,
            "all eight commits went into one transaction"
        );
        let mut seqs = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(info) => seqs.push(info.seq),
                Err(StorageError::Conflict { .. }) if i == 3 => {}
                Err(e) => panic!("commit {i}: {e}"),
            }
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (2..=8).collect::<Vec<_>>());
        let listed = super::super::read(&*meta, |r| r.list_head("p")).unwrap();
        assert_eq!(listed.len(), 7);
        assert!(listed.iter().all(|e| e.path != "p3"));
    }
}
