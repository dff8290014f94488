//! A private, throw-away Docker daemon for tests: Debian's `dockerd` (package `docker.io`)
//! with its own data root, exec root, pid file and socket in a temporary directory, no
//! networking of its own (`--iptables=false --bridge=none`: the tests only push and pull) and
//! the `vfs` storage driver (works on any file system, without overlay mounts). Dropping it
//! stops the daemon (SIGTERM, then SIGKILL) and removes its files.
//!
//! Include it with `#[path = "support/dockerd.rs"] mod dockerd;`. It needs root; when the
//! daemon cannot start, [`Dockerd::start`] says why and the caller decides whether that is a
//! SKIP or (under `CI`) a failure.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: each test crate uses a subset, and a panic is a test failure"
)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the daemon may take to answer its API.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running daemon. Dropping it stops the process and removes its files.
pub struct Dockerd {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
    /// Last field: removed only after the process is gone.
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts a daemon that treats `insecure_registry` (`host:port`) as insecure: it accepts
    /// that registry's certificate without checking it. `Err` tells why it did not start.
    pub fn start(insecure_registry: &str) -> Result<Dockerd, String> {
        // A short directory under /tmp: the socket path must fit a `sockaddr_un`.
        let dir = tempfile::Builder::new()
            .prefix("dockerd")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let socket = dir.path().join("docker.sock");
        let log = dir.path().join("dockerd.log");
        let config = dir.path().join("daemon.json");
        std::fs::write(&config, "{}").map_err(|e| e.to_string())?;
        let out = File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
                "--insecure-registry",
                insecure_registry,
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run dockerd: {e}"))?;
        let mut daemon = Dockerd {
            child: Some(child),
            socket,
            log,
            dir,
        };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "dockerd exited with {status}:\n{}",
                    self.log_tail()
                ));
            }
            let ready = Command::new("docker")
                .arg("--host")
                .arg(self.host())
                .args(["version", "--format", "{{.Server.Version}}"])
                .env("DOCKER_CONFIG", self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "dockerd did not answer within {START_TIMEOUT:?}:\n{}",
            self.log_tail()
        ))
    }

    /// The `--host` value for the Docker CLI.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// A `docker` command talking to this daemon, keeping its login in `config` (a directory:
    /// `DOCKER_CONFIG`).
    pub fn docker(&self, config: &Path) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("--host")
            .arg(self.host())
            .env("DOCKER_CONFIG", config);
        cmd
    }

    /// The end of the daemon's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let skip = text.lines().count().saturating_sub(40);
        text.lines().skip(skip).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets dockerd stop the containerd it started; SIGKILL only if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
