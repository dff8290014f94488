//! Webhooks end to end (issue #15 item 4): skopeo pushes to the real server, a small HTTP
//! receiver in the test checks each delivery's HMAC-SHA256 signature and JSON envelope, and a
//! delivery the receiver refuses stays queued in the store across a server restart and is
//! delivered by the next run.

#![cfg(feature = "backend-oci-http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod oci_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, have_binary};
use oci_common::{ALICE, Layout, cert_dir, seed_users, skopeo};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const SECRET: &str = "hook-secret";

/// What the receiver got: the signature header, the body, and the status it answered.
type Log = Arc<Mutex<Vec<(Option<String>, Vec<u8>, u16)>>>;

/// A minimal HTTP/1.1 receiver answering `status` (changeable) to every request.
async fn receiver(status: Arc<Mutex<u16>>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (l, status) = (l.clone(), status.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (end, len) = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|x| x.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        break (i + 4, len);
                    }
                };
                while buf.len() < end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                let sig = head
                    .lines()
                    .find_map(|x| x.strip_prefix("x-everlock-signature-256:"))
                    .map(|v| v.trim().to_owned());
                let code = *status.lock().unwrap();
                l.lock()
                    .unwrap()
                    .push((sig, buf[end..end + len].to_vec(), code));
                let reply =
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, log)
}

/// HMAC-SHA256 (RFC 2104) over sha2, so the test checks the signature independently.
fn hmac_sha256(key: &[u8], body: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = sha2::Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    let outer = sha2::Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    format!("sha256={}", hex::encode(outer))
}

/// Waits until `log` holds a delivery answered 2xx for a push of `tag`; returns its event.
async fn delivered(log: &Log, tag: &str) -> serde_json::Value {
    for _ in 0..300 {
        for (sig, body, code) in log.lock().unwrap().iter() {
            let event: serde_json::Value = serde_json::from_slice(body).unwrap();
            if *code == 200 && event["tag"] == tag {
                assert_eq!(
                    sig.as_deref(),
                    Some(hmac_sha256(SECRET.as_bytes(), body).as_str())
                );
                return event;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no delivery of {tag}: {:?}", log.lock().unwrap().len());
}

fn config(url: &str) -> String {
    format!(
        "[backends.oci-http.instances.default]\nvhosts = [\"localhost\"]\nprefix = \"/v2\"\nstore = \"everlock-oci-local\"\n[backends.oci-http.instances.default.settings]\n[[backends.oci-http.instances.default.settings.webhooks]]\nurl = \"{url}\"\nevents = [\"push\", \"delete\"]\nsecret = \"{SECRET}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_push_events_and_queued_deliveries_survive_a_restart() {
    if !have_binary("skopeo") {
        return;
    }
    let status = Arc::new(Mutex::new(200u16));
    let (url, log) = receiver(status.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let mut server = Server::start_env(dir.path(), &config(&url), &[]);
    let certs = cert_dir(&server.ca_pem(), &work);
    let certs = certs.to_str().unwrap().to_owned();
    let mut layout = Layout::new(&work.join("layout"));
    let v1 = layout.image("amd64", b"webhook one", Some("v1"));
    layout.image("amd64", b"webhook two", Some("v2"));
    let alice = format!("{}:{}", ALICE.0, ALICE.1);
    let push = |server: &Server, tag: &str| {
        let src = format!("oci:{}:{tag}", layout.dir.display());
        let dest = format!("docker://localhost:{}/team/app:{tag}", server.https.port());
        let out = skopeo(
            &work,
            &[
                "copy",
                "--dest-cert-dir",
                &certs,
                "--dest-creds",
                &alice,
                &src,
                &dest,
            ],
        );
        assert!(out.status.success(), "skopeo copy {tag}");
    };

    push(&server, "v1");
    let event = delivered(&log, "v1").await;
    assert_eq!(event["action"], "push");
    assert_eq!(event["repository"], "team/app");
    assert_eq!(event["digest"], v1.manifest_digest.as_str());
    assert_eq!(event["size"], v1.manifest.len());
    assert_eq!(event["actor"], "alice");
    assert_eq!(event["instance"], "default");
    assert!(
        event["media_type"].as_str().unwrap().contains("manifest"),
        "{event}"
    );
    assert!(
        event["timestamp"].as_str().unwrap().ends_with('Z'),
        "{event}"
    );

    // The receiver fails: the push still succeeds at once, the delivery stays queued.
    *status.lock().unwrap() = 503;
    push(&server, "v2");
    for _ in 0..200 {
        if log.lock().unwrap().iter().any(|(_, _, c)| *c == 503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        log.lock().unwrap().iter().any(|(_, _, c)| *c == 503),
        "a failed attempt"
    );
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    // The next run delivers it as soon as it starts.
    *status.lock().unwrap() = 200;
    let _server = Server::start_env(dir.path(), &config(&url), &[]);
    let event = delivered(&log, "v2").await;
    assert_eq!(event["action"], "push");
    assert_eq!(event["repository"], "team/app");
}
