//! Request bodies that a response left unread.
//!
//! A backend may answer before reading the request body (a 401 to an unauthenticated upload,
//! a 413, a 400). hyper then reads no further and closes the HTTP/1.1 connection after the
//! response, without saying so in the response, and a client that reuses the connection (Go's
//! net/http does, for its authenticated retry) reads EOF. The frontend therefore wraps every
//! request body in [`Tracked`], which hands an unfinished body back when the backend drops
//! it; [`settle`] then reads and discards a bounded rest in the background so the connection
//! stays usable, and announces `Connection: close` whenever it cannot promise that.
//!
//! HTTP/2 needs none of this: an unread stream is reset on its own, and the connection
//! carries on.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONNECTION, HeaderValue};
use http::{Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::idle::{Activity, InFlight};

/// The most of an unread request body the server reads and discards to keep an HTTP/1.1
/// connection open; a longer (or unknown) rest closes the connection instead.
pub(crate) const DRAIN_LIMIT: u64 = 256 * 1024;

/// Where an unfinished request body goes when the backend drops it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leftover(Arc<Mutex<Option<Incoming>>>);

impl Leftover {
    fn put(&self, body: Incoming) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(body);
    }

    fn take(&self) -> Option<Incoming> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// A request body that, dropped before its end, hands the rest to its [`Leftover`] instead
/// of letting hyper give up on the connection.
#[derive(Debug)]
pub(crate) struct Tracked {
    inner: Option<Incoming>,
    /// The body reported its end (or an error), so nothing is left to drain.
    finished: bool,
    leftover: Leftover,
}

impl Tracked {
    /// Wraps `body`; its unread rest will appear in `leftover`.
    pub(crate) fn new(body: Incoming, leftover: Leftover) -> Self {
        Tracked {
            inner: Some(body),
            finished: false,
            leftover,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(body) = self.inner.take()
            && !body.is_end_stream()
        {
            self.leftover.put(body);
        }
    }
}

/// What the request looked like, for [`settle`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestFacts {
    /// The request's HTTP version.
    pub(crate) version: Version,
    /// Whether it carried `Expect: 100-continue`.
    pub(crate) expects_continue: bool,
}

/// Deals with the request body a response left unread: on HTTP/1.x, a rest of known length
/// up to [`DRAIN_LIMIT`] is read and discarded in the background (within `timeout`) so the
/// connection stays open; anything else adds `Connection: close` to `response`. A request
/// that expected `100 Continue` was never invited to send its body, so it is not waited for.
pub(crate) fn settle(
    response: &mut Response<Body>,
    request: RequestFacts,
    leftover: &Leftover,
    activity: &Arc<Activity>,
    timeout: Duration,
) {
    let http1 = matches!(
        request.version,
        Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
    );
    if !http1 || response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let Some(body) = leftover.take() else {
        return;
    };
    let fits = body
        .size_hint()
        .exact()
        .is_some_and(|rest| rest <= DRAIN_LIMIT);
    if !fits || request.expects_continue {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if request.expects_continue {
        return;
    }
    // Even when the connection will close, reading a bounded rest first lets the client
    // finish writing and read the response, instead of meeting a reset.
    tokio::spawn(discard(body, timeout, activity.request()));
}

/// Reads and drops up to [`DRAIN_LIMIT`] bytes of `body` within `timeout`. Dropping the body
/// early makes hyper close the connection after the response, which is what an over-long or
/// stalled body deserves.
async fn discard(mut body: Incoming, timeout: Duration, in_flight: InFlight) {
    let _in_flight = in_flight;
    let drained = tokio::time::timeout(timeout, async {
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return false;
            };
            if let Some(data) = frame.data_ref() {
                total = total.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
                if total > DRAIN_LIMIT {
                    return false;
                }
            }
        }
        true
    })
    .await;
    if drained != Ok(true) {
        tracing::debug!("unread request body not drained; the connection will close");
    }
}
