//! End to end against a real ACME CA (pebble + pebble-challtestsrv), issue #14 items 1-5 and 7:
//! vhosts created live in the console get certificates without a restart, over HTTP-01 and
//! TLS-ALPN-01; the served chain verifies against pebble's root; `/tls renew` orders a new
//! certificate; a restart serves the stored certificate without a new order; names with an
//! ACME certificate are redirected from plain HTTP.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
#[path = "support/pebble.rs"]
mod pebble;
mod ssh_util;

use std::time::{Duration, Instant};

use common::{Server, get, http1, https};
use ssh_util::{Conn, login};

const PASSWORD: (&str, &str) = ("EVERLOCK_ADMIN_PASSWORD", "secret");

async fn ok(conn: &Conn, line: &str) -> String {
    let out = conn.exec(line).await;
    assert_eq!(out.status, Some(0), "{line}: {out:?}");
    out.stdout
}

/// `/tls list --json` as (name → row).
async fn tls_rows(conn: &Conn) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(conn, "/tls list --json").await).unwrap()
}

/// Waits until `name` is served with an ACME certificate whose serial differs from
/// `previous`; returns the row.
async fn wait_cert(
    conn: &Conn,
    name: &str,
    previous: Option<&str>,
    logs: &dyn Fn() -> String,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = tls_rows(conn).await;
        if let Some(row) = rows.iter().find(|r| r["name"] == name)
            && row["source"] == "acme"
            && row["serial"].is_string()
            && row["serial"].as_str() != previous
        {
            return row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no certificate for {name}: {rows:?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// pebble's root, from its management listener.
async fn pebble_root(p: &pebble::Pebble) -> Vec<u8> {
    let listener_ca = std::fs::read(&p.listener_ca).unwrap();
    let reply = https(
        p.management,
        "localhost",
        &listener_ca,
        &[b"http/1.1"],
        get("localhost", "/roots/0"),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.body.into_bytes()
}

/// A TLS connection to `server` for `name` trusting only `root` succeeds.
async fn verifies(server: &Server, name: &str, root: &[u8]) -> bool {
    let tcp = tokio::net::TcpStream::connect(server.https).await.unwrap();
    let sni = rustls_pki_types::ServerName::try_from(name.to_owned()).unwrap();
    common::tls_connector(root, &[b"h2"])
        .connect(sni, tcp)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_live_vhosts_renewal_redirect_and_restart_without_a_new_order() {
    if !pebble::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pebble_dir = dir.path().join("pebble");
    std::fs::create_dir_all(&pebble_dir).unwrap();
    let plan = pebble::Plan::new(&pebble_dir);
    let config = plan.acme_config("http-01");
    let mut server = Server::start_env(dir.path(), &config, &[PASSWORD]);
    let ca = plan.start(server.http.port(), server.https.port());
    let logs = || format!("{}\n--- pebble ---\n{}", server.log(), ca.log());
    let admin = login(server.ssh, "admin", "secret").await;

    // A registry and a site created live get certificates without a restart.
    ok(&admin, "/oci create reg vhost=reg.example").await;
    ok(&admin, "/site create docs vhost=docs.example mode=html").await;
    let reg = wait_cert(&admin, "reg.example", None, &logs).await;
    let docs = wait_cert(&admin, "docs.example", None, &logs).await;
    assert!(reg["issuer"].as_str().unwrap().contains("Pebble"), "{reg}");
    assert_ne!(reg["serial"], docs["serial"]);
    let root = pebble_root(&ca).await;
    for name in ["reg.example", "docs.example"] {
        assert!(verifies(&server, name, &root).await, "{name}: {}", logs());
    }
    // Local names keep their local certificates.
    assert!(!verifies(&server, "localhost", &root).await);
    let text = ok(&admin, "/tls list").await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("reg.example  acme  ") && l.ends_with("ok")),
        "{text}"
    );

    // Plain HTTP to a name with an ACME certificate goes to HTTPS; local names stay.
    let plain = http1(server.http, get("reg.example", "/v2/")).await;
    assert_eq!(plain.status, 308, "{plain:?}");
    assert_eq!(
        plain.headers["location"],
        format!("https://reg.example:{}/v2/", server.https.port())
    );
    assert_ne!(http1(server.http, get("localhost", "/")).await.status, 308);

    // `/tls renew` orders a new certificate, which replaces the served one.
    let before = ca.issued();
    ok(&admin, "/tls renew reg.example").await;
    let renewed = wait_cert(&admin, "reg.example", reg["serial"].as_str(), &logs).await;
    assert!(ca.issued() > before, "{}", ca.log());
    assert!(verifies(&server, "reg.example", &root).await);
    let bad = admin.exec("/tls renew localhost").await;
    assert_eq!(bad.status, Some(1), "{bad:?}");

    // After a restart the stored certificate is served again: same serial, no new order
    // (pebble still validates against the old ports, so a new order would fail anyway).
    admin.close().await;
    let issued = ca.issued();
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    let server = Server::start_env(dir.path(), &config, &[PASSWORD]);
    let admin = login(server.ssh, "admin", "secret").await;
    let logs = || format!("{}\n--- pebble ---\n{}", server.log(), ca.log());
    let again = wait_cert(&admin, "reg.example", None, &logs).await;
    assert_eq!(again["serial"], renewed["serial"]);
    assert!(verifies(&server, "reg.example", &root).await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ca.issued(), issued, "a restart must not order again");
    assert!(
        !server.log().contains("created an ACME account"),
        "the stored account is reused"
    );

    // A renewal that fails (pebble validates against the old, closed port) is visible in
    // `/tls list`, and the valid certificate stays in service.
    ok(&admin, "/tls renew reg.example").await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let failed = loop {
        let rows = tls_rows(&admin).await;
        let row = rows
            .iter()
            .find(|r| r["name"] == "reg.example")
            .unwrap()
            .clone();
        if row["error"].is_string() {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "no failure shown: {rows:?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(failed["serial"], renewed["serial"], "{failed}");
    assert!(verifies(&server, "reg.example", &root).await);
    assert!(server.log().contains("ACME order failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_certificate_for_a_live_site_vhost() {
    if !pebble::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pebble_dir = dir.path().join("pebble");
    std::fs::create_dir_all(&pebble_dir).unwrap();
    let plan = pebble::Plan::new(&pebble_dir);
    let config = plan.acme_config("tls-alpn-01");
    let server = Server::start_env(dir.path(), &config, &[PASSWORD]);
    let ca = plan.start(server.http.port(), server.https.port());
    let logs = || format!("{}\n--- pebble ---\n{}", server.log(), ca.log());
    let admin = login(server.ssh, "admin", "secret").await;
    ok(&admin, "/site create www vhost=www.example mode=html").await;
    wait_cert(&admin, "www.example", None, &logs).await;
    let root = pebble_root(&ca).await;
    assert!(verifies(&server, "www.example", &root).await, "{}", logs());
    // Ordinary clients get the issued certificate, never the validation one.
    let reply = https(
        server.https,
        "www.example",
        &root,
        &[b"h2"],
        get("www.example", "/"),
    )
    .await;
    // The empty site answers itself (its own 404), with HSTS on this public name.
    assert!(
        !reply.body.starts_with("No backend configured"),
        "{reply:?}"
    );
    assert!(
        reply.headers.contains_key("strict-transport-security"),
        "{reply:?}"
    );
}
