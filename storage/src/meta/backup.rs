//! The SQLite side of `backup.rs`: copying a store's metadata with SQLite's online backup
//! API, and turning a copy into one self-contained file. Both are inherently SQLite: a
//! PostgreSQL store is backed up by the database's own tools, not by copying a file.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use super::MetaRead;
use crate::digest::ObjectId;
use crate::error::{Result, StorageError};
use crate::types::CommitInfo;

/// What a metadata copy holds, as far as copying the object files is concerned.
#[derive(Debug)]
pub(crate) struct MetaCopy {
    /// The copy's newest commit.
    pub(crate) head: Option<CommitInfo>,
    /// Objects whose bytes live in files, with their sizes, read from the copy itself.
    pub(crate) objects: Vec<(ObjectId, u64)>,
}

/// Copies the database `src` into the existing empty file `dest` as one consistent snapshot,
/// leaving `dest` in rollback-journal mode (one self-contained file). `None` if the source
/// stayed too busy for longer than `busy_wait`.
pub(crate) fn copy_database(
    src: &Path,
    dest: &Path,
    busy_wait: Duration,
) -> Result<Option<MetaCopy>> {
    let source = super::open_reader(src)?;
    let mut target = Connection::open(dest)?;
    {
        let backup = Backup::new(&source, &mut target)?;
        let start = Instant::now();
        // A negative page count copies everything in one step, inside one read transaction of
        // the source: the consistent snapshot. Incremental steps would restart on every commit.
        while backup.step(-1)? != StepResult::Done {
            if start.elapsed() > busy_wait {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    drop(source);
    // One self-contained file, without a `-wal` beside it, whatever the source's mode.
    target.pragma_update(None, "journal_mode", "DELETE")?;
    let head = target.last_commit()?;
    let objects = target.file_objects()?;
    target.close().map_err(|(_, e)| StorageError::from(e))?;
    Ok(Some(MetaCopy { head, objects }))
}

/// Puts a database back in rollback-journal mode: one self-contained file, which can be read
/// even from read-only media, where a WAL database cannot be opened.
pub(crate) fn single_file(path: &Path) -> Result<()> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.close().map_err(|(_, e)| StorageError::from(e))?;
    Ok(())
}
