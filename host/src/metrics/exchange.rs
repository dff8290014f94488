//! One HTTP exchange as the frontend observes it: request and response body bytes, the
//! verified login, and the time until the response body ended. When the response body is
//! finished (or dropped, if the client went away), the exchange is counted in the metrics
//! and written to the access log, once.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Buf;
use http::{Method, Version};
use http_body::{Body, Frame, SizeHint};

use super::Metrics;
use super::families::{HttpLabels, status_class};

/// The most of a `User-Agent` the access log keeps: enough for every real client, and a
/// client cannot make log lines arbitrarily long.
const MAX_USER_AGENT: usize = 256;

pub(crate) use crate::api::http_auth::LoginSlot;

/// A byte count shared between a body wrapper and whoever reads it later.
#[derive(Debug, Clone, Default)]
pub(crate) struct ByteCount(Arc<AtomicU64>);

impl ByteCount {
    fn add(&self, n: usize) {
        self.0
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The bytes counted so far.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A body that counts the data bytes passing through it (request bodies).
#[derive(Debug)]
pub(crate) struct Counted<B> {
    inner: B,
    count: ByteCount,
}

impl<B> Counted<B> {
    /// Counts `inner`'s data into `count`.
    pub(crate) fn new(inner: B, count: ByteCount) -> Self {
        Counted { inner, count }
    }
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.count.add(data.remaining());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Everything known about one exchange when its response headers are ready.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// Where the numbers go; `None` when nothing reads them.
    pub(crate) metrics: Option<Metrics>,
    /// When the request arrived.
    pub(crate) started: Instant,
    /// The client.
    pub(crate) remote: SocketAddr,
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// The request's HTTP version.
    pub(crate) version: Version,
    /// The request method.
    pub(crate) method: Method,
    /// The normalised host, or `-`.
    pub(crate) host: String,
    /// The path only: query strings can carry secrets.
    pub(crate) path: String,
    /// The response status.
    pub(crate) status: u16,
    /// The response's `Content-Length`, when it announced one.
    pub(crate) length: Option<u64>,
    /// The backend kind that answered, or `-`.
    pub(crate) kind: &'static str,
    /// The instance name that answered, or `-`.
    pub(crate) instance: String,
    /// The client's `User-Agent`, cut and escaped, or `-`.
    pub(crate) user_agent: String,
    /// The login `Auth` verified for this request.
    pub(crate) login: LoginSlot,
    /// Request body bytes read.
    pub(crate) received: ByteCount,
}

impl Exchange {
    /// Counts and logs the finished exchange: `sent` body bytes, `complete` unless the
    /// client went away before the body ended.
    fn finish(&self, sent: u64, complete: bool) {
        let elapsed = self.started.elapsed();
        let received = self.received.get();
        if let Some(metrics) = &self.metrics {
            let labels = HttpLabels {
                kind: self.kind,
                instance: self.instance.clone(),
                status: status_class(self.status),
            };
            let f = metrics.families();
            f.http_requests.get_or_create(&labels).inc();
            f.http_duration
                .get_or_create(&labels)
                .observe(elapsed.as_secs_f64());
            f.http_request_bytes.get_or_create(&labels).inc_by(received);
            f.http_response_bytes.get_or_create(&labels).inc_by(sent);
        }
        tracing::info!(
            target: "everlock::access",
            remote = %self.remote,
            scheme = %self.scheme,
            version = ?self.version,
            method = %self.method,
            host = %self.host,
            path = %self.path,
            status = self.status,
            instance = %format_args!("{}/{}", self.kind, self.instance),
            login = %self.login.get().unwrap_or("-"),
            user_agent = %self.user_agent,
            bytes_in = received,
            bytes_out = sent,
            duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            complete,
        );
    }
}

/// The `User-Agent` as the access log shows it: at most 256 characters, control and
/// non-ASCII bytes escaped, `-` when absent.
pub(crate) fn user_agent(headers: &http::HeaderMap) -> String {
    let Some(value) = headers.get(http::header::USER_AGENT) else {
        return "-".to_owned();
    };
    let escaped: String = value
        .as_bytes()
        .escape_ascii()
        .take(MAX_USER_AGENT)
        .map(char::from)
        .collect();
    if escaped.is_empty() {
        "-".to_owned()
    } else {
        escaped
    }
}

/// A response body that counts what it sends and finishes its [`Exchange`] when it ends or
/// is dropped.
#[derive(Debug)]
pub(crate) struct Observed<B> {
    inner: B,
    exchange: Option<Exchange>,
    sent: u64,
    ended: bool,
}

impl<B: Body> Observed<B> {
    /// Observes `inner` as the body of `exchange`.
    pub(crate) fn new(inner: B, exchange: Exchange) -> Self {
        // An empty body is never polled: it is complete from the start. So is any body of
        // a response to HEAD, which hyper never sends.
        let ended = inner.is_end_stream() || exchange.method == Method::HEAD;
        Observed {
            inner,
            exchange: Some(exchange),
            sent: 0,
            ended,
        }
    }
}

impl<B: Body + Unpin> Body for Observed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent = this
                        .sent
                        .saturating_add(u64::try_from(data.remaining()).unwrap_or(u64::MAX));
                }
                // hyper stops polling a body that reports its end after a frame.
                this.ended |= this.inner.is_end_stream();
            }
            Poll::Ready(None) => this.ended = true,
            // A body error cuts the response short: the client did not get all of it.
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Observed<B> {
    fn drop(&mut self) {
        // hyper drops the body right after its last frame (or without polling at all for
        // HEAD and bodiless statuses), so the drop is the end of the response either way.
        if let Some(exchange) = self.exchange.take() {
            // hyper stops polling once a body has sent its announced length.
            let complete = self.ended || exchange.length == Some(self.sent);
            exchange.finish(self.sent, complete);
        }
    }
}
