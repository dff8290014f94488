//! The object-bytes side of a store, behind an interface so that an S3 implementation can
//! replace the local filesystem later (reference/storage.md §10).
//!
//! Objects are immutable and named by their blake3 hash. The metadata never refers to an object
//! before `publish` has made it durable, which is what makes a crash at any point safe.

mod fs;

use std::io;
use std::time::SystemTime;

pub(crate) use fs::FsObjects;

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
