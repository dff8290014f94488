//! Streaming a missing blob from upstream to the client that leads its fetch (`flights`)
//! while it is staged into the store.
//!
//! The leader opens the upstream answer, hands a background task the stream, and answers its
//! client from a bounded channel the task feeds.
//! The task also hands the chunks to `Store::stage_with` while the store keeps within
//! `catchup::LAG` bytes of the client; a store further behind leaves the tee and reads the
//! rest of the blob from upstream itself, so the client gets the upstream's speed, not the
//! store's, and the blob is never in memory. The task (not the client's request) owns the
//! fetch, so a client that goes away does not abandon a half-stored blob. Later requests for
//! the same digest wait until the leader's task has committed the blob (or failed), then are
//! served from the store.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::StatusCode;
use everlock_host::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderValue};
use everlock_host::storage::{StageOptions, Store};
use futures_util::{Stream, StreamExt as _};
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use super::catchup::{self, Resume, StoreFeed, TeeRunning};
use super::client::Upstream;
use super::flights::FlightGuard;
use crate::error::OciResult;
use crate::names::{Name, OciDigest};
use crate::respond::header;

/// Chunks in flight to the client: a few MiB at most per fetch.
const CHANNEL_CHUNKS: usize = 16;
/// How long a client may refuse to take the next chunk before the fetch goes on without it
/// (the store still gets the whole blob).
const CLIENT_STALL: Duration = Duration::from_secs(30);

/// A receiver as a stream.
fn receiver_stream<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// Where a fetched blob goes once stored.
pub(crate) struct Target {
    pub(crate) store: Store,
    pub(crate) principal: Principal,
    pub(crate) name: Name,
    pub(crate) digest: OciDigest,
    /// The upstream, for the part of the blob the store reads on its own (`catchup`).
    pub(crate) upstream: Arc<Upstream>,
    /// The fetch's slot among [`super::flights::MAX_FLIGHTS`], held until it is over.
    pub(crate) permit: tokio::sync::OwnedSemaphorePermit,
}

/// Starts the tee of an upstream `200` answer and returns the client's response; the
/// background task commits the blob to `target` and ends the flight when done.
pub(crate) fn tee(
    upstream: reqwest::Response,
    target: Target,
    guard: FlightGuard,
) -> OciResult<Response> {
    let length = upstream.content_length();
    let (client_tx, client_rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let digest = target.digest.to_string();
    tokio::spawn(pump(upstream, target, client_tx, guard));
    let mut response = Response::new(Body::from_stream(receiver_stream(client_rx)));
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    if let Some(n) = length {
        h.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert("docker-content-digest", header(&digest)?);
    h.insert(ETAG, header(&format!("\"{digest}\""))?);
    Ok(response)
}

/// Copies the upstream stream to the client and, while it keeps up, to the store (which
/// otherwise reads the rest itself, see `catchup`); then commits the blob. The guard is
/// dropped last, so followers find the blob committed.
async fn pump(
    upstream: reqwest::Response,
    target: Target,
    client_tx: mpsc::Sender<io::Result<Bytes>>,
    guard: FlightGuard,
) {
    let (store_feed, running, store_stream) = catchup::store_side(Resume {
        upstream: target.upstream.clone(),
        name: target.name.clone(),
        digest: target.digest.clone(),
        length: upstream.content_length(),
    });
    let stage = async {
        #[cfg(test)]
        gate::wait(&target.digest).await;
        let reader = StreamReader::new(Box::pin(store_stream));
        let opts = StageOptions {
            expect: target.digest.to_store(),
            sha512: false,
        };
        target.store.stage_with(reader, opts).await
    };
    let (staged, ()) = tokio::join!(stage, feed(upstream, store_feed, running, client_tx));
    let Target {
        store,
        principal,
        name,
        digest,
        permit,
        ..
    } = target;
    match staged {
        Ok(object) => {
            if let Err(e) =
                crate::blobs::commit_blob(&store, &principal, &name, &digest, object).await
            {
                tracing::warn!(%name, %digest, error = %e, "oci mirror: cannot commit a fetched blob");
            }
        }
        Err(e) => {
            tracing::warn!(%name, %digest, error = %e, "oci mirror: blob fetch failed");
        }
    }
    drop(permit);
    drop(guard);
}

/// Reads the upstream answer for as long as the client or the store takes its chunks. The
/// client is never held back by the store: a store more than `catchup::LAG` behind leaves
/// the tee (and reads the rest once `running` is dropped, when this returns). Without a
/// client, the store sets the pace.
async fn feed(
    upstream: reqwest::Response,
    store_feed: StoreFeed,
    running: TeeRunning,
    client_tx: mpsc::Sender<io::Result<Bytes>>,
) {
    let _running = running;
    let mut body = upstream.bytes_stream();
    let mut store = Some(store_feed);
    let mut client = Some(client_tx);
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => {
                if let Some(s) = &store {
                    // Left behind (or given up on a full disk): the client still gets the
                    // blob, and the store fetches what it lacks itself, or keeps nothing.
                    let kept = match client {
                        Some(_) => s.offer(chunk.clone()),
                        None => s.give(chunk.clone()).await,
                    };
                    if !kept {
                        store = None;
                    }
                }
                if let Some(c) = &client {
                    let sent = tokio::time::timeout(CLIENT_STALL, c.send(Ok(chunk))).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        client = None;
                    }
                }
                if store.is_none() && client.is_none() {
                    return;
                }
            }
            Err(e) => {
                let message = format!("upstream: {e}");
                if let Some(s) = store {
                    s.fail(message.clone());
                }
                if let Some(c) = &client {
                    let _ = c.send(Err(io::Error::other(message))).await;
                }
                return;
            }
        }
    }
    if let Some(s) = store {
        s.end();
    }
}

/// A test hook that holds a blob's stage back until the test lets it go, as a store slower
/// than any client would.
#[cfg(test)]
pub(crate) mod gate {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};

    use tokio::sync::Semaphore;

    use crate::names::OciDigest;

    static HELD: LazyLock<Mutex<HashMap<OciDigest, Arc<Semaphore>>>> =
        LazyLock::new(Mutex::default);

    /// Holds the stage of `digest` from now on.
    pub(crate) fn hold(digest: &OciDigest) {
        HELD.lock()
            .unwrap()
            .insert(digest.clone(), Arc::new(Semaphore::new(0)));
    }

    /// Lets the stage of `digest` go.
    pub(crate) fn release(digest: &OciDigest) {
        if let Some(s) = HELD.lock().unwrap().remove(digest) {
            s.add_permits(1);
        }
    }

    /// Waits while the stage of `digest` is held.
    pub(crate) async fn wait(digest: &OciDigest) {
        let held = HELD.lock().unwrap().get(digest).cloned();
        if let Some(s) = held {
            let _ = s.acquire().await;
        }
    }
}
