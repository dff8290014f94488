//! End to end, issue #14 items 6-9: every name gets a leaf from the local CA at handshake time
//! (curl, rustls and skopeo trust `ca.pem` alone for any `*.localhost` vhost), no HSTS on local
//! names, the `https-redirect` rule, and configured certificate files reloaded when they change
//! on disk.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
#[cfg(feature = "backend-oci-http")]
mod oci_common;
mod ssh_util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, get, have_binary, http1, https};

/// curl with only `ca` trusted, `name` resolved to 127.0.0.1; (success, stdout, stderr).
fn curl(ca: &Path, name: &str, port: u16, path: &str) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{name}:{port}:127.0.0.1"))
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HELLO: &str = "[backends.site-http]\nenabled = false\n\
     [backends.hello-http.instances.main]\nvhosts = [\"www.localhost\", \"deep.sub.localhost\", \"localhost\"]\n";

#[test]
fn curl_trusts_ca_pem_alone_for_any_localhost_vhost() {
    if !have_binary("curl") {
        return;
    }
    let server = Server::start(HELLO);
    let ca = server.data_dir.join("_host/tls/ca.pem");
    for name in ["www.localhost", "deep.sub.localhost", "localhost"] {
        let (ok, body, err) = curl(&ca, name, server.https.port(), "/");
        assert!(ok, "{name}: {err}");
        assert!(!body.is_empty(), "{name}");
    }
    // A name with no vhost still gets a valid certificate; routing answers 404.
    let (ok, body, err) = curl(&ca, "unrouted.localhost", server.https.port(), "/");
    assert!(ok, "{err}");
    assert!(body.starts_with("No backend configured"), "{body}");
}

#[tokio::test]
async fn rustls_trusts_ca_pem_alone_for_any_localhost_vhost() {
    let server = Server::start(HELLO);
    let ca = server.ca_pem();
    for name in ["www.localhost", "deep.sub.localhost"] {
        let reply = https(server.https, name, &ca, &[b"h2"], get(name, "/")).await;
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        assert_eq!(reply.version, hyper::Version::HTTP_2);
    }
}

const SITES: &str = "[backends.site-http.instances.pub]\n\
     vhosts = [\"site.example\", \"www.localhost\", \"localhost\", \"127.0.0.1\"]\n";

#[tokio::test]
async fn hsts_goes_out_for_public_names_only() {
    let server = Server::start(SITES);
    let ca = server.ca_pem();
    let sts = |r: &common::Reply| r.headers.contains_key("strict-transport-security");
    let public = https(
        server.https,
        "site.example",
        &ca,
        &[b"h2"],
        get("site.example", "/"),
    )
    .await;
    assert!(sts(&public), "{public:?}");
    for (sni, host) in [
        ("www.localhost", "www.localhost"),
        ("localhost", "localhost"),
        ("localhost", "127.0.0.1"),
    ] {
        let local = https(server.https, sni, &ca, &[b"h2"], get(host, "/")).await;
        assert_ne!(local.status, 404, "{host}: routed");
        assert!(!sts(&local), "{host}: {local:?}");
    }
    // The default rule redirects only names with an ACME certificate: none here.
    let plain = http1(server.http, get("site.example", "/")).await;
    assert_ne!(plain.status, 308, "{plain:?}");
}

#[tokio::test]
async fn https_redirect_always_sends_308_to_the_https_port_except_acme_challenges() {
    // `[frontend-http]` already opens in the generated part of the file; a second header
    // would be a duplicate table, so the setting goes through its environment variable.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(
        dir.path(),
        SITES,
        &[("EVERLOCK_FRONTEND_HTTP_HTTPS_REDIRECT", "always")],
    );
    let reply = http1(server.http, get("site.example", "/a/b?c=1")).await;
    assert_eq!(reply.status, 308, "{reply:?}");
    assert_eq!(
        reply.headers["location"],
        format!("https://site.example:{}/a/b?c=1", server.https.port())
    );
    let challenge = http1(
        server.http,
        get("site.example", "/.well-known/acme-challenge/unknown-token"),
    )
    .await;
    assert_ne!(challenge.status, 308, "{challenge:?}");
    // HTTPS itself is never redirected.
    let ca = server.ca_pem();
    let secure = https(
        server.https,
        "site.example",
        &ca,
        &[b"h2"],
        get("site.example", "/"),
    )
    .await;
    assert_ne!(secure.status, 308);
}

/// Two sites on one server: `on` sets `https-redirect = true` in its instance table, `off`
/// leaves the server-wide default (`acme`: no ACME certificate here, so no redirect).
const PER_INSTANCE: &str = "[backends.site-http.instances.on]\n\
     vhosts = [\"on.localhost\"]\nhttps-redirect = true\n\
     [backends.site-http.instances.off]\nvhosts = [\"off.localhost\"]\n";

const ADMIN_PW: &str = "admin-pw-tls-redirect";

/// Whether plain HTTP to `host` answers a 308 to the same URL on the HTTPS port.
async fn redirected(server: &Server, host: &str) -> bool {
    let reply = http1(server.http, get(host, "/x?y=1")).await;
    if reply.status != 308 {
        return false;
    }
    let expected = format!("https://{host}:{}/x?y=1", server.https.port());
    assert_eq!(reply.headers["location"], expected.as_str(), "{reply:?}");
    true
}

/// Runs one console line as the administrator; its output.
async fn console(server: &Server, line: &str) -> String {
    let conn = ssh_util::login(server.ssh, "admin", ADMIN_PW).await;
    let out = conn.exec(line).await;
    conn.close().await;
    assert_eq!(out.status, Some(0), "{line}: {out:?}");
    out.stdout
}

#[tokio::test]
async fn https_redirect_is_a_per_instance_setting_the_console_changes_live() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("EVERLOCK_ADMIN_PASSWORD", ADMIN_PW)];
    let server = Server::start_env(dir.path(), PER_INSTANCE, &env);
    assert!(redirected(&server, "on.localhost").await);
    assert!(!redirected(&server, "off.localhost").await);
    // ACME challenges are never redirected, whatever the instance says.
    let challenge = http1(
        server.http,
        get("on.localhost", "/.well-known/acme-challenge/unknown-token"),
    )
    .await;
    assert_ne!(challenge.status, 308, "{challenge:?}");
    // The console flips both, live, and the listing shows the instance's own value.
    console(&server, "/site set off https-redirect=true").await;
    console(&server, "/site unset on https-redirect").await;
    assert!(redirected(&server, "off.localhost").await);
    assert!(!redirected(&server, "on.localhost").await);
    let listed = console(&server, "/site list").await;
    let line = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
            .to_owned()
    };
    assert!(line("off").contains("https-redirect=true"), "{listed}");
    assert!(!line("on").contains("https-redirect"), "{listed}");
    let json: serde_json::Value =
        serde_json::from_str(&console(&server, "/site list --json").await).unwrap();
    let entry = |name: &str| {
        json.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(entry("off")["https-redirect"], true, "{json}");
    assert!(entry("on").get("https-redirect").is_none(), "{json}");
    // The console's values are persisted: they outlive a restart (and win over the file).
    drop(server);
    let server = Server::start_env(dir.path(), PER_INSTANCE, &env);
    assert!(redirected(&server, "off.localhost").await);
    assert!(!redirected(&server, "on.localhost").await);
}

/// A CA and a leaf for `name` signed by it, written to `dir` as `<stem>-ca.pem`,
/// `<stem>.pem` and `<stem>-key.pem`.
fn issue(dir: &Path, stem: &str, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{stem} CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (
        dir.join(format!("{stem}-ca.pem")),
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// Replaces `to` by `from` the way deployment tools do: a new file renamed over the old.
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[test]
fn a_certificate_swapped_on_disk_is_served_without_a_restart() {
    if !have_binary("curl") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (ca1, cert, key) = issue(certs.path(), "one", "reload.example");
    let (ca2, cert2, key2) = issue(certs.path(), "two", "reload.example");
    let config = format!(
        "[[frontend-http.certificates]]\nnames = [\"reload.example\"]\ncert = {:?}\nkey = {:?}\n\
         [backends.site-http]\nenabled = false\n\
         [backends.hello-http.instances.main]\nvhosts = [\"reload.example\"]\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let server = Server::start(&config);
    let port = server.https.port();
    let (ok, _, err) = curl(&ca1, "reload.example", port, "/");
    assert!(ok, "{err}");
    assert!(!curl(&ca2, "reload.example", port, "/").0);

    // The key first: until the certificate follows, the pair does not match and the old
    // one stays in service.
    replace(&key2, &key);
    std::thread::sleep(Duration::from_secs(3));
    let (ok, _, err) = curl(&ca1, "reload.example", port, "/");
    assert!(ok, "the old certificate must stay in service: {err}");
    replace(&cert2, &cert);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (ok, _, err) = curl(&ca2, "reload.example", port, "/");
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served: {err}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(server.log().contains("reloaded a configured certificate"));
}

/// A CONNECT proxy that sends every tunnel to `target`, so a client resolves no names itself
/// (Go's resolver, unlike curl's, has no rule for `*.localhost`) while TLS still runs end to
/// end with the name as SNI.
#[cfg(feature = "backend-oci-http")]
async fn connect_proxy(target: std::net::SocketAddr) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    addr
}

#[cfg(feature = "backend-oci-http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pushes_to_a_new_localhost_registry_vhost_trusting_ca_pem_alone() {
    use oci_common::{ALICE, Layout, cert_dir, seed_users, skopeo};
    if !have_binary("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(
        dir.path(),
        "[backends.oci-http.instances.default]\nvhosts = [\"registry.localhost\"]\nprefix = \"/v2\"\n",
        &[],
    );
    let certs = cert_dir(&server.ca_pem(), &work);
    let proxy = connect_proxy(server.https).await;
    let mut layout = Layout::new(&work.join("layout"));
    layout.image("amd64", b"local tls", Some("v1"));
    let src = format!("oci:{}:v1", layout.dir.display());
    let dest = format!(
        "docker://registry.localhost:{}/team/app:v1",
        server.https.port()
    );
    let proxy_url = format!("http://{proxy}");
    let run = |args: &[&str]| {
        let out = Command::new("skopeo")
            .arg("--policy")
            .arg(work.join("policy.json"))
            .args(args)
            .env("HOME", &work)
            .env("HTTPS_PROXY", &proxy_url)
            .env("NO_PROXY", "")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Writes the policy file.
    let _ = skopeo(&work, &["--version"]);
    let creds = format!("{}:{}", ALICE.0, ALICE.1);
    let certs = certs.to_str().unwrap();
    let (ok, err) = run(&[
        "copy",
        "--dest-cert-dir",
        certs,
        "--dest-creds",
        &creds,
        &src,
        &dest,
    ]);
    assert!(ok, "{err}");
    let (ok, err) = run(&["inspect", "--cert-dir", certs, "--creds", &creds, &dest]);
    assert!(ok, "{err}");
    // Without the CA, the same push fails verification: the trust really comes from ca.pem.
    let empty = work.join("no-certs");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, _) = run(&[
        "inspect",
        "--cert-dir",
        empty.to_str().unwrap(),
        "--creds",
        &creds,
        &dest,
    ]);
    assert!(!ok);
}
