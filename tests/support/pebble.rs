//! A real ACME CA for tests: Debian's `pebble` with `pebble-challtestsrv` as its DNS server
//! (every name resolves to 127.0.0.1), validating challenges against Everlock's own HTTP and
//! HTTPS listeners.
//!
//! The package ships no certificate for pebble's own HTTPS listener, so the harness makes a
//! throwaway CA with rcgen and gives Everlock that CA as `[acme] ca-roots`.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a panic is a test failure"
)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running pebble and challtestsrv pair.
pub struct Pebble {
    pebble: Child,
    challtestsrv: Child,
    /// The ACME directory URL.
    pub directory: String,
    /// The management listener (`/roots/0`, `/intermediates/0`).
    pub management: SocketAddr,
    /// The CA that signed pebble's listener certificate (PEM file), for `ca-roots`.
    pub listener_ca: PathBuf,
    log: PathBuf,
}

/// Whether both binaries are installed (prints SKIP or fails under CI otherwise).
pub fn available() -> bool {
    crate::common::have_binary("pebble") && crate::common::have_binary("pebble-challtestsrv")
}

/// A port that was free a moment ago. pebble and challtestsrv take their addresses from the
/// command line and cannot report a port 0 binding, so the harness must choose.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a CA and a listener certificate for `localhost`/`127.0.0.1` into `dir`; returns
/// (ca, cert, key) paths.
fn listener_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pebble listener test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (
        dir.join("listener-ca.pem"),
        dir.join("listener.pem"),
        dir.join("listener-key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// The addresses pebble will listen on, chosen before Everlock starts (its `directory-url`
/// must name them), and the files it needs.
pub struct Plan {
    dir: PathBuf,
    acme: u16,
    management: u16,
    dns: u16,
    challtest_management: u16,
    /// The directory URL to configure in Everlock.
    pub directory: String,
    /// The PEM file to configure as Everlock's `ca-roots`.
    pub listener_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Plan {
    /// Chooses ports and writes the listener certificate under `dir`.
    pub fn new(dir: &Path) -> Plan {
        let (listener_ca, cert, key) = listener_certificate(dir);
        let acme = free_port();
        Plan {
            dir: dir.to_owned(),
            acme,
            management: free_port(),
            dns: free_port(),
            challtest_management: free_port(),
            directory: format!("https://127.0.0.1:{acme}/dir"),
            listener_ca,
            cert,
            key,
        }
    }

    /// The `[acme]` section for Everlock, with `challenge`.
    pub fn acme_config(&self, challenge: &str) -> String {
        format!(
            "[acme]\nenabled = true\ndirectory-url = {:?}\nca-roots = {:?}\nchallenge = {challenge:?}\nemail = \"ops@example.com\"\n",
            self.directory,
            self.listener_ca.display().to_string()
        )
    }

    /// Starts challtestsrv and pebble; challenges are validated against `http_port` (HTTP-01)
    /// and `tls_port` (TLS-ALPN-01) on 127.0.0.1.
    pub fn start(self, http_port: u16, tls_port: u16) -> Pebble {
        let log = self.dir.join("pebble.log");
        let out = std::fs::File::create(&log).unwrap();
        let challtestsrv = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{}", self.dns)])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args([
                "-management",
                &format!("127.0.0.1:{}", self.challtest_management),
            ])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out.try_clone().unwrap())
            .spawn()
            .unwrap();
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{}", self.acme),
                "managementListenAddress": format!("127.0.0.1:{}", self.management),
                "certificate": self.cert,
                "privateKey": self.key,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_file = self.dir.join("pebble.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // pebble reuses a valid authorization for half the orders by default; every order
            // must prove control again, or a renewal could skip the challenge at random.
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let management = SocketAddr::from(([127, 0, 0, 1], self.management));
        wait_listening(
            SocketAddr::from(([127, 0, 0, 1], self.acme)),
            "pebble",
            &log,
        );
        wait_listening(management, "pebble management", &log);
        Pebble {
            pebble,
            challtestsrv,
            directory: self.directory,
            management,
            listener_ca: self.listener_ca,
            log,
        }
    }
}

impl Pebble {
    /// pebble's and challtestsrv's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many orders pebble has finalized so far, counted from its log lines.
    pub fn issued(&self) -> usize {
        self.log().matches("Issued certificate serial").count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.challtestsrv] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
