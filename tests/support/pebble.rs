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

use std::io::Write as _;
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
/// command line and cannot report a port 0 binding, so the harness must choose (and retry
/// when another process takes the port first; see [`Plan::start`]).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    ///
    /// Neither program can bind port 0 and report the port, so the harness chooses ports and
    /// another test may take one before the program binds it. Each start that fails to bind
    /// is retried on fresh ports, a bounded number of times, with the reason on stderr. The
    /// ACME port alone cannot change: Everlock was configured with the directory URL.
    pub fn start(mut self, http_port: u16, tls_port: u16) -> Pebble {
        let log = self.dir.join("pebble.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut challtestsrv = None;
        for attempt in 1..=START_ATTEMPTS {
            match self.start_challtestsrv(&out, &log) {
                Ok(child) => {
                    challtestsrv = Some(child);
                    break;
                }
                Err(why) => {
                    retrying("pebble-challtestsrv", &why, attempt);
                    self.dns = free_port();
                    self.challtest_management = free_port();
                }
            }
        }
        let challtestsrv = challtestsrv.expect("challtestsrv started within the attempts");
        let mut pebble = None;
        for attempt in 1..=START_ATTEMPTS {
            match self.start_pebble(&out, &log, http_port, tls_port) {
                Ok(child) => {
                    pebble = Some(child);
                    break;
                }
                Err(why) => {
                    assert!(
                        !why.contains(&format!("127.0.0.1:{}:", self.acme)),
                        "another process took pebble's ACME port {}, which Everlock's \
                         directory-url names: {why}",
                        self.acme
                    );
                    retrying("pebble", &why, attempt);
                    self.management = free_port();
                }
            }
        }
        Pebble {
            pebble: pebble.expect("pebble started within the attempts"),
            challtestsrv,
            directory: self.directory,
            management: SocketAddr::from(([127, 0, 0, 1], self.management)),
            listener_ca: self.listener_ca,
            log,
        }
    }

    /// challtestsrv on the planned DNS and management ports. It logs a failed bind and keeps
    /// running, so the error is looked for in its log once both ports answer.
    fn start_challtestsrv(&self, out: &std::fs::File, log: &Path) -> Result<Child, String> {
        let before = log_len(log);
        let mut child = Command::new("pebble-challtestsrv")
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
        let ports = [self.dns, self.challtest_management];
        let outcome = settle(&mut child, &ports, "pebble-challtestsrv", log, before);
        if outcome.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        outcome.map(|()| child)
    }

    /// pebble on the planned ACME and management ports; it exits when a bind fails.
    fn start_pebble(
        &self,
        out: &std::fs::File,
        log: &Path,
        http_port: u16,
        tls_port: u16,
    ) -> Result<Child, String> {
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
        let before = log_len(log);
        let mut child = Command::new("pebble")
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
            .stderr(out.try_clone().unwrap())
            .spawn()
            .unwrap();
        let outcome = settle(
            &mut child,
            &[self.acme, self.management],
            "pebble",
            log,
            before,
        );
        if outcome.is_err() {
            let _ = child.kill();
            let _ = child.wait();
        }
        outcome.map(|()| child)
    }
}

/// How many times a start that lost a port to another process is tried.
const START_ATTEMPTS: u32 = 5;

/// The text both programs log when a port is taken.
const BIND_FAILED: &str = "bind: address already in use";

fn log_len(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |text| text.len())
}

/// The log lines written since `before`.
fn fresh_log(log: &Path, before: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.get(before..).unwrap_or_default().to_owned()
}

fn retrying(what: &str, why: &str, attempt: u32) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "{what} lost a port to another process (attempt {attempt}/{START_ATTEMPTS}), \
         retrying on fresh ports: {why}"
    );
}

/// Waits until every port in `ports` answers and then a moment more, in which a failed bind
/// (some other process answering on that port) shows up in the log or as an exit. `Err`
/// carries the bind failure; anything else that goes wrong fails the test.
fn settle(
    child: &mut Child,
    ports: &[u16],
    what: &str,
    log: &Path,
    before: usize,
) -> Result<(), String> {
    let bind_failure = |fresh: &str| {
        fresh
            .lines()
            .find(|line| line.contains(BIND_FAILED))
            .map(str::to_owned)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answered_since = None;
    loop {
        let fresh = fresh_log(log, before);
        if let Some(line) = bind_failure(&fresh) {
            return Err(line);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited with {status}:\n{fresh}");
        }
        let all_answer = ports
            .iter()
            .all(|p| TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], *p))).is_ok());
        match (all_answer, answered_since) {
            (true, None) => answered_since = Some(Instant::now()),
            (true, Some(since)) if since.elapsed() > Duration::from_millis(200) => return Ok(()),
            (false, _) => answered_since = None,
            _ => {}
        }
        assert!(Instant::now() < deadline, "{what} did not start: {fresh}");
        std::thread::sleep(Duration::from_millis(50));
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

/// A port another process took before challtestsrv or pebble bound it costs a retry on fresh
/// ports, not the test.
#[test]
fn a_port_taken_before_the_bind_is_retried_on_a_fresh_one() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = Plan::new(dir.path());
    let taken = (plan.challtest_management, plan.management);
    let _squatters = (
        TcpListener::bind(("127.0.0.1", taken.0)).unwrap(),
        TcpListener::bind(("127.0.0.1", taken.1)).unwrap(),
    );
    // Nothing is validated, so the challenge ports need not be real.
    let ca = plan.start(1, 2);
    assert_ne!(ca.management.port(), taken.1);
    let log = ca.log();
    assert!(
        log.contains(&format!("127.0.0.1:{}: {BIND_FAILED}", taken.0)),
        "{log}"
    );
    assert!(
        log.contains(&format!("127.0.0.1:{}: {BIND_FAILED}", taken.1)),
        "{log}"
    );
}
