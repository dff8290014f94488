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

    /// Takes over a durable local file (a finished upload session) as a temporary object, so
    /// it is published like any stage. The file is consumed: once this returns, its bytes
    /// belong to the temporary object and its name may be gone. Uploads reach object storage
    /// only through this method, never by writing into a backend's storage themselves.
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
