//! Helpers shared by the end-to-end tests: run the real `everlock` binary on free ports and
//! talk to it over plain TCP, HTTP/1.1, HTTP/2 and TLS.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The binary under test.
pub fn everlock_bin() -> &'static str {
    env!("CARGO_BIN_EXE_everlock")
}

/// A port that was free a moment ago. Binding port 0 and releasing it leaves a tiny race
/// with other processes, acceptable for tests on a private machine.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server process with its captured log.
pub struct Server {
    pub child: Child,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub ssh: SocketAddr,
    /// The metrics listener (`/metrics`, `/healthz`, `/readyz`), on a free port so that
    /// parallel servers do not fight over the default one.
    pub metrics: SocketAddr,
    pub data_dir: PathBuf,
    pub log: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `everlock serve` with `config` (a TOML snippet) appended to generated listener
    /// settings, in a fresh data directory, and waits until both listeners accept.
    pub fn start(config: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        Self::start_in(&root, &root.join("data"), config, Some(dir))
    }

    /// Like `start_in`, with extra environment variables for the server process.
    pub fn start_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Server {
        Self::spawn(dir, &dir.join("data"), config, None, env)
    }

    /// Like `start`, but in a caller-owned directory (to restart on the same data).
    pub fn start_in(
        dir: &Path,
        data_dir: &Path,
        config: &str,
        owned: Option<tempfile::TempDir>,
    ) -> Server {
        Self::spawn(dir, data_dir, config, owned, &[])
    }

    fn spawn(
        dir: &Path,
        data_dir: &Path,
        config: &str,
        owned: Option<tempfile::TempDir>,
        env: &[(&str, &str)],
    ) -> Server {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let https: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let ssh: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let file = dir.join("everlock.toml");
        let text = format!(
            "data-dir = {:?}\n[auth]\nbcrypt-cost = 4\n[frontend-ssh]\nlisten = \"{ssh}\"\n[frontend-http]\nlisten-http = \"{http}\"\nlisten-https = \"{https}\"\n{config}",
            data_dir.display().to_string(),
        );
        std::fs::write(&file, text).unwrap();
        let mut child = Command::new(everlock_bin())
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .env("EVERLOCK_METRICS_LISTEN", metrics.to_string())
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut server = Server {
            child,
            http,
            https,
            ssh,
            metrics,
            data_dir: data_dir.to_owned(),
            log,
            _dir: owned,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "server exited with {status} during startup; log:\n{}",
                    self.log()
                );
            }
            // Listeners are bound before the administrator is created and the instances are
            // installed (a busy port must fail first), so accepting connections is not enough:
            // the server logs its URLs once startup has finished.
            if std::net::TcpStream::connect(self.http).is_ok()
                && std::net::TcpStream::connect(self.https).is_ok()
                && std::net::TcpStream::connect(self.ssh).is_ok()
                && self.log().contains("listening for HTTP on")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not start; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) with the system `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "server did not exit within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The generated CA certificate, to trust the HTTPS listener.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.data_dir.join("_host/tls/ca.pem")).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response reduced to what tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub version: hyper::Version,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// Sends one HTTP/1.1 request over plain TCP.
pub async fn http1(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    collect(sender.send_request(req).await.unwrap()).await
}

/// A TLS connector that trusts exactly `ca_pem` and offers `alpn`.
pub fn tls_connector(ca_pem: &[u8], alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Sends one request over TLS (SNI `server_name`), using HTTP/2 when the server picks it
/// through ALPN and HTTP/1.1 otherwise.
pub async fn https(
    addr: SocketAddr,
    server_name: &str,
    ca_pem: &[u8],
    alpn: &[&[u8]],
    req: Request<Full<Bytes>>,
) -> Reply {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let tls = tls_connector(ca_pem, alpn)
        .connect(name, tcp)
        .await
        .unwrap();
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        collect(sender.send_request(req).await.unwrap()).await
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        collect(sender.send_request(req).await.unwrap()).await
    }
}

async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> Reply {
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        version,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A GET request with a Host header.
pub fn get(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Whether an external client binary is on PATH. Outside CI a missing binary makes the test
/// print a SKIP line; with `CI` set it fails instead, so CI can never silently skip.
pub fn have_binary(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{name}` is required in CI but is not installed"
        );
        eprintln!("SKIP: `{name}` is not installed");
    }
    found
}

/// Sends one HTTP/1.1 request from a chosen loopback address (e.g. 127.0.0.2), to test
/// per-client-address behaviour.
pub async fn http1_from(
    local: std::net::IpAddr,
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Reply {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    collect(sender.send_request(req).await.unwrap()).await
}

/// A GET with a Host header and HTTP Basic credentials.
pub fn get_as(host: &str, path: &str, login: &str, password: &str) -> Request<Full<Bytes>> {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
    Request::get(path)
        .header("host", host)
        .header("authorization", format!("Basic {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}
