//! A private, throw-away distribution registry for tests: Debian's `/usr/bin/docker-registry`
//! (distribution 2.8) with a generated configuration on a loopback port, its storage
//! and access log in a temporary directory, optionally behind htpasswd Basic authentication
//! (a bcrypt line generated with the `bcrypt` crate). Dropping it kills the process.
//!
//! The first start binds port 0 and reads the port from the registry's `listening on` log
//! line, so no other test can take the port between a probe and the bind; a restart binds
//! the same port again, because clients were given its address.
//!
//! Include it with `#[path = "support/docker_registry.rs"] mod docker_registry;`. When the
//! binary is missing the caller gets `None` after a visible SKIP line, except under `CI`,
//! where that is a failure.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: each test crate uses a subset, and a panic is a test failure"
)]

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `docker-registry` package installs the server.
pub const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry. Dropping it stops the process and removes its files.
pub struct DockerRegistry {
    child: Option<Child>,
    /// 0 until the first start reports the port it bound.
    port: u16,
    log: PathBuf,
    config: PathBuf,
    /// The configuration without its `http` section, which names the port.
    yaml: String,
    /// Last field: removed only after the process is gone.
    dir: tempfile::TempDir,
}

impl DockerRegistry {
    /// Starts a registry; with `user`, every request needs those Basic credentials. `None`
    /// (after a SKIP line) when the binary is not installed and `CI` is unset.
    pub fn start(user: Option<(&str, &str)>) -> Option<DockerRegistry> {
        if !std::path::Path::new(BINARY).exists() {
            let reason = format!("{BINARY} is not installed (Debian package docker-registry)");
            assert!(
                std::env::var_os("CI").is_none(),
                "required under CI, but {reason}"
            );
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {reason}");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("everlock-distribution-")
            .tempdir()
            .unwrap();
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n",
            dir.path().join("data").display()
        );
        if let Some((login, password)) = user {
            let hash = bcrypt::hash(password, 4).unwrap();
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, format!("{login}:{hash}\n")).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
                path.display()
            ));
        }
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        let mut registry = DockerRegistry {
            child: None,
            port: 0,
            log,
            config,
            yaml,
            dir,
        };
        registry.spawn();
        Some(registry)
    }

    fn spawn(&mut self) {
        let http = format!("http:\n  addr: 127.0.0.1:{}\n", self.port);
        std::fs::write(&self.config, format!("{}{http}", self.yaml)).unwrap();
        // Only this run's lines count when looking for the bound port.
        let logged_before = self.log().len();
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        self.child = Some(child);
        if self.port == 0 {
            self.port = self.wait_bound(logged_before);
        }
        self.wait_ready();
    }

    /// The port of the registry's `listening on 127.0.0.1:<port>` line, logged once it bound.
    fn wait_bound(&mut self, logged_before: usize) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            let log = self.log();
            let port = log
                .get(logged_before..)
                .and_then(|fresh| fresh.split("listening on 127.0.0.1:").nth(1))
                .and_then(|rest| {
                    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
                    rest.get(..digits)?.parse().ok()
                });
            if let Some(port) = port {
                return port;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not report its port:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `/v2/` answers (200, or 401 behind htpasswd).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(
                    b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                );
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 401") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Everything the registry logged so far (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Access-log lines of requests `METHOD path` answered with `status` (the access log's
    /// `"GET /v2/... HTTP/1.1" 200` form).
    pub fn requests(&self, method: &str, path: &str, status: u16) -> usize {
        let needle = format!("\"{method} {path} HTTP/1.1\" {status} ");
        self.log().matches(&needle).count()
    }

    /// Stops the process (the data stays, so [`DockerRegistry::restart`] serves it again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped registry again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
