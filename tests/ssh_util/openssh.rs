//! Driving the real OpenSSH tools: `ssh-keygen` key pairs and `ssh` public-key logins that
//! never offer ssh-agent keys (ssh-console reference §8). Included with
//! `#[path = "ssh_util/openssh.rs"] mod openssh;`.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test crate uses a different subset of these helpers"
)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A key pair made by `ssh-keygen`.
pub struct KeyPair {
    /// The private key file (mode 0600, no passphrase).
    pub private: PathBuf,
    /// The public key line (`algorithm base64 comment`).
    pub public: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// Runs `ssh-keygen -t kind [-b bits]` in `dir`, as a user would.
pub fn keygen(dir: &Path, name: &str, kind: &str, bits: Option<u32>) -> KeyPair {
    let private = dir.join(name);
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
        .arg(&private);
    if let Some(bits) = bits {
        c.args(["-b", &bits.to_string()]);
    }
    let out = c.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "ssh-keygen failed: {out:?}");
    let public = std::fs::read_to_string(private.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned();
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(private.with_extension("pub"))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let fingerprint = listing
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected ssh-keygen -l output {listing:?}"))
        .to_owned();
    KeyPair {
        private,
        public,
        fingerprint,
    }
}

/// `ssh -i key login@host command` with the key only, from the loopback address `from`.
pub fn ssh_with_key(
    addr: SocketAddr,
    from: IpAddr,
    key: &Path,
    login: &str,
    command: &str,
) -> Command {
    let mut c = Command::new("ssh");
    c.args(["-p", &addr.port().to_string()])
        .args(["-F", "/dev/null", "-b", &from.to_string()])
        .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"])
        .args(["-o", "IdentityAgent=none", "-o", "ForwardAgent=no"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args(["-o", "PreferredAuthentications=publickey"])
        .arg("-i")
        .arg(key)
        .arg(format!("{login}@{}", addr.ip()))
        .arg(command)
        .env_remove("SSH_AUTH_SOCK");
    c
}

/// Runs `c` with no input, at most 30 s.
pub fn run(mut c: Command) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "ssh did not finish: {:?}",
                child.wait_with_output().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
