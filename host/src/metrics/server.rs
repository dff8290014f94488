//! The metrics listener: `GET /metrics` (Prometheus text, or OpenMetrics when the scraper
//! asks for it), `GET /healthz` (the process is alive) and `GET /readyz` (every listener is
//! serving and every store opens; otherwise 503 with the reasons as JSON).
//!
//! It is bounded like the other listeners: a connection cap, a header-read timeout, and a
//! lifetime per connection, so scrapers cannot pile up connections.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::collect::{StoreProblem, stores_of};
use super::{Format, Metrics};
use crate::Host;

/// Connections the metrics listener serves at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 32;

/// Time a scraper has to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a connection stays open, however busy: scrapers reconnect cheaply.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// How long a readiness check may take before it reports the stores it has not reached.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which listeners are serving, for `/readyz`. The server marks each configured listener
/// when its task starts and when it stops.
#[derive(Debug, Clone, Default)]
pub struct ListenerStatus(Arc<Mutex<BTreeMap<&'static str, bool>>>);

impl ListenerStatus {
    /// Records whether `listener` is serving.
    pub fn set(&self, listener: &'static str, serving: bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(listener, serving);
    }

    /// Marks `listener` (already bound) as serving now, and as not serving once `run`, its
    /// serving task, returns.
    pub fn track<F: Future<Output = ()>>(
        &self,
        listener: &'static str,
        run: F,
    ) -> impl Future<Output = ()> + use<F> {
        self.set(listener, true);
        let status = self.clone();
        async move {
            run.await;
            status.set(listener, false);
        }
    }

    fn not_serving(&self) -> Vec<&'static str> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, serving)| !**serving)
            .map(|(name, _)| *name)
            .collect()
    }
}

/// What every request of the metrics listener needs.
#[derive(Clone)]
struct Context {
    host: Host,
    metrics: Metrics,
    listeners: ListenerStatus,
}

/// Serves the metrics endpoints on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    host: Host,
    listeners: ListenerStatus,
    shutdown: CancellationToken,
) {
    let ctx = Context {
        metrics: host.metrics().clone(),
        host,
        listeners,
    };
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(handle(&ctx, &req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_LIFETIME, conn) => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
    drop(listener);
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), connections.wait()).await;
}

async fn handle<B>(ctx: &Context, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match req.uri().path() {
        "/metrics" => {
            let format = negotiate(req.headers());
            let text = ctx.metrics.render(&ctx.host, format).await;
            reply(StatusCode::OK, format.content_type(), text)
        }
        "/healthz" => reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        "/readyz" => {
            let problems = readiness(ctx).await;
            let status = if problems.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = serde_json::json!({
                "ready": problems.is_empty(),
                "problems": problems,
            });
            reply(status, "application/json", format!("{body}\n"))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics, /healthz or /readyz\n",
        ),
    }
}

/// OpenMetrics when the `Accept` header names it, else the Prometheus text format.
pub fn negotiate(headers: &http::HeaderMap) -> Format {
    let asks = headers.get_all(ACCEPT).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|item| {
                item.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/openmetrics-text")
                })
            })
        })
    });
    if asks {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

/// Every reason the server is not ready, as JSON objects; empty when it is ready.
async fn readiness(ctx: &Context) -> Vec<serde_json::Value> {
    let mut problems: Vec<serde_json::Value> = ctx
        .listeners
        .not_serving()
        .into_iter()
        .map(|name| serde_json::json!({ "listener": name, "error": "not serving" }))
        .collect();
    for p in store_problems(ctx).await {
        problems.push(serde_json::json!({ "store": p.store, "error": p.error }));
    }
    problems
}

/// The stores that do not open, within [`READY_TIMEOUT`] for all of them together.
async fn store_problems(ctx: &Context) -> Vec<StoreProblem> {
    let stores = stores_of(&ctx.host);
    let scrape = &ctx.metrics.inner.scrape;
    scrape.prune(&stores);
    let mut problems = Vec::new();
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    for name in stores.into_keys() {
        let opened = tokio::time::timeout_at(deadline, scrape.open(&ctx.host, &name)).await;
        let error = match opened {
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => error,
            Err(_) => "not checked: the readiness check ran out of time".to_owned(),
        };
        problems.push(StoreProblem { store: name, error });
    }
    problems
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
