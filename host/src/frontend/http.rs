//! The HTTP(S) frontend: accepts connections, speaks HTTP/1.1 and HTTP/2 (ALPN on TLS,
//! prior knowledge on plain TCP), routes each request by Host and path prefix to an
//! instance's router, and writes the access log and the request metrics when each response
//! body ends (`crate::metrics::exchange`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::header::EXPECT;
use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::drain::{self, Leftover, RequestFacts, Tracked};
use super::idle::{Activity, Guarded, Watched};
pub use super::routing::{Routed, route};
use super::routing::{instance_redirect, request_host};

use crate::api::Scheme;
use crate::metrics::exchange::{ByteCount, Counted, Exchange, LoginSlot, Observed, user_agent};
use crate::metrics::{Listener, Metrics};
use crate::routes::InstanceTable;
use crate::tls::ACME_TLS_ALPN;
use crate::tls::redirect::{HttpHooks, strip_local_hsts};

/// Tunables of one listener.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Time allowed for a TLS handshake, for a connection's first bytes and for a request's
    /// headers.
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// Time in-flight requests get after shutdown starts.
    pub shutdown_timeout: Duration,
    /// Simultaneous connections; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// ACME HTTP-01 answers, the HTTPS redirect and the HSTS rule.
    pub hooks: HttpHooks,
}

/// Serves `listener` until `shutdown` is cancelled, then lets in-flight requests finish for
/// at most `settings.shutdown_timeout`. With `tls`, every connection is a TLS connection.
/// Requests, bytes and open connections are counted in `metrics`, if given (without a
/// metrics listener nobody could read them, so the hot path skips them).
pub async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    table: Arc<InstanceTable>,
    settings: HttpSettings,
    metrics: Option<Metrics>,
    shutdown: CancellationToken,
) {
    let (scheme, kind) = if tls.is_some() {
        (Scheme::Https, Listener::Https)
    } else {
        (Scheme::Http, Listener::Http)
    };
    let connections = TaskTracker::new();
    let limit = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let builder = protocol_builder(&settings);
    while let Some((permit, stream, remote)) = accept(&listener, &limit, &shutdown).await {
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            builder: builder.clone(),
            table: Arc::clone(&table),
            remote,
            scheme,
            settings: settings.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        let tls = tls.clone();
        let open = metrics.as_ref().map(|m| m.connection(kind));
        connections.spawn(async move {
            let _permit = permit;
            let _open = open;
            match tls {
                Some(acceptor) => conn.serve_tls(&acceptor, stream).await,
                None => conn.serve(stream).await,
            }
        });
    }
    drop(listener);
    connections.close();
    tokio::select! {
        () = connections.wait() => tracing::debug!(?scheme, "all connections closed"),
        () = tokio::time::sleep(settings.shutdown_timeout) => {
            tracing::warn!(?scheme, "shutdown timeout reached; abandoning open connections");
        }
    }
}

/// The next connection, once a connection slot is free; `None` when the server shuts down.
async fn accept(
    listener: &TcpListener,
    limit: &Arc<Semaphore>,
    shutdown: &CancellationToken,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let permit = tokio::select! {
        permit = Arc::clone(limit).acquire_owned() => permit.ok()?,
        () = shutdown.cancelled() => return None,
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return None,
        };
        match accepted {
            Ok((stream, remote)) => return Some((permit, stream, remote)),
            Err(e) => {
                // Usually EMFILE or a connection reset before accept; back off briefly
                // instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The HTTP/1.1 + HTTP/2 protocol settings every connection of a listener shares.
fn protocol_builder(settings: &HttpSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    // Pings detect dead HTTP/2 peers; an idle but live peer is closed by the idle watchdog.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// One accepted connection and what serving it needs.
struct Conn {
    builder: auto::Builder<TokioExecutor>,
    table: Arc<InstanceTable>,
    remote: SocketAddr,
    scheme: Scheme,
    settings: HttpSettings,
    metrics: Option<Metrics>,
    shutdown: CancellationToken,
}

impl Conn {
    /// Completes the TLS handshake within the header-read timeout, then serves HTTP on the
    /// encrypted stream.
    async fn serve_tls(self, acceptor: &TlsAcceptor, stream: TcpStream) {
        let remote = self.remote;
        let handshake = acceptor.accept(stream);
        match tokio::time::timeout(self.settings.header_read_timeout, handshake).await {
            // A TLS-ALPN-01 validator only checks the certificate; it never speaks HTTP on
            // the connection.
            Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) => {
                tracing::debug!(%remote, "ACME TLS-ALPN-01 validation handshake");
            }
            Ok(Ok(stream)) => self.serve(stream).await,
            Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
        }
    }

    /// Speaks HTTP on `stream` until the peer closes it, it stays silent or idle for too
    /// long, or the server shuts down (then in-flight requests may finish).
    async fn serve<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Activity::new();
        let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
        let request = RequestContext {
            table: self.table,
            remote: self.remote,
            scheme: self.scheme,
            activity: Arc::clone(&activity),
            drain_timeout: self.settings.header_read_timeout,
            metrics: self.metrics.clone(),
            hooks: self.settings.hooks.clone(),
        };
        let service = hyper::service::service_fn(move |req| {
            let request = request.clone();
            async move { Ok::<_, Infallible>(handle(&request, req).await) }
        });
        let conn = self.builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let remote = self.remote;
        let settings = &self.settings;
        let expiry = tokio::select! {
            result = conn.as_mut() => return log_end(remote, result),
            () = self.shutdown.cancelled() => None,
            why = activity.expired(settings.header_read_timeout, settings.idle_timeout) => Some(why),
        };
        conn.as_mut().graceful_shutdown();
        let Some(why) = expiry else {
            // Server shutdown: `run` bounds the wait for in-flight requests.
            return log_end(remote, conn.await);
        };
        tracing::debug!(%remote, ?why, "closing an unused connection");
        // An HTTP/2 peer is asked to go away and must acknowledge. A request that raced the
        // close still finishes; a peer that ignores the close gets no more than another
        // header-read timeout of idleness.
        activity.touch();
        let grace = settings.header_read_timeout;
        tokio::select! {
            result = conn => log_end(remote, result),
            _ = activity.expired(grace, grace) => {
                tracing::debug!(%remote, "peer ignored the close; dropping the connection");
            }
        }
    }
}

fn log_end<E: std::fmt::Display>(remote: SocketAddr, result: Result<(), E>) {
    if let Err(e) = result {
        tracing::debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// What every request on one connection shares.
#[derive(Clone)]
struct RequestContext {
    table: Arc<InstanceTable>,
    remote: SocketAddr,
    scheme: Scheme,
    activity: Arc<Activity>,
    drain_timeout: Duration,
    metrics: Option<Metrics>,
    hooks: HttpHooks,
}

/// Handles one request from the network: records the peer and scheme, routes, settles an
/// unread request body. The connection counts as busy, and the exchange is timed, until the
/// response body ends; then it is counted and logged.
async fn handle(ctx: &RequestContext, req: Request<Incoming>) -> Response<Body> {
    let in_flight = ctx.activity.request();
    let (req, pending) = Pending::start(ctx, req);
    let (mut response, routed) = match answer_before_routing(ctx, &req) {
        Some((response, host)) => (response, Routed::unrouted(host)),
        None => route(&ctx.table, req).await,
    };
    strip_local_hsts(&routed.host, response.headers_mut());
    drain::settle(
        &mut response,
        pending.facts,
        &pending.leftover,
        &ctx.activity,
        ctx.drain_timeout,
    );
    let exchange = pending.finish(ctx, routed, &response);
    response.map(|body| Body::new(Guarded::new(Observed::new(body, exchange), in_flight)))
}

/// The ACME HTTP-01 answer or the HTTPS redirect that answers a request before any instance
/// sees it, with the request's normalised host.
fn answer_before_routing(
    ctx: &RequestContext,
    req: &Request<Body>,
) -> Option<(Response<Body>, String)> {
    let host = request_host(req).ok()?;
    // Only plain HTTP can be redirected; HTTPS requests skip the extra table lookup.
    let instance = (ctx.scheme == Scheme::Http)
        .then(|| instance_redirect(&ctx.table, &host, req.uri().path()))
        .flatten();
    let response =
        ctx.hooks
            .before_routing(&host, req.uri(), ctx.scheme == Scheme::Https, instance)?;
    Some((response, host))
}

/// What a request's access-log line and metrics need from before it was routed, and the
/// handles that count its body and note what of it was left unread.
struct Pending {
    started: Instant,
    version: Version,
    method: http::Method,
    /// Only the path is logged: query strings can carry secrets.
    path: String,
    user_agent: String,
    login: LoginSlot,
    facts: RequestFacts,
    leftover: Leftover,
    received: ByteCount,
}

impl Pending {
    /// Tags the request with its peer, scheme and login slot, and wraps its body so that the
    /// bytes received and an unread remainder are known when the response is sent.
    fn start(ctx: &RequestContext, mut req: Request<Incoming>) -> (Request<Body>, Pending) {
        let started = Instant::now();
        // A fresh slot per request: `http_auth::authenticate` records the login `Auth`
        // verified.
        let login = LoginSlot::default();
        req.extensions_mut().insert(ConnectInfo(ctx.remote));
        req.extensions_mut().insert(ctx.scheme);
        req.extensions_mut().insert(login.clone());
        let facts = RequestFacts {
            version: req.version(),
            expects_continue: req
                .headers()
                .get(EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")),
        };
        let pending = Pending {
            started,
            version: req.version(),
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            user_agent: user_agent(req.headers()),
            login,
            facts,
            leftover: Leftover::default(),
            received: ByteCount::default(),
        };
        let req = req.map(|body| {
            Body::new(Counted::new(
                Tracked::new(body, pending.leftover.clone()),
                pending.received.clone(),
            ))
        });
        (req, pending)
    }

    /// The exchange that is counted and logged when the response body ends.
    fn finish(self, ctx: &RequestContext, routed: Routed, response: &Response<Body>) -> Exchange {
        Exchange {
            metrics: ctx.metrics.clone(),
            started: self.started,
            remote: ctx.remote,
            scheme: ctx.scheme.as_str(),
            version: self.version,
            method: self.method,
            host: routed.host,
            path: self.path,
            status: response.status().as_u16(),
            length: response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok()),
            kind: routed.kind,
            instance: routed.name,
            user_agent: self.user_agent,
            login: self.login,
            received: self.received,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use http::header::HOST;

    use super::*;
    use crate::api::{Backend, Service};
    use crate::instance::Instance;
    use http_body_util::BodyExt;

    struct Nothing;
    impl Backend for Nothing {
        fn service(&self) -> Service {
            Service::Http(axum::Router::new())
        }
    }

    fn table() -> InstanceTable {
        let router = axum::Router::new()
            .fallback(|req: Request<Body>| async move { format!("hello {}", req.uri().path()) });
        let t = InstanceTable::new();
        t.insert(Instance {
            kind: "test-http",
            frontend: crate::api::Frontend::Http,
            spec: crate::api::InstanceSpec {
                https_redirect: None,
                ..crate::api::InstanceSpec::parse("test-http", "a", &["localhost", "::1"], "/")
                    .unwrap()
            },
            store: "s".parse().unwrap(),
            extra_prefixes: Vec::new(),
            router: Some(router),
            ssh: None,
            commands: None,
            backend: Box::new(Nothing),
        })
        .unwrap();
        t
    }

    async fn send(req: Request<Body>) -> (StatusCode, String) {
        let (resp, _) = route(&table(), req).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get(host: Option<&str>) -> Request<Body> {
        let mut b = Request::get("/x");
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(Body::empty()).unwrap()
    }

    #[test]
    fn the_routed_instance_supplies_its_https_redirect() {
        let t = table();
        t.insert(Instance {
            kind: "test-http",
            frontend: crate::api::Frontend::Http,
            spec: crate::api::InstanceSpec {
                https_redirect: Some(true),
                ..crate::api::InstanceSpec::parse("test-http", "docs", &["localhost"], "/docs")
                    .unwrap()
            },
            store: "d".parse().unwrap(),
            extra_prefixes: Vec::new(),
            router: Some(axum::Router::new()),
            ssh: None,
            commands: None,
            backend: Box::new(Nothing),
        })
        .unwrap();
        // The vhost and the path select the instance; unrouted requests have no value.
        assert_eq!(instance_redirect(&t, "localhost", "/docs/a"), Some(true));
        assert_eq!(instance_redirect(&t, "localhost", "/other"), None);
        assert_eq!(instance_redirect(&t, "unknown.example", "/docs"), None);
    }

    #[tokio::test]
    async fn host_header_routing() {
        assert_eq!(
            send(get(Some("LOCALHOST:8080"))).await,
            (StatusCode::OK, "hello /x".into())
        );
        assert_eq!(
            send(get(Some("localhost."))).await,
            (StatusCode::OK, "hello /x".into())
        );
        assert_eq!(
            send(get(Some("[::1]:8443"))).await,
            (StatusCode::OK, "hello /x".into())
        );
        assert_eq!(
            send(get(Some("nope"))).await,
            (
                StatusCode::NOT_FOUND,
                "No backend configured for host: nope".into()
            )
        );
        assert_eq!(send(get(None)).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(send(get(Some(""))).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(send(get(Some("bad host"))).await.0, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn authority_wins_over_host_header() {
        let req = Request::get("http://localhost:1/y")
            .header(HOST, "nope")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(req).await, (StatusCode::OK, "hello /y".into()));
    }

    #[tokio::test]
    async fn duplicate_host_headers_are_rejected() {
        let req = Request::get("/")
            .header(HOST, "localhost")
            .header(HOST, "other")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(req).await.0, StatusCode::BAD_REQUEST);
    }
}
