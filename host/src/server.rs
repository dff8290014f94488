//! Lifecycle of the whole server: bind every configured listener up front (so a busy port is
//! a clean startup error), run the frontends, and shut down gracefully on a signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::frontend::http::{self, HttpSettings};
use crate::frontend::ssh::{self, SshSettings, hostkey};
use crate::frontend::tls::{TlsError, TlsState};
use crate::metrics::server::{self as metrics_server, ListenerStatus};
use crate::runtime::Host;
use crate::tls::redirect::HttpHooks;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be bound (typically: the port is in use).
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {error}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The SSH host key could not be loaded or created.
    #[error(transparent)]
    HostKey(#[from] hostkey::HostKeyError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// A server whose listeners are bound but not yet serving.
pub struct Server {
    host: Host,
    http: Option<TcpListener>,
    https: Option<(TcpListener, TlsAcceptor)>,
    settings: HttpSettings,
    ssh: Option<(TcpListener, SshSettings)>,
    metrics: Option<TcpListener>,
    /// Certificates of the HTTPS listener (reload watcher, ACME), when it is on.
    tls: Option<Arc<TlsState>>,
    /// `[acme]`.
    acme: crate::config::AcmeConfig,
}

impl Server {
    /// Binds the configured listeners and prepares TLS. Nothing is served until `run`.
    pub async fn bind(config: &Config, host: Host) -> Result<Server, ServeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|error| ServeError::DataDir {
            path: config.data_dir.clone(),
            error,
        })?;
        let fc = &config.frontend_http;
        let http = match fc.listen_http.addr() {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let (https, tls_state) = match fc.listen_https.addr() {
            Some(addr) => {
                let state = crate::tls::shared::tls_state(
                    host.stores(),
                    &config.data_dir,
                    &fc.certificates,
                )
                .await?;
                let acceptor = TlsAcceptor::from(state.server_config()?);
                (Some((bind(addr).await?, acceptor)), Some(state))
            }
            None => (None, None),
        };
        let hooks = HttpHooks {
            tls: tls_state.clone(),
            https_port: https
                .as_ref()
                .and_then(|(l, _)| l.local_addr().ok())
                .map(|a| a.port()),
            redirect: fc.https_redirect,
        };
        let sc = &config.frontend_ssh;
        let ssh = match sc.listen.addr() {
            Some(addr) => {
                let host_key = hostkey::load_or_create_for(host.stores(), &config.data_dir).await?;
                let settings = SshSettings::from_config(host_key, sc);
                Some((bind(addr).await?, settings))
            }
            None => None,
        };
        // Last, so a busy service port is reported before a busy metrics port.
        let metrics = match config.metrics.listen.addr() {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        Ok(Server {
            host,
            http,
            https,
            ssh,
            metrics,
            tls: tls_state,
            acme: config.acme.clone(),
            settings: HttpSettings {
                header_read_timeout: Duration::from_secs(fc.header_read_timeout_secs.max(1)),
                idle_timeout: Duration::from_secs(fc.idle_timeout_secs.max(1)),
                shutdown_timeout: Duration::from_secs(fc.shutdown_timeout_secs),
                max_connections: fc.max_connections,
                hooks,
            },
        })
    }

    /// The bound plain-HTTP address, if enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The bound HTTPS address, if enabled.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The bound SSH address, if enabled.
    pub fn ssh_addr(&self) -> Option<SocketAddr> {
        self.ssh.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The bound metrics address, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` is cancelled, then waits for in-flight requests (bounded by
    /// the shutdown timeout) and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let table = Arc::clone(self.host.table());
        let mut tasks = tokio::task::JoinSet::new();
        let status = ListenerStatus::default();
        // Without a metrics listener nobody reads the request metrics: skip recording them.
        let metrics = self.metrics.is_some().then(|| self.host.metrics().clone());
        if let Some(tls) = &self.tls {
            tls.spawn_reload(shutdown.clone());
            crate::admin_tls::start(&self.host, tls, &self.acme, shutdown.clone()).await;
        } else if self.acme.enabled {
            tracing::warn!(
                "[acme] is enabled but the HTTPS listener is off: no certificates are ordered"
            );
        }
        if let Some(listener) = self.http {
            let run = http::run(
                listener,
                None,
                Arc::clone(&table),
                self.settings.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            tasks.spawn(status.track("http", run));
        }
        if let Some((listener, acceptor)) = self.https {
            let run = http::run(
                listener,
                Some(acceptor),
                Arc::clone(&table),
                self.settings.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            tasks.spawn(status.track("https", run));
        }
        if let Some((listener, settings)) = self.ssh {
            let run = ssh::run(listener, settings, self.host.clone(), shutdown.clone());
            tasks.spawn(status.track("ssh", run));
        }
        if let Some(listener) = self.metrics {
            let run = metrics_server::run(
                listener,
                self.host.clone(),
                status.clone(),
                shutdown.clone(),
            );
            tasks.spawn(status.track("metrics", run));
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a listener task failed");
            }
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|error| ServeError::Bind { addr, error })
}

/// Cancels `token` on the first SIGINT or SIGTERM. Installing the handlers happens before
/// this returns, so a signal that arrives right after startup is not lost.
pub fn cancel_on_signal(token: CancellationToken) -> Result<(), ServeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name} received: finishing in-flight requests, then exiting");
        token.cancel();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::InstanceSpec;
    use crate::api::{Backend, BackendContext, BackendFactory, BuildError, Frontend};
    use crate::registry::Registry;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    struct Echo(String);
    impl Backend for Echo {
        fn service(&self) -> crate::api::Service {
            let name = self.0.clone();
            crate::api::Service::Http(axum::Router::new().fallback(move || async move { name }))
        }
    }
    fn check(_: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
        Ok(Vec::new())
    }
    fn build(ctx: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
        Ok(Box::new(Echo(ctx.instance.to_string())))
    }
    static ECHO: BackendFactory = BackendFactory {
        kind: "echo-http",
        frontend: Frontend::Http,
        summary: "test",
        check,
        build,
        default_instances: Vec::new,
        example_settings: "",
        access_root: None,
        console: None,
    };

    /// A plan of the one instance `echo-http/name` on `vhost`.
    fn spec(name: &str, vhost: &str) -> crate::config::Plan {
        let spec = InstanceSpec {
            store: Some(format!("echo-{name}").parse().unwrap()),
            ..InstanceSpec::parse("echo-http", name, &[vhost], "/").unwrap()
        };
        crate::config::plan(vec![spec], &Registry::from_factories([&ECHO]).unwrap()).unwrap()
    }

    /// One request over HTTP/2 with prior knowledge (no TLS, no upgrade).
    async fn h2c(addr: SocketAddr, host: &str) -> (u16, String) {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = ::http::Request::get(format!("http://{host}/"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.version(), ::http::Version::HTTP_2);
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn instances_added_and_removed_live_are_routed_immediately() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        config.frontend_http.listen_http = "127.0.0.1:0".parse().unwrap();
        config.frontend_http.listen_https = "off".parse().unwrap();
        config.frontend_ssh.listen = "off".parse().unwrap();
        let shutdown = CancellationToken::new();
        let env = crate::test_util::TestEnv::new().await;
        let host = Host::new(
            Registry::from_factories([&ECHO]).unwrap(),
            env.stores.clone(),
            env.auth.clone(),
            everlock_auth::SystemAuthority::for_tests(),
            shutdown.clone(),
        );
        let server = Server::bind(&config, host.clone()).await.unwrap();
        let addr = server.http_addr().unwrap();
        let running = tokio::spawn(server.run(shutdown.clone()));

        assert_eq!(h2c(addr, "a.example").await.0, 404);
        host.add_instance(&spec("a", "a.example")).unwrap();
        assert_eq!(h2c(addr, "a.example").await, (200, "a".to_owned()));

        // A conflicting change is refused and the running table is untouched.
        assert!(host.add_instance(&spec("b", "a.example")).is_err());
        assert_eq!(h2c(addr, "a.example").await, (200, "a".to_owned()));

        host.replace_instance(&spec("a", "b.example")).unwrap();
        assert_eq!(h2c(addr, "a.example").await.0, 404);
        assert_eq!(h2c(addr, "b.example").await, (200, "a".to_owned()));

        host.remove_instance("echo-http", &"a".parse().unwrap())
            .unwrap();
        assert_eq!(h2c(addr, "b.example").await.0, 404);

        shutdown.cancel();
        running.await.unwrap();
    }
}
