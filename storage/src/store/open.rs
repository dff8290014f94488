//! Opening a store: a local one (its `LOCK`, `FORMAT` and SQLite file in the store directory)
//! or a shared one (its metadata in PostgreSQL, where several nodes open it at once; the
//! directory then holds only spool files and upload sessions).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::sync::watch;

use super::inner::Inner;
use crate::error::{Result, StorageError};
use crate::lock::StoreLock;
use crate::meta::{self, MetaStore, SqliteMeta};
use crate::objects::{AnyObjects, ObjectBackend, ObjectsRoot};
use crate::stripes::Stripes;

/// The format of a store: the `FORMAT` file of a local store, the registry row of a shared one.
pub(crate) const FORMAT: &str = "everlock-store 1\nobjects=blake3, digest-index=sha256\n";

/// How many recent commits the startup check examines for missing objects.
const STARTUP_CHECK_COMMITS: u64 = 64;

/// How a handle holds its store.
struct Mode {
    /// The `LOCK` of a local store's owner.
    lock: Option<StoreLock>,
    writable: bool,
    /// Whether the metadata is shared with other nodes.
    shared: bool,
}

impl Inner {
    /// Opens a store directory: lock, format check, `tmp/` cleanup, schema, startup check.
    /// The objects come from `root`: files in `dir`, or the store's prefix in a bucket.
    pub(crate) fn open(
        dir: &Path,
        lock_wait: Duration,
        root: &ObjectsRoot,
        changes: watch::Sender<u64>,
    ) -> Result<Inner> {
        crate::perms::create_dir_all(dir)?;
        let lock = StoreLock::acquire(&dir.join("LOCK"), lock_wait)?;
        crate::perms::tighten_store(dir)?;
        check_or_write_format(dir)?;
        let objects = root.open_store(dir, true)?;
        clean_temp(dir, &objects)?;
        let meta = SqliteMeta::open(&dir.join("meta.sqlite"))?;
        let mode = Mode {
            lock: Some(lock),
            writable: true,
            shared: false,
        };
        let inner = Inner::assemble(dir, objects, Box::new(meta), mode, changes)?;
        inner.startup_check()?;
        crate::uploads::recover(&inner)?;
        Ok(inner)
    }

    /// Opens an existing store for reading only, without its `LOCK`: the owner (a running
    /// server) may be writing at the same time. SQLite's WAL gives every query a consistent
    /// snapshot next to that writer; objects are immutable once published. Nothing in the
    /// directory is created, cleaned or tightened: `tmp/` and `uploads/` belong to the owner.
    pub(crate) fn open_read_only(
        dir: &Path,
        root: &ObjectsRoot,
        changes: watch::Sender<u64>,
    ) -> Result<Inner> {
        check_format(dir)?;
        // A store whose objects are in a bucket has no `objects/` directory.
        let remote = crate::objects::is_remote_store(dir);
        for sub in ["objects", "tmp", "uploads"] {
            if sub == "objects" && remote {
                continue;
            }
            if !dir.join(sub).is_dir() {
                return Err(StorageError::Corrupt(format!(
                    "{} has no {sub}/ directory",
                    dir.display()
                )));
            }
        }
        // Both only open directories that exist (checked above), so they write nothing.
        let objects = root.open_store(dir, false)?;
        let meta = SqliteMeta::open_read_only(&dir.join("meta.sqlite"))?;
        // No startup check: it guards an owner against serving on lost data, and next to a
        // live owner its separate queries could race that owner's GC. `verify` checks it all.
        let mode = Mode {
            lock: None,
            writable: false,
            shared: false,
        };
        Inner::assemble(dir, objects, Box::new(meta), mode, changes)
    }

    /// Opens a store whose metadata is shared (PostgreSQL, already registered): no `LOCK`,
    /// since other nodes open it too and the database serialises their writes. The local
    /// directory `dir` (one per node) holds spool files and upload sessions only.
    ///
    /// No startup check: next to other nodes' GC its separate queries could race, and losing
    /// an object on one node's disk no longer means anything here. No upload recovery either:
    /// the session rows are shared, and a session without a file on this node may be another
    /// node's live one.
    pub(crate) fn open_shared(
        dir: &Path,
        root: &ObjectsRoot,
        meta: Box<dyn MetaStore>,
        writable: bool,
        changes: watch::Sender<u64>,
    ) -> Result<Inner> {
        crate::perms::create_dir_all(dir)?;
        crate::perms::tighten_store(dir)?;
        let objects = match root {
            ObjectsRoot::File => root.open_store(dir, true)?,
            // The registry, not a marker file, binds a shared store to its backend.
            ObjectsRoot::S3(base) => {
                let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                    StorageError::invalid("store name", dir.display().to_string())
                })?;
                AnyObjects::S3(base.scoped(name, &dir.join("tmp"))?)
            }
        };
        if writable {
            // The spool directory is this node's alone: while no handle is open no stage of
            // this process runs, so every temp file is debris of a crash.
            clean_temp(dir, &objects)?;
        }
        let mode = Mode {
            lock: None,
            writable,
            shared: true,
        };
        Inner::assemble(dir, objects, meta, mode, changes)
    }

    fn assemble(
        dir: &Path,
        objects: AnyObjects,
        meta: Box<dyn MetaStore>,
        mode: Mode,
        changes: watch::Sender<u64>,
    ) -> Result<Inner> {
        let head_seq = meta::read(&*meta, |r| r.last_commit())?.map_or(0, |c| c.seq);
        crate::changes::advance(&changes, head_seq);
        Ok(Inner {
            dir: dir.to_path_buf(),
            objects,
            stripes: Stripes::default(),
            meta,
            changes,
            uploads: crate::uploads::state::Uploads::open(dir)?,
            writable: mode.writable,
            shared: mode.shared,
            _lock: mode.lock,
        })
    }

    /// Fails loudly if a recent commit references an object that is not there: that can only
    /// happen if the write order was broken, and serving on would hide lost data.
    fn startup_check(&self) -> Result<()> {
        for id in self.read(|r| r.recent_objects(STARTUP_CHECK_COMMITS))? {
            let Some(row) = self.meta.object_row_now(&id)? else {
                return Err(StorageError::Corrupt(format!(
                    "a recent commit references object {id}, which has no row"
                )));
            };
            if row.inline.is_none() && !self.objects.exists(&id)? {
                return Err(StorageError::Corrupt(format!(
                    "a recent commit references object {id}, whose file is missing"
                )));
            }
        }
        Ok(())
    }
}

/// Removes temp files: the caller makes sure no stage of any process is in flight
/// (reference/storage.md §4).
fn clean_temp(dir: &Path, objects: &AnyObjects) -> Result<()> {
    let cleaned = objects.clean_temp()?;
    if cleaned > 0 {
        tracing::info!(dir = %dir.display(), cleaned, "removed interrupted uploads from tmp/");
    }
    Ok(())
}

/// Checks an existing store's `FORMAT`; a store without one is `NoSuchStore`.
fn check_format(dir: &Path) -> Result<()> {
    match fs::read_to_string(dir.join("FORMAT")) {
        Ok(text) => format_matches(dir, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(StorageError::NoSuchStore(dir.display().to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

fn format_matches(dir: &Path, text: &str) -> Result<()> {
    if text == FORMAT {
        return Ok(());
    }
    Err(StorageError::Corrupt(format!(
        "{} says {:?}, this build reads {:?}",
        dir.join("FORMAT").display(),
        text.lines().next().unwrap_or(""),
        FORMAT.lines().next().unwrap_or("")
    )))
}

/// Writes `FORMAT` in a new store, or checks it in an existing one.
fn check_or_write_format(dir: &Path) -> Result<()> {
    let path = dir.join("FORMAT");
    match fs::read_to_string(&path) {
        Ok(text) => format_matches(dir, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let tmp = dir.join("FORMAT.tmp");
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(crate::perms::FILE_MODE)
                .open(&tmp)?;
            f.write_all(FORMAT.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(dir)?.sync_all()?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `dir` holds a store (has a `FORMAT` file).
pub(crate) fn is_store(dir: &Path) -> bool {
    dir.join("FORMAT").is_file()
}
