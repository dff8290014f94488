//! Response bodies: in-memory bytes (rendered pages, small cached files) or a stream from the
//! store, whole, as one range, or as `multipart/byteranges`. Large files are never buffered.

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use everlock_host::axum::body::Body;
use everlock_host::storage::{CommitId, Store};
use futures_util::{Stream, StreamExt, stream};
use tokio_util::io::ReaderStream;

type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Where a representation's bytes come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Bytes already in memory.
    Memory(Bytes),
    /// A store path at a commit, streamed on demand.
    Store {
        /// The store.
        store: Store,
        /// The path.
        key: String,
        /// The commit the path is read at, so a concurrent deploy cannot mix versions.
        commit: CommitId,
    },
}

impl Source {
    /// `len` bytes from `start`.
    pub async fn range(&self, start: u64, len: u64) -> io::Result<Body> {
        Ok(Body::from_stream(self.stream(start, len).await?))
    }

    /// A stream of `len` bytes from `start`.
    async fn stream(&self, start: u64, len: u64) -> io::Result<ByteStream> {
        match self {
            Source::Memory(bytes) => {
                let s = usize::try_from(start)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let e = usize::try_from(start.saturating_add(len))
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let slice = bytes.slice(s..e);
                Ok(Box::pin(stream::once(async move { Ok(slice) })))
            }
            Source::Store { store, key, commit } => {
                let content = store
                    .open_at(key, *commit)
                    .await
                    .map_err(io::Error::other)?;
                let reader = content.range(start, len).await?;
                Ok(Box::pin(ReaderStream::with_capacity(reader, 64 * 1024)))
            }
        }
    }

    /// A `multipart/byteranges` body for inclusive `ranges` of a `total`-byte representation,
    /// with its exact length.
    pub fn multipart(
        &self,
        ranges: &[(u64, u64)],
        total: u64,
        content_type: &str,
        boundary: &str,
    ) -> (Body, u64) {
        let mut length = 0u64;
        let mut parts = Vec::with_capacity(ranges.len());
        for (i, &(start, end)) in ranges.iter().enumerate() {
            let lead = if i == 0 { "" } else { "\r\n" };
            let head = Bytes::from(format!(
                "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end}/{total}\r\n\r\n"
            ));
            length += head.len() as u64 + (end - start + 1);
            parts.push((head, start, end - start + 1));
        }
        let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        length += closing.len() as u64;
        let source = self.clone();
        let body = stream::iter(parts)
            .then(move |(head, start, len)| {
                let source = source.clone();
                async move {
                    let head: ByteStream = Box::pin(stream::once(async move { Ok(head) }));
                    match source.stream(start, len).await {
                        Ok(data) => head.chain(data).boxed(),
                        Err(e) => head.chain(stream::once(async move { Err(e) })).boxed(),
                    }
                }
            })
            .flatten()
            .chain(stream::once(async move { Ok::<_, io::Error>(closing) }));
        (Body::from_stream(body), length)
    }
}
