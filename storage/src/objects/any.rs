//! [`AnyObjects`]: the object backend a store was opened with, chosen at runtime.
//!
//! The store holds one concrete type whatever the configuration, so the backend trait keeps
//! its associated types (no boxing on the hot write path) and every caller (stage, GC, verify,
//! export, uploads) goes through the trait unchanged.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::fs::{FsObjects, FsTemp};
use super::s3::{S3Objects, S3Reader, S3Temp};
use super::{ObjectBackend, PartKey, Published, TempObject};
use crate::digest::ObjectId;

/// A store's object backend: local files or a bucket.
#[derive(Debug)]
pub(crate) enum AnyObjects {
    /// `<store>/objects/`.
    Fs(FsObjects),
    /// `<prefix><store>/objects/` in a bucket.
    S3(S3Objects),
}

/// A temporary object of either backend.
#[derive(Debug)]
pub(crate) enum AnyTemp {
    /// A file in `<store>/tmp/`.
    Fs(FsTemp),
    /// A spool file awaiting upload.
    S3(S3Temp),
}

/// A reader of either backend.
#[derive(Debug)]
pub(crate) enum AnyReader {
    /// An object file.
    Fs(File),
    /// Ranged GETs.
    S3(S3Reader),
}

impl AnyObjects {
    /// The file of an object, for a backend that has one (tests and the backup of file stores).
    #[cfg(test)]
    pub(crate) fn path_of(&self, id: &ObjectId) -> Option<PathBuf> {
        match self {
            AnyObjects::Fs(fs) => Some(fs.path_of(id)),
            AnyObjects::S3(_) => None,
        }
    }
}

/// A temp object of one backend handed to the other: a programming error, reported rather
/// than panicking.
fn mismatch() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "a temporary object was published to another backend",
    )
}

impl ObjectBackend for AnyObjects {
    type Temp = AnyTemp;
    type Reader = AnyReader;

    fn create_temp(&self) -> io::Result<AnyTemp> {
        Ok(match self {
            AnyObjects::Fs(b) => AnyTemp::Fs(b.create_temp()?),
            AnyObjects::S3(b) => AnyTemp::S3(b.create_temp()?),
        })
    }

    fn publish(&self, temp: AnyTemp, id: &ObjectId) -> io::Result<Published> {
        match (self, temp) {
            (AnyObjects::Fs(b), AnyTemp::Fs(t)) => b.publish(t, id),
            (AnyObjects::S3(b), AnyTemp::S3(t)) => b.publish(t, id),
            (_, t) => {
                t.discard();
                Err(mismatch())
            }
        }
    }

    fn open(&self, id: &ObjectId) -> io::Result<AnyReader> {
        Ok(match self {
            AnyObjects::Fs(b) => AnyReader::Fs(b.open(id)?),
            AnyObjects::S3(b) => AnyReader::S3(b.open(id)?),
        })
    }

    fn exists(&self, id: &ObjectId) -> io::Result<bool> {
        match self {
            AnyObjects::Fs(b) => b.exists(id),
            AnyObjects::S3(b) => b.exists(id),
        }
    }

    fn remove(&self, id: &ObjectId) -> io::Result<bool> {
        match self {
            AnyObjects::Fs(b) => b.remove(id),
            AnyObjects::S3(b) => b.remove(id),
        }
    }

    fn list(&self) -> io::Result<Vec<(ObjectId, SystemTime)>> {
        match self {
            AnyObjects::Fs(b) => b.list(),
            AnyObjects::S3(b) => b.list(),
        }
    }

    fn clean_temp(&self) -> io::Result<usize> {
        match self {
            AnyObjects::Fs(b) => b.clean_temp(),
            AnyObjects::S3(b) => b.clean_temp(),
        }
    }

    fn put_part(&self, part: &PartKey, temp: AnyTemp) -> io::Result<()> {
        match (self, temp) {
            (AnyObjects::Fs(b), AnyTemp::Fs(t)) => b.put_part(part, t),
            (AnyObjects::S3(b), AnyTemp::S3(t)) => b.put_part(part, t),
            (_, t) => {
                t.discard();
                Err(mismatch())
            }
        }
    }

    fn open_part(&self, part: &PartKey) -> io::Result<AnyReader> {
        Ok(match self {
            AnyObjects::Fs(b) => AnyReader::Fs(b.open_part(part)?),
            AnyObjects::S3(b) => AnyReader::S3(b.open_part(part)?),
        })
    }

    fn remove_parts(&self, parts: &[PartKey]) -> io::Result<()> {
        match self {
            AnyObjects::Fs(b) => b.remove_parts(parts),
            AnyObjects::S3(b) => b.remove_parts(parts),
        }
    }

    fn list_parts(&self) -> io::Result<Vec<(PartKey, SystemTime)>> {
        match self {
            AnyObjects::Fs(b) => b.list_parts(),
            AnyObjects::S3(b) => b.list_parts(),
        }
    }

    /// Delegates, so that the filesystem keeps taking upload files over without a copy.
    fn adopt(&self, path: PathBuf) -> io::Result<AnyTemp> {
        Ok(match self {
            AnyObjects::Fs(b) => AnyTemp::Fs(b.adopt(path)?),
            AnyObjects::S3(b) => AnyTemp::S3(b.adopt(path)?),
        })
    }
}

impl TempObject for AnyTemp {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            AnyTemp::Fs(t) => t.write_all(buf),
            AnyTemp::S3(t) => t.write_all(buf),
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        match self {
            AnyTemp::Fs(t) => t.sync(),
            AnyTemp::S3(t) => t.sync(),
        }
    }

    fn discard(self) {
        match self {
            AnyTemp::Fs(t) => t.discard(),
            AnyTemp::S3(t) => t.discard(),
        }
    }
}

impl AnyReader {
    /// The object's length in bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        match self {
            AnyReader::Fs(f) => Ok(f.metadata()?.len()),
            AnyReader::S3(r) => Ok(r.len()),
        }
    }
}

impl Read for AnyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            AnyReader::Fs(r) => r.read(buf),
            AnyReader::S3(r) => r.read(buf),
        }
    }
}

impl Seek for AnyReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            AnyReader::Fs(r) => r.seek(to),
            AnyReader::S3(r) => r.seek(to),
        }
    }
}

/// The marker file of a store whose objects live in a bucket. A store is bound to where its
/// bytes are: opening it on the other backend would serve a store whose objects all look
/// missing (or, the other way round, strand its files), so both directions are refused.
pub(crate) const REMOTE_MARKER: &str = "OBJECTS-S3";

/// Whether the store in `dir` keeps its objects in a bucket.
pub(crate) fn is_remote_store(dir: &Path) -> bool {
    dir.join(REMOTE_MARKER).is_file()
}

/// Where a manager's stores put their objects; each store gets its own view of it.
#[derive(Debug)]
pub(crate) enum ObjectsRoot {
    /// `<store>/objects/` in each store directory.
    File,
    /// One bucket (one client, one runtime) shared by every store, each under its own prefix.
    S3(S3Objects),
}

impl ObjectsRoot {
    /// The backend of the store in `dir` (named by its last component). A writable open binds
    /// a new store to this backend; both kinds of open refuse a store bound to the other one.
    pub(crate) fn open_store(&self, dir: &Path, writable: bool) -> crate::Result<AnyObjects> {
        let remote = is_remote_store(dir);
        match self {
            ObjectsRoot::File if remote => Err(bound_elsewhere(dir, "objects = \"s3\"")),
            ObjectsRoot::File => Ok(AnyObjects::Fs(FsObjects::open(dir)?)),
            ObjectsRoot::S3(_) if !remote && dir.join("objects").exists() => {
                Err(bound_elsewhere(dir, "objects = \"file\""))
            }
            ObjectsRoot::S3(_) if !remote && !writable => Err(crate::StorageError::Corrupt(
                format!("{} has no {REMOTE_MARKER} marker", dir.display()),
            )),
            ObjectsRoot::S3(base) => {
                if !remote {
                    write_marker(dir)?;
                }
                let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                    crate::StorageError::Invalid {
                        what: "store name",
                        reason: dir.display().to_string(),
                    }
                })?;
                Ok(AnyObjects::S3(base.scoped(name, &dir.join("tmp"))?))
            }
        }
    }
}

fn bound_elsewhere(dir: &Path, other: &str) -> crate::StorageError {
    crate::StorageError::Invalid {
        what: "object storage",
        reason: format!(
            "the store {} keeps its objects with [storage] {other}; configure that, moving a store between backends is not supported yet",
            dir.display()
        ),
    }
}

/// Writes the marker durably before any object can reach the bucket, so that a crash never
/// leaves a store whose bytes are in the bucket but which looks like a file store.
fn write_marker(dir: &Path) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::perms::FILE_MODE)
        .open(dir.join(REMOTE_MARKER))?;
    f.write_all(b"objects in S3: <prefix><store>/objects/\n")?;
    f.sync_all()?;
    super::fs::sync_dir(dir)
}

#[cfg(test)]
mod tests;
