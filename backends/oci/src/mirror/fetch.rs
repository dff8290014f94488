//! Fetching a missing blob from upstream once, however many clients ask for it at the same
//! time, and streaming it to the first client while it is staged into the store.
//!
//! The first request for a digest becomes the leader: it opens the upstream answer, hands a
//! background task the stream, and answers its client from a bounded channel the task feeds.
//! The task feeds the same chunks, through a second bounded channel, to `Store::stage_with`,
//! so neither side ever holds more than a few chunks and the blob is never in memory. The
//! task (not the client's request) owns the fetch, so a client that goes away does not
//! abandon a half-stored blob. Later requests for the same digest wait until the leader's
//! task has committed the blob (or failed), then are served from the store.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use everlock_host::auth::Principal;
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::StatusCode;
use everlock_host::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderValue};
use everlock_host::storage::{StageOptions, Store};
use futures_util::{Stream, StreamExt as _};
use tokio::sync::{mpsc, watch};
use tokio_util::io::StreamReader;

use crate::error::OciResult;
use crate::names::{Name, OciDigest};
use crate::registry::header;

/// Chunks in flight on each side of the tee: a few hundred KiB at most per fetch.
const CHANNEL_CHUNKS: usize = 16;
/// How long a client may refuse to take the next chunk before the fetch goes on without it
/// (the store still gets the whole blob).
const CLIENT_STALL: Duration = Duration::from_secs(30);
/// Blobs fetched at the same time at most; more missing blobs wait for a slot. Each fetch
/// holds an upstream connection and a staged file.
pub(crate) const MAX_FLIGHTS: usize = 64;

/// The fetches in progress, by digest; the receiver turns `true` when a fetch is over.
#[derive(Clone, Default)]
pub(crate) struct Flights(Arc<Mutex<HashMap<OciDigest, watch::Receiver<bool>>>>);

/// What a request for a missing blob does.
pub(crate) enum Role {
    /// Fetch it; dropping the guard ends the flight and wakes the followers.
    Leader(FlightGuard),
    /// Wait for the leader, then read the store.
    Follower(watch::Receiver<bool>),
}

/// The leader's claim on a digest.
pub(crate) struct FlightGuard {
    flights: Flights,
    digest: OciDigest,
    done: watch::Sender<bool>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.flights
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.digest);
        let _ = self.done.send(true);
    }
}

impl Flights {
    /// Joins the flight of `digest`, leading it if there is none.
    pub(crate) fn join(&self, digest: &OciDigest) -> Role {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = map.get(digest) {
            return Role::Follower(rx.clone());
        }
        let (done, rx) = watch::channel(false);
        map.insert(digest.clone(), rx);
        Role::Leader(FlightGuard {
            flights: self.clone(),
            digest: digest.clone(),
            done,
        })
    }

    /// Fetches in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Waits until a followed flight is over (however it ended).
pub(crate) async fn follow(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|done| *done).await;
}

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
    /// The fetch's slot among [`MAX_FLIGHTS`], held until it is over.
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

/// Copies the upstream stream to the store and, while it keeps up, to the client; then
/// commits the blob. The guard is dropped last, so followers find the blob committed.
async fn pump(
    upstream: reqwest::Response,
    target: Target,
    client_tx: mpsc::Sender<io::Result<Bytes>>,
    guard: FlightGuard,
) {
    let (store_tx, store_rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let stage = target.store.stage_with(
        StreamReader::new(Box::pin(receiver_stream(store_rx))),
        StageOptions {
            expect: target.digest.to_store(),
            sha512: false,
        },
    );
    let feed = async move {
        let mut body = upstream.bytes_stream();
        let mut store = Some(store_tx);
        let mut client = Some(client_tx);
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    // The store gave up (a full disk): the client still gets the blob, it
                    // is just not cached.
                    if let Some(s) = &store
                        && s.send(Ok(chunk.clone())).await.is_err()
                    {
                        store = None;
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
                    if let Some(s) = &store {
                        let _ = s.send(Err(io::Error::other(message.clone()))).await;
                    }
                    if let Some(c) = &client {
                        let _ = c.send(Err(io::Error::other(message))).await;
                    }
                    return;
                }
            }
        }
    };
    let (staged, ()) = tokio::join!(stage, feed);
    let Target {
        store,
        principal,
        name,
        digest,
        permit,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_per_digest_and_followers_wake_when_it_ends() {
        let flights = Flights::default();
        let d = OciDigest::sha256_of(b"x");
        let Role::Leader(guard) = flights.join(&d) else {
            panic!("first is the leader");
        };
        let Role::Follower(rx) = flights.join(&d) else {
            panic!("second follows");
        };
        let other = OciDigest::sha256_of(b"y");
        assert!(matches!(flights.join(&other), Role::Leader(_)));
        assert_eq!(flights.len(), 1, "the dropped leader of y ended its flight");
        let waiter = tokio::spawn(follow(rx));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard);
        waiter.await.unwrap();
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join(&d), Role::Leader(_)));
    }
}
