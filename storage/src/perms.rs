//! File modes. A store holds private content (bcrypt hashes, unpublished sites, private
//! images), so nothing in it may be readable by other local users, whatever the umask the
//! server was started with: directories are created 0700, files 0600 and published objects
//! 0400 (read-only even for the owner, so nothing rewrites an object in place).
//!
//! Modes passed to `open`/`mkdir` are only ever narrowed by the umask, never widened, so
//! creating with these modes is enough for new files. Stores created by older builds (0755 /
//! 0644 under umask 022) are tightened when they are opened: the store directory and its
//! top-level files, which also closes every object below it to other users.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory a store creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file a store creates (database, WAL, uploads, temporary objects, `LOCK`).
pub(crate) const FILE_MODE: u32 = 0o600;
/// Mode of a published object: immutable and private.
pub(crate) const OBJECT_MODE: u32 = 0o400;

/// Creates one directory with [`DIR_MODE`]; an existing one is an `AlreadyExists` error.
pub(crate) fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)
}

/// Creates a directory and any missing parents, each with [`DIR_MODE`].
pub(crate) fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Removes the group and other bits of an existing file or directory (a store written by an
/// older build); a missing path is fine.
pub(crate) fn tighten(path: &Path) -> io::Result<()> {
    let mode = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => return Ok(()),
        Ok(m) => m.permissions().mode(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    tracing::info!(path = %path.display(), "removing group and other permissions");
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))
}

/// Tightens a store directory opened from an older build: the directory itself, its
/// subdirectories and its top-level files.
pub(crate) fn tighten_store(dir: &Path) -> io::Result<()> {
    tighten(dir)?;
    for name in [
        "objects",
        "tmp",
        "uploads",
        "LOCK",
        "GC-HOLD",
        "FORMAT",
        "meta.sqlite",
        "meta.sqlite-wal",
        "meta.sqlite-shm",
    ] {
        tighten(&dir.join(name))?;
    }
    Ok(())
}
