//! Running the OpenSSH client (with sshpass) against a test server: exec, piped shells and
//! forced-PTY sessions fed from a pipe, each with a 30 s limit and the output as text.
//! ssh-agent keys are never offered (ssh-console reference §8). Included with
//! `#[path = "ssh_util/cli.rs"] mod cli;`.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a finished `ssh` run left: exit code, stdout, stderr.
#[derive(Debug)]
pub struct Out {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Whether `ssh` and `sshpass` are installed; prints SKIP (or fails under CI) when not.
pub fn have_clients() -> bool {
    super::common::have_binary("ssh") && super::common::have_binary("sshpass")
}

/// The options every `ssh` run needs: no config file, no agent, no known hosts.
fn base(addr: SocketAddr) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-p", &addr.port().to_string()])
        .args(["-F", "/dev/null"])
        .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
        .args(["-o", "IdentityAgent=none", "-o", "ForwardAgent=no"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .env_remove("SSH_AUTH_SOCK");
    c
}

/// `ssh` logging in as `login` with `password` through sshpass (the password travels in the
/// environment, not argv), with `args` after the destination.
pub fn with_password(addr: SocketAddr, login: &str, password: &str, args: &[&str]) -> Command {
    let inner = base(addr);
    let mut c = Command::new("sshpass");
    c.arg("-e")
        .env("SSHPASS", password)
        .env_remove("SSH_AUTH_SOCK")
        .arg(inner.get_program())
        .args(inner.get_args())
        .args(["-o", "PubkeyAuthentication=no"])
        .args(["-o", "PreferredAuthentications=password"]);
    let (flags, rest): (Vec<&str>, Vec<&str>) = args.iter().partition(|a| a.starts_with('-'));
    c.args(flags)
        .arg(format!("{login}@{}", addr.ip()))
        .args(rest);
    c
}

/// `ssh -i key login@host args...`, offering that key only.
pub fn with_key(addr: SocketAddr, key: &Path, login: &str, args: &[&str]) -> Command {
    let mut c = base(addr);
    c.args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args(["-o", "PreferredAuthentications=publickey"])
        .arg("-i")
        .arg(key)
        .arg(format!("{login}@{}", addr.ip()))
        .args(args);
    c
}

/// Runs `c` with `stdin` (or no input) and waits at most 30 s.
pub fn run(mut c: Command, stdin: Option<&str>) -> Out {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ssh did not finish: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
