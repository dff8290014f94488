//! Striped in-process locks keyed by object id.
//!
//! They serialise "publish the file + insert its row" (stage) against "delete the row + unlink
//! the file" (GC) for the same object, which SQLite alone cannot do because the file operations
//! happen outside the database transaction (reference/storage.md §5, §6).

use std::sync::{Mutex, MutexGuard};

use crate::digest::ObjectId;

const STRIPES: usize = 64;

/// A fixed set of mutexes; an object always maps to the same one.
#[derive(Debug)]
pub(crate) struct Stripes {
    locks: [Mutex<()>; STRIPES],
}

impl Default for Stripes {
    fn default() -> Self {
        Self {
            locks: std::array::from_fn(|_| Mutex::new(())),
        }
    }
}

impl Stripes {
    /// Locks the stripe of `id`. A poisoned stripe is still usable: it guards no data.
    pub(crate) fn lock(&self, id: &ObjectId) -> MutexGuard<'_, ()> {
        let first = usize::from(id.as_bytes().first().copied().unwrap_or(0));
        let lock = self.locks.get(first % STRIPES).unwrap_or(&self.locks[0]);
        lock.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
