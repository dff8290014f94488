//! Streaming access to stored content.

use std::io::{self, Cursor, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt, ReadBuf, Take};

use crate::types::Entry;

/// An open version of a path: an async reader with its length that can seek, which is all a
/// Range request needs.
#[derive(Debug)]
pub struct Content {
    entry: Entry,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// A published object file.
    File(tokio::fs::File),
    /// Small content stored inline in the metadata.
    Memory(Cursor<Vec<u8>>),
    /// A published object in a bucket, read through ranged GETs on the blocking pool.
    Remote(crate::objects::Bridged<crate::objects::s3::S3Reader>),
}

impl Content {
    pub(crate) fn file(entry: Entry, file: std::fs::File) -> Self {
        Self {
            entry,
            source: Source::File(tokio::fs::File::from_std(file)),
        }
    }

    pub(crate) fn remote(entry: Entry, reader: crate::objects::s3::S3Reader) -> Self {
        Self {
            entry,
            source: Source::Remote(crate::objects::Bridged::new(reader)),
        }
    }

    pub(crate) fn memory(entry: Entry, bytes: Vec<u8>) -> Self {
        Self {
            entry,
            source: Source::Memory(Cursor::new(bytes)),
        }
    }

    /// The length in bytes.
    pub fn len(&self) -> u64 {
        self.entry.size
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> bool {
        self.entry.size == 0
    }

    /// What was opened: path, version, object id and digests.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// A reader of `len` bytes starting at `start` (clamped to the end of the content).
    pub async fn range(mut self, start: u64, len: u64) -> io::Result<Take<Content>> {
        if start > self.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range starts past the end",
            ));
        }
        self.seek(SeekFrom::Start(start)).await?;
        Ok(self.take(len))
    }
}

impl AsyncRead for Content {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().source {
            Source::File(f) => Pin::new(f).poll_read(cx, buf),
            Source::Memory(c) => Pin::new(c).poll_read(cx, buf),
            Source::Remote(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncSeek for Content {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        match &mut self.get_mut().source {
            Source::File(f) => Pin::new(f).start_seek(position),
            Source::Memory(c) => Pin::new(c).start_seek(position),
            Source::Remote(r) => Pin::new(r).start_seek(position),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        match &mut self.get_mut().source {
            Source::File(f) => Pin::new(f).poll_complete(cx),
            Source::Memory(c) => Pin::new(c).poll_complete(cx),
            Source::Remote(r) => Pin::new(r).poll_complete(cx),
        }
    }
}
