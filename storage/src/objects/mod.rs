//! The object-bytes side of a store, behind an interface so that an S3 implementation can
//! replace the local filesystem later (reference/storage.md §10).
//!
//! Objects are immutable and named by their blake3 hash. The metadata never refers to an object
//! before `publish` has made it durable, which is what makes a crash at any point safe.

mod any;
mod bridge;
#[cfg(test)]
mod conformance;
mod fs;
pub(crate) mod s3;

use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

pub(crate) use any::{AnyObjects, AnyReader, ObjectsRoot, is_remote_store};
pub(crate) use bridge::Bridged;
#[cfg(test)]
pub(crate) use fs::FsObjects;
pub use s3::S3Config;
pub(crate) use s3::S3Objects;

use crate::digest::ObjectId;

/// Where content bytes live.
pub(crate) trait ObjectBackend: Send + Sync + 'static {
    /// An object being written, not visible to readers.
    type Temp: TempObject;
    /// A reader of a published object.
    type Reader: io::Read + io::Seek + Send + 'static;

    /// Starts a new temporary object.
    fn create_temp(&self) -> io::Result<Self::Temp>;
    /// Makes a durable temporary object visible under `id`, never overwriting an existing one.
    fn publish(&self, temp: Self::Temp, id: &ObjectId) -> io::Result<Published>;
    /// Opens a published object.
    fn open(&self, id: &ObjectId) -> io::Result<Self::Reader>;
    /// Whether an object is published.
    fn exists(&self, id: &ObjectId) -> io::Result<bool>;
    /// Deletes a published object; `false` if it was already gone.
    fn remove(&self, id: &ObjectId) -> io::Result<bool>;
    /// Every published object with its modification time.
    fn list(&self) -> io::Result<Vec<(ObjectId, SystemTime)>>;
    /// Deletes every temporary object (only safe while no stage is running).
    fn clean_temp(&self) -> io::Result<usize>;

    /// Stores a durable temporary object as one chunk of an upload session (the files backend:
    /// `<store>/uploads/<session>/<name>`; S3: `<prefix><store>/uploads/<session>/<name>`).
    /// Parts are written once under a name no other append uses, so they never overwrite
    /// anything; the metadata decides which parts belong to the session.
    fn put_part(&self, part: &PartKey, temp: Self::Temp) -> io::Result<()>;
    /// Opens a stored part.
    fn open_part(&self, part: &PartKey) -> io::Result<Self::Reader>;
    /// Deletes parts; parts already gone are not an error.
    fn remove_parts(&self, parts: &[PartKey]) -> io::Result<()>;
    /// Every stored part with its modification time. Only the sweep of orphaned parts lists
    /// them; finishing and expiring sessions use the parts the metadata names.
    fn list_parts(&self) -> io::Result<Vec<(PartKey, SystemTime)>>;

    /// Takes over a durable local file (a finished single-node upload session) as a temporary
    /// object, so it is published like any stage. The file is consumed: once this returns, its
    /// bytes belong to the temporary object and its name may be gone. Upload bytes reach
    /// object storage only through this method (single-node sessions) or as parts
    /// ([`ObjectBackend::put_part`], sessions of shared stores), never by writing into a
    /// backend's storage themselves.
    ///
    /// The default copies the file into [`ObjectBackend::create_temp`] and removes it; a
    /// backend whose temporary objects are local files (the filesystem) takes the file over
    /// without copying.
    fn adopt(&self, path: PathBuf) -> io::Result<Self::Temp> {
        let mut source = std::fs::File::open(&path)?;
        let mut temp = self.create_temp()?;
        let copied = copy_into(&mut source, &mut temp).and_then(|()| temp.sync());
        if let Err(e) = copied {
            temp.discard();
            return Err(e);
        }
        std::fs::remove_file(&path)?;
        Ok(temp)
    }
}

/// Streams a file into a temporary object in bounded chunks.
pub(super) fn copy_into<T: TempObject>(source: &mut std::fs::File, temp: &mut T) -> io::Result<()> {
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = io::Read::read(source, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        temp.write_all(buf.get(..n).unwrap_or_default())?;
    }
}

/// One chunk of an upload session in object storage: the session, the offset its bytes start
/// at, and a random tag of the append that wrote it. The tag keeps two appends racing for the
/// same offset (on two nodes) apart: each writes its own part, the metadata's compare-and-swap
/// picks one, and the loser deletes only its own part.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PartKey {
    /// The session id (32 lowercase hex digits).
    pub(crate) session: String,
    /// Where the part's bytes start in the session.
    pub(crate) offset: u64,
    /// 16 lowercase hex digits.
    pub(crate) tag: String,
}

impl PartKey {
    /// A part with a fresh random tag.
    pub(crate) fn new(session: &str, offset: u64) -> io::Result<PartKey> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|e| io::Error::other(format!("random: {e}")))?;
        Ok(PartKey {
            session: session.to_owned(),
            offset,
            tag: hex::encode(raw),
        })
    }

    /// The part's name inside its session: the zero-padded offset, so that names sort in
    /// offset order, then the tag.
    pub(crate) fn name(&self) -> String {
        format!("{:020}-{}", self.offset, self.tag)
    }

    /// Parses a session directory and part name as written by this module; anything else
    /// (which we never wrote) is `None` and left alone.
    pub(crate) fn parse(session: &str, name: &str) -> Option<PartKey> {
        let (offset, tag) = name.split_once('-')?;
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !hex(session, 32) || !hex(tag, 16) || offset.len() != 20 {
            return None;
        }
        Some(PartKey {
            session: session.to_owned(),
            offset: offset.parse().ok()?,
            tag: tag.to_owned(),
        })
    }
}

/// A temporary object being streamed.
pub(crate) trait TempObject: Send + 'static {
    /// Appends bytes.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes the written bytes durable; must be called before `publish`.
    fn sync(&mut self) -> io::Result<()>;
    /// Throws the object away.
    fn discard(self);
}

/// The outcome of a publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// The object is new.
    New,
    /// An identical object was already there (a dedupe hit); the temporary one was dropped.
    AlreadyPresent,
}
