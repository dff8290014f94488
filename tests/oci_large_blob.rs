//! A 1 GiB layer pushed (one streamed PATCH, as skopeo and Docker send it) and pulled back
//! with an identical digest, while the server's peak resident memory (`VmHWM`) stays under
//! 100 MiB: blobs stream end to end and are never held in memory. The test does not hold the
//! data either: it generates it chunk by chunk and hashes with `sha256sum`.

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

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use bytes::Bytes;
use common::Server;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use oci_common::{ALICE, seed_users, send};

const SIZE: u64 = 1 << 30;
const CHUNK: usize = 1 << 20;

/// Chunk `i` of the test data: a fixed pseudo-random block stamped with its index, so no two
/// chunks are equal and generating costs next to nothing.
fn chunk(base: &[u8], i: u64) -> Bytes {
    let mut c = base.to_vec();
    c[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(c)
}

fn base_block() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..CHUNK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// A `sha256sum` process fed through its standard input.
struct Sha256Sum(std::process::Child);

impl Sha256Sum {
    fn new() -> Self {
        Sha256Sum(
            Command::new("sha256sum")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }

    fn write(&mut self, data: &[u8]) {
        self.0.stdin.as_mut().unwrap().write_all(data).unwrap();
    }

    fn finish(mut self) -> String {
        drop(self.0.stdin.take());
        let out = self.0.wait_with_output().unwrap();
        let hex = String::from_utf8(out.stdout).unwrap();
        format!("sha256:{}", hex.split_whitespace().next().unwrap())
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_layer_round_trips_with_flat_server_memory() {
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(dir.path(), "", &[]);
    let base = base_block();
    let chunks = SIZE / CHUNK as u64;

    let mut expected = Sha256Sum::new();
    for i in 0..chunks {
        expected.write(&chunk(&base, i));
    }
    let digest = expected.finish();

    let r = send(
        server.http,
        "POST",
        "/v2/big/blobs/uploads/",
        ALICE,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 202);
    let location = r.headers["location"].to_str().unwrap().to_owned();

    // One PATCH with the whole blob, chunked transfer encoding, no Content-Length.
    let stream = futures_util::stream::iter(0..chunks).map({
        let base = base.clone();
        move |i| Ok::<_, std::convert::Infallible>(Frame::data(chunk(&base, i)))
    });
    let tcp = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let token = base64::engine::general_purpose::STANDARD.encode("alice:alice-pw");
    let req = http::Request::patch(&location)
        .header("host", "localhost")
        .header("authorization", format!("Basic {token}"))
        .body(StreamBody::new(stream))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["range"], format!("0-{}", SIZE - 1).as_str());

    let r = send(
        server.http,
        "PUT",
        &format!("{location}?digest={digest}"),
        ALICE,
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // Pull it back, streaming into sha256sum.
    let tcp = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let token = base64::engine::general_purpose::STANDARD.encode("puller:puller-pw");
    let req = http::Request::get(format!("/v2/big/blobs/{digest}"))
        .header("host", "localhost")
        .header("authorization", format!("Basic {token}"))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], SIZE.to_string().as_str());
    let mut body = resp.into_body();
    let mut pulled = Sha256Sum::new();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            received += data.len() as u64;
            pulled.write(&data);
        }
    }
    assert_eq!(received, SIZE);
    assert_eq!(
        pulled.finish(),
        digest,
        "identical digest after the round trip"
    );

    let peak = peak_rss_kib(server.child.id());
    eprintln!("server peak RSS: {} MiB", peak / 1024);
    assert!(
        peak < 100 * 1024,
        "server peak RSS {peak} KiB is not under 100 MiB"
    );
}
