//! Online backup and restore of one store directory, while another process (the server) keeps
//! writing to it.
//!
//! A copy is made in two steps, in this order:
//! 1. the metadata, with SQLite's online backup API from a read-only connection that takes no
//!    `LOCK`: one backup step copies every page inside a single read transaction, and WAL lets
//!    that transaction see one committed state while the writer goes on, so the copy is exactly
//!    the store as of some commit (never half of a group commit);
//! 2. the object files that this copy's `objects` table names (inline objects live in the
//!    metadata already), hard-linked when the target is on the same filesystem and copied
//!    otherwise. Objects are immutable files named by their hash, so a link or a copy made at
//!    any later moment holds the same bytes.
//!
//! Step 2 is only safe if no object named by the snapshot is deleted before it is copied. Object
//! GC deletes only objects that nothing references, but a retention purge committed right after
//! the snapshot can unreference one, and a GC with a short grace period can then delete it. Two
//! defences, so neither alone has to be perfect:
//! - the backup holds a shared `flock` on `<store>/GC-HOLD` from before the metadata snapshot
//!   until the last object is copied, and object GC takes the same lock exclusively (without
//!   waiting) around its deletions, deferring them to its next run while a backup holds it
//!   ([`gc_may_delete`]); a GC that is deleting right now makes the backup wait for it;
//! - an object that vanishes anyway makes the whole store copy start again from a fresh
//!   metadata snapshot (which no longer names it), at most [`MAX_ATTEMPTS`] times, after which
//!   the backup fails with [`BackupError::Vanished`] instead of producing an incomplete copy.
//!
//! Finally the copy is opened with [`Store::open_dir_blocking`] and verified (every object
//! re-hashed, the chain re-checked) before it counts. Upload sessions in flight are not part of
//! any commit and are not copied: opening the copy drops their rows.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::digest::ObjectId;
use crate::error::StorageError;
use crate::meta::{self, MetaCopy};
use crate::store::Store;
use crate::types::CommitInfo;
use crate::verify::VerifyReport;

/// The lock file that keeps object GC from deleting while a backup copies the store.
pub const GC_HOLD_FILE: &str = "GC-HOLD";

/// How many times a store copy starts again after an object vanished under it.
pub const MAX_ATTEMPTS: u32 = 3;

const META_FILE: &str = "meta.sqlite";
const FORMAT_FILE: &str = "FORMAT";
const OBJECTS_DIR: &str = "objects";
/// How long the metadata snapshot retries while SQLite reports the source busy (a WAL recovery
/// by another connection, for instance).
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// Options of [`backup_store`] and [`restore_store`].
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// Hard-link object files when source and target share a filesystem (copy otherwise).
    pub link: bool,
    /// How long to wait for an object GC that is deleting right now.
    pub gc_wait: Duration,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            link: true,
            gc_wait: Duration::from_secs(600),
        }
    }
}

/// What one store copy holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCopy {
    /// The newest commit in the copy (`None` for an empty store).
    pub head: Option<CommitInfo>,
    /// Object files in the copy (inline objects not counted).
    pub objects: u64,
    /// Bytes of those object files.
    pub bytes: u64,
    /// How many of them were hard-linked rather than copied.
    pub linked: u64,
    /// Copies started (1 unless an object vanished during the first).
    pub attempts: u32,
    /// The verification of the finished copy.
    pub verify: VerifyReport,
}

/// Why a backup or restore of a store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The store itself failed (opening, SQLite, a full disk).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The source directory holds no store.
    #[error("{} holds no store (no FORMAT file)", .0.display())]
    NotAStore(PathBuf),
    /// The store keeps its objects in S3: a copy of its directory would hold only the
    /// metadata, a backup that restores to a store of missing objects.
    #[error(
        "backup of {} is not supported yet: its objects are in S3 ([storage] objects = \"s3\"); back up the bucket with its own tools (versioning, replication) and the store directory together",
        .0.display()
    )]
    RemoteObjects(PathBuf),
    /// The target already exists.
    #[error("{} already exists", .0.display())]
    TargetExists(PathBuf),
    /// An object GC kept deleting for longer than [`BackupOptions::gc_wait`].
    #[error("an object GC of {} is still running after {waited:?}", dir.display())]
    GcBusy {
        /// The store directory.
        dir: PathBuf,
        /// How long the backup waited.
        waited: Duration,
    },
    /// SQLite kept reporting the source database busy.
    #[error("the metadata of {} stayed busy for {BUSY_WAIT:?}", .0.display())]
    Busy(PathBuf),
    /// Objects named by every metadata snapshot disappeared before they were copied.
    #[error(
        "object {object} of {} was deleted while it was being copied, {attempts} times in a row \
         (an object GC that ignores GC-HOLD?)",
        dir.display()
    )]
    Vanished {
        /// The store directory.
        dir: PathBuf,
        /// The last object that vanished.
        object: ObjectId,
        /// How many copies were tried.
        attempts: u32,
    },
    /// The finished copy does not verify.
    #[error("the copy in {} does not verify: {first} ({count} problems)", dir.display())]
    Verify {
        /// The copy.
        dir: PathBuf,
        /// How many problems verify found.
        count: usize,
        /// The first of them.
        first: String,
    },
}

/// Copies the store in `src` (which a server may be writing) to the new directory `dest`,
/// then verifies the copy. Blocking: run it on a blocking thread.
pub fn backup_store(
    src: &Path,
    dest: &Path,
    opts: &BackupOptions,
) -> Result<StoreCopy, BackupError> {
    copy_store(src, dest, opts, Direction::Backup, &mut |_| {})
}

/// Copies a store out of a backup (made by [`backup_store`]) into the new directory `dest`,
/// always copying object files (so the restored store shares nothing with the backup), then
/// verifies it. Blocking: run it on a blocking thread.
pub fn restore_store(src: &Path, dest: &Path) -> Result<StoreCopy, BackupError> {
    let opts = BackupOptions {
        link: false,
        ..BackupOptions::default()
    };
    // Nothing collects garbage in a backup, so the restore takes no GC hold in it.
    copy_store(src, dest, &opts, Direction::Restore, &mut |_| {})
}

/// A held right to delete objects in a store; see [`gc_may_delete`].
#[derive(Debug)]
#[must_use = "deletions are only safe while the hold is alive"]
pub(crate) struct GcHold {
    _file: File,
}

/// For object GC: `Some(hold)` when it may delete objects in `store_dir` (keep the hold until
/// the deletions are done), `None` while a backup is copying the store (skip the deletions
/// this time; the next run catches up). Never waits.
pub(crate) fn gc_may_delete(store_dir: &Path) -> crate::Result<Option<GcHold>> {
    let file = open_hold_file(store_dir)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(GcHold { _file: file })),
        Err(TryLockError::WouldBlock) => {
            tracing::info!(dir = %store_dir.display(), "a backup is copying the store; object deletions wait for the next GC");
            Ok(None)
        }
        Err(TryLockError::Error(e)) => Err(e.into()),
    }
}

/// The shared side of `GC-HOLD`, held by a backup.
#[derive(Debug)]
struct BackupHold {
    _file: File,
}

impl BackupHold {
    fn acquire(store_dir: &Path, wait: Duration) -> Result<BackupHold, BackupError> {
        let path = store_dir.join(GC_HOLD_FILE);
        let file = open_hold_file(store_dir).map_err(io_err("cannot open", &path))?;
        let start = Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Ok(BackupHold { _file: file }),
                Err(TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(BackupError::GcBusy {
                        dir: store_dir.to_path_buf(),
                        waited: start.elapsed(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err("cannot lock", &path)(e)),
            }
        }
    }
}

fn open_hold_file(store_dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(crate::perms::FILE_MODE)
        .open(store_dir.join(GC_HOLD_FILE))
}

/// Which way a copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// From a live store (GC may run in it) into a backup.
    Backup,
    /// From a backup (nothing runs in it) into a new data directory.
    Restore,
}

/// The whole copy with its retries; `after_meta` runs between the metadata snapshot and the
/// object copy of each attempt (tests use it to race a GC against the copy).
fn copy_store(
    src: &Path,
    dest: &Path,
    opts: &BackupOptions,
    direction: Direction,
    after_meta: &mut dyn FnMut(u32),
) -> Result<StoreCopy, BackupError> {
    if !src.join(FORMAT_FILE).is_file() {
        return Err(BackupError::NotAStore(src.to_path_buf()));
    }
    if crate::objects::is_remote_store(src) {
        return Err(BackupError::RemoteObjects(src.to_path_buf()));
    }
    if dest.exists() {
        return Err(BackupError::TargetExists(dest.to_path_buf()));
    }
    let mut attempt = 0;
    let (head, files) = loop {
        attempt += 1;
        let hold = match direction {
            Direction::Backup => Some(BackupHold::acquire(src, opts.gc_wait)?),
            Direction::Restore => None,
        };
        let outcome = copy_once(src, dest, opts, attempt, after_meta)?;
        drop(hold);
        match outcome {
            Attempt::Done(head, files) => break (head, files),
            Attempt::Vanished(object) if attempt < MAX_ATTEMPTS => {
                tracing::warn!(dir = %src.display(), %object, attempt, "an object vanished during the backup; starting the store again");
                fs::remove_dir_all(dest).map_err(io_err("cannot remove", dest))?;
            }
            Attempt::Vanished(object) => {
                return Err(BackupError::Vanished {
                    dir: src.to_path_buf(),
                    object,
                    attempts: attempt,
                });
            }
        }
    };
    let verify = verify_copy(dest, head.as_ref())?;
    if direction == Direction::Backup {
        single_file_meta(dest)?;
    }
    Ok(StoreCopy {
        head,
        objects: files.objects,
        bytes: files.bytes,
        linked: files.linked,
        attempts: attempt,
        verify,
    })
}

/// Object files copied by one attempt.
#[derive(Debug, Default)]
struct Files {
    objects: u64,
    bytes: u64,
    linked: u64,
}

enum Attempt {
    Done(Option<CommitInfo>, Files),
    /// An object named by the snapshot was gone before it could be copied.
    Vanished(ObjectId),
}

fn copy_once(
    src: &Path,
    dest: &Path,
    opts: &BackupOptions,
    attempt: u32,
    after_meta: &mut dyn FnMut(u32),
) -> Result<Attempt, BackupError> {
    crate::perms::create_dir(dest).map_err(io_err("cannot create", dest))?;
    copy_private_file(&src.join(FORMAT_FILE), &dest.join(FORMAT_FILE))?;
    let MetaCopy { head, objects } = snapshot_meta(&src.join(META_FILE), &dest.join(META_FILE))?;
    after_meta(attempt);
    let src_objects = src.join(OBJECTS_DIR);
    let dest_objects = dest.join(OBJECTS_DIR);
    crate::perms::create_dir(&dest_objects).map_err(io_err("cannot create", &dest_objects))?;
    let mut files = Files::default();
    let mut fans = std::collections::BTreeSet::new();
    for (id, size) in objects {
        let hex = id.to_hex();
        let fan = hex.get(..2).unwrap_or("00").to_owned();
        let dest_fan = dest_objects.join(&fan);
        if fans.insert(fan.clone()) {
            crate::perms::create_dir(&dest_fan).map_err(io_err("cannot create", &dest_fan))?;
        }
        let from = src_objects.join(&fan).join(&hex);
        match place_object(&from, &dest_fan.join(&hex), opts.link) {
            Ok(linked) => files.linked += u64::from(linked),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !from.exists() => {
                return Ok(Attempt::Vanished(id));
            }
            Err(e) => return Err(io_err("cannot copy", &from)(e)),
        }
        files.objects += 1;
        files.bytes += size;
    }
    // The names are durable only once their directories are synced, deepest first.
    for fan in &fans {
        sync_dir(&dest_objects.join(fan))?;
    }
    sync_dir(&dest_objects)?;
    sync_dir(dest)?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent)?;
    }
    Ok(Attempt::Done(head, files))
}

/// Copies the metadata as one consistent snapshot (see `meta::copy_database`) and returns the
/// copy's HEAD and the objects that live in files, read from the copy itself so they match it
/// exactly.
fn snapshot_meta(src: &Path, dest: &Path) -> Result<MetaCopy, BackupError> {
    // SQLite adopts the mode of the empty private file it finds.
    create_private(dest)?;
    let copy = meta::copy_database(src, dest, BUSY_WAIT)?
        .ok_or_else(|| BackupError::Busy(src.to_path_buf()))?;
    File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(io_err("cannot sync", dest))?;
    Ok(copy)
}

/// Links (when allowed and possible) or copies one object file; `true` if it was linked.
fn place_object(from: &Path, to: &Path, link: bool) -> io::Result<bool> {
    if link {
        match fs::hard_link(from, to) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            // Another filesystem (EXDEV) or links refused: copy instead.
            Err(_) => {}
        }
    }
    let part = to.with_extension("part");
    fs::copy(from, &part)?;
    // A copied object is as immutable and private as the original, and durable before it
    // takes its final name.
    fs::set_permissions(&part, fs::Permissions::from_mode(crate::perms::OBJECT_MODE))?;
    File::open(&part)?.sync_all()?;
    fs::rename(&part, to)?;
    Ok(false)
}

/// Opens the finished copy as a store and verifies it.
fn verify_copy(dest: &Path, head: Option<&CommitInfo>) -> Result<VerifyReport, BackupError> {
    let store = Store::open_dir_blocking(dest)?;
    let report = crate::verify::verify(&store.inner)?;
    let reopened = store.inner.read(|r| r.last_commit())?;
    drop(store);
    let mut problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    if reopened.as_ref() != head {
        problems.push("its HEAD differs from the snapshot's".into());
    }
    match problems.first() {
        None => Ok(report),
        Some(first) => Err(BackupError::Verify {
            dir: dest.to_path_buf(),
            count: problems.len(),
            first: first.clone(),
        }),
    }
}

/// Puts a verified backup's metadata back in rollback-journal mode (the verification opened it
/// in WAL mode): one self-contained file, which can be read even from read-only media, where a
/// WAL database cannot be opened. A restore leaves the copy in WAL mode, ready to serve.
fn single_file_meta(dest: &Path) -> Result<(), BackupError> {
    let meta = dest.join(META_FILE);
    meta::single_file(&meta)?;
    File::open(&meta)
        .and_then(|f| f.sync_all())
        .map_err(io_err("cannot sync", &meta))?;
    Ok(())
}

/// Creates an empty file with the private file mode, so SQLite adopts the mode.
fn create_private(path: &Path) -> Result<(), BackupError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::perms::FILE_MODE)
        .open(path)
        .map(drop)
        .map_err(io_err("cannot create", path))
}

/// Copies a small file into a new private (0600) file and syncs it.
fn copy_private_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    let bytes = fs::read(from).map_err(io_err("cannot read", from))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::perms::FILE_MODE)
        .open(to)
        .map_err(io_err("cannot create", to))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err("cannot write", to))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("cannot sync", dir))
}

/// Wraps an I/O error with what was being done to which path.
fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests;
