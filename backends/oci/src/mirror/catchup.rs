//! The store's side of a blob fetch: it takes the chunks the tee hands it while it keeps up,
//! and when it falls too far behind the client it leaves the tee and, once the client's
//! transfer is over, fetches the rest of the blob from upstream itself, with a ranged GET
//! from the first byte it lacks.
//!
//! Why: staging writes every byte into a fresh file (and hashes it twice), and on a busy or
//! small machine that is slower than the network. Tied to the client, the store made every
//! cold pull run at its speed (`bench/RESULTS.md`, "Registry mirror"). Buffering the
//! difference would hold up to the whole blob in memory, and a spool file ahead of the stage
//! costs the same page-cache write as the staged file. Reading the rest while the client's
//! transfer still runs was measured too: on two cores the staging write then takes the CPU
//! the client's transfer needs, and the client got no faster. So the client goes at the
//! upstream's speed and the store, once it is `LAG` bytes behind, reads the tail on its own
//! after it; the blob is still verified against its digest and made durable by
//! `Store::stage_with` before anything commits it, however its bytes arrived.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt as _};
use reqwest::StatusCode;
use reqwest::header::CONTENT_RANGE;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::client::Upstream;
use crate::names::{Name, OciDigest};

/// How far (bytes) the store may lag behind the client before it leaves the tee. It bounds
/// the memory of a fetch on the store's side; a blob smaller than this is never fetched twice.
pub(crate) const LAG: u32 = 4 * 1024 * 1024;

/// What the tee hands the store.
enum Piece {
    Chunk(Bytes),
    /// The upstream answer ended: the store has every byte.
    End,
    /// The upstream answer broke; the stage fails with this message.
    Failed(String),
}

/// Where the store reads the rest of a blob once it has left the tee.
pub(crate) struct Resume {
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) name: Name,
    pub(crate) digest: OciDigest,
    /// The blob's length, when the upstream announced it.
    pub(crate) length: Option<u64>,
}

/// The tee's handle on the store side.
pub(crate) struct StoreFeed {
    tx: mpsc::UnboundedSender<Piece>,
    /// Free bytes of the `LAG` window: the feed takes them, the reader gives them back.
    room: Arc<Semaphore>,
}

/// The bytes of the window a chunk takes; a chunk larger than the whole window takes all of
/// it (it can still go once the store has caught up).
fn cost(chunk: &Bytes) -> u32 {
    u32::try_from(chunk.len()).unwrap_or(LAG).min(LAG)
}

impl StoreFeed {
    /// Hands `chunk` to the store if it is within `LAG` of the client; `false` means the
    /// store is too far behind (or gave up), and the tee must leave it.
    pub(crate) fn offer(&self, chunk: Bytes) -> bool {
        match self.room.try_acquire_many(cost(&chunk)) {
            Ok(permit) => {
                permit.forget();
                self.tx.send(Piece::Chunk(chunk)).is_ok()
            }
            Err(_) => false,
        }
    }

    /// Hands `chunk` to the store, waiting for room (with no client left, the store sets the
    /// pace); `false` when the store gave up.
    pub(crate) async fn give(&self, chunk: Bytes) -> bool {
        let room = tokio::select! {
            () = self.tx.closed() => return false,
            room = self.room.acquire_many(cost(&chunk)) => room,
        };
        match room {
            Ok(permit) => {
                permit.forget();
                self.tx.send(Piece::Chunk(chunk)).is_ok()
            }
            Err(_) => false,
        }
    }

    /// The upstream answer ended after the last chunk handed over.
    pub(crate) fn end(self) {
        let _ = self.tx.send(Piece::End);
    }

    /// The upstream answer broke.
    pub(crate) fn fail(self, message: String) {
        let _ = self.tx.send(Piece::Failed(message));
    }
}

/// Held by the tee for as long as it serves the client; a store left behind starts reading
/// the rest of the blob when it is dropped.
pub(crate) struct TeeRunning {
    _done: oneshot::Sender<()>,
}

/// Where the store's reader is.
enum Phase {
    /// Taking chunks from the tee; `offset` bytes so far.
    Tee {
        rx: mpsc::UnboundedReceiver<Piece>,
        room: Arc<Semaphore>,
        offset: u64,
        tee_done: oneshot::Receiver<()>,
    },
    /// Reading the rest from upstream, dropping the first `skip` bytes (an upstream that
    /// ignored the range sends the blob from its start).
    Rest {
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        skip: u64,
    },
    Done,
}

/// A feed for the tee, the tee's token, and the stream the store stages from.
pub(crate) fn store_side(
    resume: Resume,
) -> (
    StoreFeed,
    TeeRunning,
    impl Stream<Item = io::Result<Bytes>> + Send,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (running, tee_done) = oneshot::channel();
    let room = Arc::new(Semaphore::new(LAG as usize));
    let feed = StoreFeed {
        tx,
        room: room.clone(),
    };
    let resume = Arc::new(resume);
    let start = Phase::Tee {
        rx,
        room,
        offset: 0,
        tee_done,
    };
    let stream = futures_util::stream::unfold(start, move |phase| {
        let resume = resume.clone();
        async move { next(phase, &resume).await }
    });
    (feed, TeeRunning { _done: running }, stream)
}

/// The next chunk for the store, and where the reader is after it.
async fn next(mut phase: Phase, resume: &Resume) -> Option<(io::Result<Bytes>, Phase)> {
    loop {
        phase = match phase {
            Phase::Done => return None,
            Phase::Tee {
                mut rx,
                room,
                offset,
                tee_done,
            } => match rx.recv().await {
                Some(Piece::Chunk(chunk)) => {
                    room.add_permits(cost(&chunk) as usize);
                    let offset = offset + chunk.len() as u64;
                    let phase = Phase::Tee {
                        rx,
                        room,
                        offset,
                        tee_done,
                    };
                    return Some((Ok(chunk), phase));
                }
                Some(Piece::End) => return None,
                Some(Piece::Failed(message)) => {
                    return Some((Err(io::Error::other(message)), Phase::Done));
                }
                // The tee left the store behind: the rest comes from upstream, once the
                // client has what it came for.
                None if resume.length == Some(offset) => return None,
                None => {
                    let _ = tee_done.await;
                    match rest(resume, offset).await {
                        Ok(next) => next,
                        Err(e) => return Some((Err(e), Phase::Done)),
                    }
                }
            },
            Phase::Rest { mut body, skip } => match body.next().await {
                None => return None,
                Some(Err(e)) => {
                    return Some((Err(io::Error::other(format!("upstream: {e}"))), Phase::Done));
                }
                Some(Ok(chunk)) if (chunk.len() as u64) <= skip => Phase::Rest {
                    body,
                    skip: skip - chunk.len() as u64,
                },
                Some(Ok(chunk)) => {
                    let from = usize::try_from(skip).unwrap_or(chunk.len());
                    let chunk = chunk.slice(from..);
                    return Some((Ok(chunk), Phase::Rest { body, skip: 0 }));
                }
            },
        };
    }
}

/// Asks upstream for the blob from byte `offset` on.
async fn rest(resume: &Resume, offset: u64) -> io::Result<Phase> {
    tracing::info!(name = %resume.name, digest = %resume.digest, offset, "oci mirror: the store fell behind the client; fetching the rest of the blob separately");
    let answer = resume
        .upstream
        .get_from(&resume.name, &format!("blobs/{}", resume.digest), offset)
        .await
        .map_err(io::Error::other)?;
    let skip = match answer.status() {
        StatusCode::PARTIAL_CONTENT => {
            let start = answer
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(range_start);
            if start != Some(offset) {
                return Err(io::Error::other(format!(
                    "upstream answered a range not starting at byte {offset}"
                )));
            }
            0
        }
        StatusCode::OK => offset,
        status => {
            return Err(io::Error::other(format!(
                "upstream answered {status} for the rest of the blob"
            )));
        }
    };
    Ok(Phase::Rest {
        body: answer.bytes_stream().boxed(),
        skip,
    })
}

/// The first byte of a `Content-Range: bytes <first>-<last>/<length>` value.
fn range_start(value: &str) -> Option<u64> {
    let spec = value.trim().strip_prefix("bytes")?.trim_start();
    let (first, _) = spec.split_once('-')?;
    first.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_starts_are_read() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/*"), Some(0));
        assert_eq!(range_start("items 1-2/3"), None);
        assert_eq!(range_start("bytes */200"), None);
    }
}
