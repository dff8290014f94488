//! SSH hardening end to end with the real binary: every key type `ssh-keygen` makes logs in
//! with OpenSSH (Ed25519, ECDSA P-256/384/521, RSA with SHA-2 signatures), refused keys are
//! logged, and a flood of connections that never log in does not lock an admin out.
//! Skipped locally when `ssh` or `ssh-keygen` is missing; required in CI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
#[path = "ssh_util/openssh.rs"]
mod openssh;
mod ssh_util;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use openssh::{keygen, ssh_with_key};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PASSWORD: &str = "open-sesame";

fn have_clients() -> bool {
    common::have_binary("ssh") && common::have_binary("ssh-keygen")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Runs an OpenSSH command off the async workers.
async fn run(c: Command) -> Output {
    tokio::task::spawn_blocking(move || openssh::run(c))
        .await
        .unwrap()
}

/// Waits until the server log has a line containing every one of `needles`.
fn wait_for_log(server: &Server, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if server
            .log()
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n)))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no log line with {needles:?}; log:\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn openssh_logs_in_with_every_key_type_and_refusals_are_logged() {
    if !have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", PASSWORD)]);
    let admin = ssh_util::login(server.ssh, "admin", PASSWORD).await;
    assert_eq!(admin.exec("/users add bob bob-pw-1").await.status, Some(0));

    let keys_dir = tempfile::tempdir().unwrap();
    let mut rsa = None;
    for (name, kind, bits) in [
        ("id_ed25519", "ed25519", None),
        ("id_p256", "ecdsa", Some(256)),
        ("id_p384", "ecdsa", Some(384)),
        ("id_p521", "ecdsa", Some(521)),
        ("id_rsa", "rsa", Some(3072)),
    ] {
        let key = keygen(keys_dir.path(), name, kind, bits);
        let added = admin
            .exec(&format!("/users key add bob '{}'", key.public))
            .await;
        assert_eq!(added.status, Some(0), "{name}: {added:?}");
        let out = run(ssh_with_key(
            server.ssh,
            ip("127.0.0.1"),
            &key.private,
            "bob",
            "/users grants bob --json",
        ))
        .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {out:?}\nlog:\n{}",
            server.log()
        );
        // The console ran the command as bob (its JSON listing of bob's grants).
        assert!(out.stdout.starts_with(b"["), "{name}: {out:?}");
        wait_for_log(&server, &["SSH login", "bob", "publickey"]);
        if kind == "rsa" {
            rsa = Some(key);
        }
    }

    // A key nobody registered is refused, and the refusal names its fingerprint.
    let stranger = keygen(keys_dir.path(), "id_stranger", "ecdsa", Some(256));
    let out = run(ssh_with_key(
        server.ssh,
        ip("127.0.0.1"),
        &stranger.private,
        "bob",
        "/users list",
    ))
    .await;
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(out.stdout.is_empty());
    wait_for_log(
        &server,
        &[
            "SSH login refused",
            "bob",
            &stranger.fingerprint,
            "not registered",
        ],
    );

    // A registered key the client cannot sign with (OpenSSH given only the public half):
    // the server accepts the offer, no signature follows, and that is logged too.
    let rsa = rsa.unwrap();
    let public_only = keys_dir.path().join("public-only");
    std::fs::create_dir(&public_only).unwrap();
    let public_file = public_only.join("id_rsa.pub");
    std::fs::write(&public_file, format!("{}\n", rsa.public)).unwrap();
    std::fs::set_permissions(&public_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(ssh_with_key(
        server.ssh,
        ip("127.0.0.1"),
        &public_file,
        "bob",
        "/users list",
    ))
    .await;
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    wait_for_log(
        &server,
        &["SSH login refused", &rsa.fingerprint, "no valid signature"],
    );

    // RSA: SHA-2 signatures log in, SHA-1 (`ssh-rsa`) ones are refused and logged.
    let private = Arc::new(russh::keys::load_secret_key(&rsa.private, None).unwrap());
    for (hash, accepted) in [
        (Some(HashAlg::Sha512), true),
        (Some(HashAlg::Sha256), true),
        (None, false),
    ] {
        let mut conn = ssh_util::connect(server.ssh).await;
        let result = conn
            .handle
            .authenticate_publickey(
                "bob",
                PrivateKeyWithHashAlg::new(Arc::clone(&private), hash),
            )
            .await
            .unwrap();
        assert_eq!(result.success(), accepted, "{hash:?}");
        conn.close().await;
    }
    wait_for_log(&server, &["SSH login refused", &rsa.fingerprint, "SHA-1"]);
    for line in server.log().lines().filter(|l| l.contains("SSH login")) {
        assert!(
            !line.contains("bob-pw") && !line.contains(PASSWORD),
            "{line}"
        );
    }
}

/// A connection from 127.0.0.1 that sends an SSH version line and then nothing; whether the
/// server answered it with its own version line.
async fn silent_client(addr: SocketAddr) -> (tokio::net::TcpStream, bool) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"SSH-2.0-x\r\n").await.unwrap();
    let mut buf = [0u8; 8];
    let answered = match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(n)) => n > 0,
        Ok(Err(_)) => false,
        Err(_) => panic!("the server neither answered nor closed a flood connection"),
    };
    (s, answered)
}

#[tokio::test(flavor = "multi_thread")]
async fn openssh_key_login_works_during_a_pre_auth_flood() {
    if !have_clients() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), "", &[("EVERLOCK_ADMIN_PASSWORD", PASSWORD)]);
    let keys_dir = tempfile::tempdir().unwrap();
    let key = keygen(keys_dir.path(), "id_ed25519", "ed25519", None);
    let admin = ssh_util::login(server.ssh, "admin", PASSWORD).await;
    let added = admin
        .exec(&format!("/users key add admin '{}'", key.public))
        .await;
    assert_eq!(added.status, Some(0), "{added:?}");

    // 300 connections that never log in, more than the 256 connection slots: before the
    // fix they held every slot for the 600 s inactivity timeout. Now the eleventh and later
    // from the same address are closed before the handshake.
    let mut flood = Vec::new();
    let mut answered = 0;
    for _ in 0..300 {
        let (s, ok) = silent_client(server.ssh).await;
        answered += usize::from(ok);
        flood.push(s);
    }
    assert_eq!(
        answered, 10,
        "per-address cap of unauthenticated connections"
    );

    // The admin, from another address, gets in with OpenSSH while the flood holds on.
    let started = Instant::now();
    let out = run(ssh_with_key(
        server.ssh,
        ip("127.0.0.2"),
        &key.private,
        "admin",
        "/users grants admin --json",
    ))
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{out:?}\nlog:\n{}",
        server.log()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The already logged-in console still works too.
    assert_eq!(admin.exec("/groups list").await.status, Some(0));
    drop(flood);
}
