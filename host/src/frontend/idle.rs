//! Per-connection idleness: which connections may be closed because they are not doing
//! anything.
//!
//! hyper has no such limit of its own: hyper-util's protocol sniffing waits forever for the
//! first byte, and an HTTP/2 connection with no stream stays open as long as the peer answers
//! pings. Each connection therefore gets an [`Activity`] record: its I/O is wrapped in
//! [`Watched`] (which notes the first byte received), every request holds an [`InFlight`]
//! guard until its response body is finished, and [`Activity::expired`] resolves when the
//! connection has been silent for the header-read timeout or idle for the idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a connection is to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Not one byte arrived within the header-read timeout.
    Silent,
    /// No request was in progress for the idle timeout.
    Idle,
}

/// What one connection has been doing, shared by its I/O, its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Requests whose response has not finished yet.
    in_flight: AtomicUsize,
    /// Whether any byte has been received.
    first_byte: AtomicBool,
    /// When the connection was handed to HTTP.
    started: Instant,
    /// When the last request finished (or `started`).
    idle_since: Mutex<Instant>,
    /// Woken on every change above, so the watchdog recomputes its deadline.
    changed: Notify,
}

impl Activity {
    /// A record for a connection that starts now.
    pub(crate) fn new() -> Arc<Activity> {
        let now = Instant::now();
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            first_byte: AtomicBool::new(false),
            started: now,
            idle_since: Mutex::new(now),
            changed: Notify::new(),
        })
    }

    /// Marks a request as in progress until the returned guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
        InFlight(Arc::clone(self))
    }

    /// When the connection expires if nothing changes, or `None` while a request is in
    /// progress (or the deadline is too far away to represent).
    fn deadline(
        &self,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        if !self.first_byte.load(Ordering::SeqCst) {
            return self
                .started
                .checked_add(header_timeout)
                .map(|at| (at, Expiry::Silent));
        }
        let since = *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        since.checked_add(idle_timeout).map(|at| (at, Expiry::Idle))
    }

    /// Resolves once the connection has received no byte for `header_timeout` since it
    /// started, or has had no request in progress for `idle_timeout`.
    pub(crate) async fn expired(&self, header_timeout: Duration, idle_timeout: Duration) -> Expiry {
        loop {
            // `notify_one` stores a permit when nobody waits, so a change that happens
            // between computing the deadline and awaiting below is not lost.
            let changed = self.changed.notified();
            let Some((at, why)) = self.deadline(header_timeout, idle_timeout) else {
                changed.await;
                continue;
            };
            if at <= Instant::now() {
                return why;
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(at) => {}
            }
        }
    }

    /// Restarts the idle clock, e.g. to give a peer time to act on a close.
    pub(crate) fn touch(&self) {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.changed.notify_one();
    }

    fn saw_bytes(&self) {
        if !self.first_byte.swap(true, Ordering::SeqCst) {
            self.changed.notify_one();
        }
    }
}

/// A request in progress; dropping it (when the response body is finished or abandoned)
/// starts the idle clock.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The idle start is written before the count drops, so a watchdog that sees zero
        // requests also sees the fresh time.
        *self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_one();
    }
}

/// A connection's byte stream that reports its first received byte to the [`Activity`].
#[derive(Debug)]
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.saw_bytes();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that keeps its request [`InFlight`] until it is finished or dropped.
#[derive(Debug)]
pub(crate) struct Guarded<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Guarded<B> {
    /// Ties `in_flight` to the life of `inner`.
    pub(crate) fn new(inner: B, in_flight: InFlight) -> Self {
        Guarded {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use super::*;

    const HEADER: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_millis(400);

    #[tokio::test]
    async fn silent_connection_expires_after_the_header_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        assert_eq!(activity.expired(HEADER, IDLE).await, Expiry::Silent);
        let took = started.elapsed();
        assert!(took >= HEADER && took < IDLE, "{took:?}");
    }

    #[tokio::test]
    async fn first_byte_switches_to_the_idle_timeout() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.saw_bytes();
        assert_eq!(activity.expired(HEADER, IDLE).await, Expiry::Idle);
        let took = started.elapsed();
        assert!(took >= IDLE && took < IDLE * 2, "{took:?}");
    }

    #[tokio::test]
    async fn idle_clock_starts_when_the_last_request_finishes() {
        let activity = Activity::new();
        activity.saw_bytes();
        let request = activity.request();
        let watchdog = {
            let activity = Arc::clone(&activity);
            tokio::spawn(async move { activity.expired(HEADER, IDLE).await })
        };
        // A long request never counts as idle.
        tokio::time::sleep(IDLE * 2).await;
        assert!(!watchdog.is_finished());
        let finished = Instant::now();
        drop(request);
        assert_eq!(watchdog.await.unwrap(), Expiry::Idle);
        let took = finished.elapsed();
        assert!(took >= IDLE && took < IDLE * 2, "{took:?}");
    }

    #[tokio::test]
    async fn huge_timeouts_never_expire_instead_of_overflowing() {
        let activity = Activity::new();
        let huge = Duration::from_secs(u64::MAX);
        let expired = tokio::time::timeout(IDLE, activity.expired(huge, huge)).await;
        assert!(expired.is_err());
    }
}
