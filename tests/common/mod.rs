//! Helpers shared by the end-to-end tests: run the real `everlock` binary on port 0 (it reports
//! the bound addresses in its ready file) and talk to it over plain TCP, HTTP/1.1, HTTP/2 and
//! TLS; report skipped checks where a person sees them.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
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

/// The addresses a server reports in its ready file (`--ready-file`, see `src/ready_file.rs`)
/// once startup has finished; `None` for a listener that is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listeners {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub ssh: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// The listeners in the ready file at `path` if process `pid` has written it, else `None`
/// (not yet written, or left by another process). Servers bind port 0 and report here: a
/// port picked free beforehand and bound later is a race with every other process. That is
/// why there is no `free_port()` helper: a test that needs a busy port binds port 0 itself and
/// holds the listener while the server fails on it (`busy_port_is_a_one_line_error`).
pub fn read_ready_file(path: &Path, pid: u32) -> Option<Listeners> {
    let text = std::fs::read(path).ok()?;
    // The server renames a complete file into place: what exists always parses.
    let json: serde_json::Value = serde_json::from_slice(&text).unwrap();
    if json["pid"] != pid {
        return None;
    }
    let addr = |name: &str| {
        json[name]
            .as_str()
            .map(|a| a.parse::<SocketAddr>().unwrap())
    };
    Some(Listeners {
        http: addr("http"),
        https: addr("https"),
        ssh: addr("ssh"),
        metrics: addr("metrics"),
    })
}

/// Waits until `child` has finished starting and written its ready file at `path`; panics
/// with `log()` when the process exits first or takes longer than 60 s.
pub fn wait_ready_file(child: &mut Child, path: &Path, log: impl Fn() -> String) -> Listeners {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(listeners) = read_ready_file(path, child.id()) {
            return listeners;
        }
        if let Some(status) = child.try_wait().unwrap() {
            // Let the reader threads catch the last lines.
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "server exited with {status} during startup; log:\n{}",
                log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "server did not start; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running server process with its captured log.
pub struct Server {
    pub child: Child,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub ssh: SocketAddr,
    /// The metrics listener (`/metrics`, `/healthz`, `/readyz`), on port 0 like the others so
    /// that parallel servers do not fight over the default one.
    pub metrics: SocketAddr,
    pub data_dir: PathBuf,
    /// Where the server reported its addresses (`--ready-file`).
    pub ready_file: PathBuf,
    pub log: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `everlock serve` with `config` (a TOML snippet) appended to generated listener
    /// settings (every listener on port 0), in a fresh data directory, and waits until startup
    /// has finished: the server has written its ready file with the addresses it bound.
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
        let file = dir.join("everlock.toml");
        let text = format!(
            "data-dir = {:?}\n[auth]\nbcrypt-cost = 4\n[frontend-ssh]\nlisten = \"127.0.0.1:0\"\n[frontend-http]\nlisten-http = \"127.0.0.1:0\"\nlisten-https = \"127.0.0.1:0\"\n{config}",
            data_dir.display().to_string(),
        );
        std::fs::write(&file, text).unwrap();
        // A restart in the same directory must not read the previous run's file (the pid
        // check would refuse it too; removing it keeps the wait short and obvious).
        let ready = dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(everlock_bin())
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .env("EVERLOCK_METRICS_LISTEN", "127.0.0.1:0")
            .env("EVERLOCK_READY_FILE", &ready)
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
        // Listeners are bound before the administrator is created and the instances are
        // installed (a busy port must fail first), so accepting connections is not enough: the
        // ready file appears only once startup has finished.
        let listeners = {
            let log = Arc::clone(&log);
            wait_ready_file(&mut child, &ready, move || log.lock().unwrap().clone())
        };
        let on = |addr: Option<SocketAddr>, name: &str| {
            addr.unwrap_or_else(|| panic!("the test server's {name} listener is off"))
        };
        Server {
            http: on(listeners.http, "HTTP"),
            https: on(listeners.https, "HTTPS"),
            ssh: on(listeners.ssh, "SSH"),
            metrics: on(listeners.metrics, "metrics"),
            child,
            data_dir: data_dir.to_owned(),
            ready_file: ready,
            log,
            _dir: owned,
        }
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
/// print a visible SKIP line ([`skip`]); with `CI` set it fails instead, so CI can never
/// silently skip.
pub fn have_binary(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        skip(&format!("`{name}` is not installed"));
    }
    found
}

/// Reports that the running test leaves (part of) its check out because of `reason`: fails
/// under `CI`, where nothing may be skipped, and otherwise writes `SKIP <test>: <reason>`
/// where `cargo test` shows it even when the test passes.
///
/// libtest captures only what the `print!`/`eprint!` family writes (and shows it only for a
/// failing test), so an `eprintln!` SKIP vanished from the summary. A write to the process's
/// standard error handle is not captured: it appears between the `test ... ok` lines.
/// libtest names each test's thread after the test, which names the test in the line.
pub fn skip(reason: &str) {
    use std::io::Write as _;
    assert!(
        std::env::var_os("CI").is_none(),
        "required under CI, but {reason}"
    );
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {reason}");
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
