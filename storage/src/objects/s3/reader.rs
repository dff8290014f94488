//! [`S3Reader`]: a published object or part read through ranged GETs.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;

use super::{Client, READ_WINDOW, check_len, request};

/// A published object read through ranged GETs, one [`READ_WINDOW`] at a time.
#[derive(Debug)]
pub(crate) struct S3Reader {
    client: Arc<Client>,
    key: Key,
    len: u64,
    pos: u64,
    window: Bytes,
    window_start: u64,
}

impl S3Reader {
    /// A reader of `key`, whose length a HEAD just told.
    pub(super) fn new(client: Arc<Client>, key: Key, len: u64) -> S3Reader {
        S3Reader {
            client,
            key,
            len,
            pos: 0,
            window: Bytes::new(),
            window_start: 0,
        }
    }

    /// The object's length, known from the HEAD done by `open`.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Fetches the window starting at the current position.
    fn fill(&mut self) -> io::Result<()> {
        let end = self.pos.saturating_add(READ_WINDOW).min(self.len);
        let store = self.client.store.clone();
        let k = self.key.clone();
        let range = self.pos..end;
        let bytes = self
            .client
            .run(async move { store.get_range(&k, range).await })?
            .map_err(request("get", &self.key))?;
        check_len(&self.key, end - self.pos, bytes.len() as u64)?;
        self.window = bytes;
        self.window_start = self.pos;
        Ok(())
    }
}

impl Read for S3Reader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        let window_end = self.window_start + self.window.len() as u64;
        if self.pos < self.window_start || self.pos >= window_end {
            self.fill()?;
        }
        let offset = usize::try_from(self.pos - self.window_start).unwrap_or(usize::MAX);
        let available = self.window.get(offset..).unwrap_or_default();
        let n = available.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for S3Reader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the object",
            ));
        };
        // The window is kept: seeking within it (as range requests often do) costs no request.
        self.pos = target;
        Ok(target)
    }
}
