//! Reading an object by its reference, before any commit names it.
//!
//! A deploy stages every file first and commits them all at once; checks that must see the
//! content (rendering a site's pages before it goes live) run in between, when no path of
//! any commit points at the staged objects yet. [`Store::read_object`] reads such an object
//! (or any object the store holds) by the [`ObjectRef`] that `stage` returned, into memory and
//! bounded by the caller's limit, so a check never holds more than it asked for.

use std::io::Read;

use crate::error::{Result, StorageError};
use crate::objects::ObjectBackend;
use crate::store::Store;
use crate::types::ObjectRef;

impl Store {
    /// The bytes of `object`, staged or committed. Fails with `TooLarge` when the object is
    /// larger than `max` bytes (or [`crate::READ_MAX`]), and with `NotFound` when the store does
    /// not hold it (never staged here, or already collected as garbage).
    ///
    /// The object's id decides what is read; its recorded `size` is only a hint, so a reference
    /// whose size understates the content still cannot read past `max`.
    pub async fn read_object(&self, object: &ObjectRef, max: u64) -> Result<Vec<u8>> {
        let max = max.min(crate::store::READ_MAX);
        let what = format!("object {}", object.id);
        if object.size > max {
            return Err(StorageError::TooLarge {
                path: what,
                size: object.size,
            });
        }
        let id = object.id;
        self.blocking(move |inner| {
            // Content that small objects share with earlier commits may live only in the
            // metadata (staging then discards its file), so the inline bytes come first.
            if let Some(bytes) = inner.read(|r| r.inline_bytes(&id))? {
                return bounded(bytes, max, &what);
            }
            let reader = inner.objects.open(&id).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    StorageError::NotFound(what.clone())
                } else {
                    e.into()
                }
            })?;
            let mut out = Vec::new();
            reader.take(max.saturating_add(1)).read_to_end(&mut out)?;
            bounded(out, max, &what)
        })
        .await
    }
}

/// `bytes` when within `max`, else `TooLarge`.
fn bounded(bytes: Vec<u8>, max: u64, what: &str) -> Result<Vec<u8>> {
    if bytes.len() as u64 > max {
        return Err(StorageError::TooLarge {
            path: what.to_owned(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
#[path = "staged_tests.rs"]
mod tests;
