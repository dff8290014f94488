//! End to end, over raw sockets: connections that send nothing (or only an HTTP/2 preface)
//! cannot hold connection slots forever, and a response sent before the request body was
//! read leaves an HTTP/1.1 connection usable, or says `Connection: close` (issue #10, items 5
//! and 11).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Server;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The client preface of HTTP/2 followed by an empty SETTINGS frame.
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// An upload that the zero-config registry rejects with 401 before reading the body.
const UPLOAD: &str = "/v2/library/hardening/blobs/uploads/";

/// Reads (and discards) until the peer closes the connection; returns how long that took.
/// Fails when the connection is still open after `limit`.
async fn time_until_closed<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => panic!("connection still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn silent_plain_and_tls_connections_are_closed_after_the_header_timeout() {
    let server = Server::start("header-read-timeout-secs = 1\n");
    let mut plain = TcpStream::connect(server.http).await.unwrap();
    let closed = time_until_closed(&mut plain, Duration::from_secs(8)).await;
    assert!(
        closed >= Duration::from_millis(800),
        "closed too early: {closed:?}"
    );

    // After a finished TLS handshake, the first HTTP bytes are held to the same limit.
    let connector = common::tls_connector(&server.ca_pem(), &[b"h2", b"http/1.1"]);
    let tcp = TcpStream::connect(server.https).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let closed = time_until_closed(&mut tls, Duration::from_secs(8)).await;
    assert!(
        closed >= Duration::from_millis(800),
        "closed too early: {closed:?}"
    );
}

#[tokio::test]
async fn h2c_preface_then_silence_is_closed_after_the_idle_timeout() {
    let server = Server::start("header-read-timeout-secs = 1\nidle-timeout-secs = 2\n");
    let mut s = TcpStream::connect(server.http).await.unwrap();
    s.write_all(H2_PREFACE_AND_SETTINGS).await.unwrap();
    // The client never acknowledges anything: the server must not wait for it forever.
    let closed = time_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(
        closed >= Duration::from_millis(1800),
        "closed before the idle timeout: {closed:?}"
    );
}

#[tokio::test]
async fn h2_connection_is_closed_when_idle_after_a_request() {
    let server = Server::start("header-read-timeout-secs = 1\nidle-timeout-secs = 2\n");
    let stream = TcpStream::connect(server.http).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let started = Instant::now();
    let resp = sender
        .send_request(common::get("localhost", "/v2/"))
        .await
        .unwrap();
    assert!(answered(resp.status().as_u16()), "{resp:?}");
    resp.into_body().collect().await.unwrap();
    // hyper's client answers the server's pings, so only the idle watchdog can end this.
    tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .expect("idle HTTP/2 connection still open after 10 s")
        .unwrap()
        .ok();
    assert!(
        started.elapsed() >= Duration::from_millis(1800),
        "closed before the idle timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn silent_sockets_do_not_keep_connection_slots() {
    let server = Server::start("header-read-timeout-secs = 1\nmax-connections = 4\n");
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(server.http).await.unwrap());
    }
    // Let the server accept all four, so they really hold the slots.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        common::http1(server.http, common::get("localhost", "/v2/")),
    )
    .await
    .expect("no connection slot came free: silent sockets hold them");
    assert!(answered(reply.status), "{reply:?}");
    for mut s in silent {
        time_until_closed(&mut s, Duration::from_secs(2)).await;
    }
}

/// Whether `GET /v2/` was answered by the registry: 401 while anonymous users may read
/// nothing, 200 once they may.
fn answered(status: u16) -> bool {
    status == 200 || status == 401
}

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads one response (Content-Length or chunked body) within 10 seconds.
async fn read_reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> RawReply {
    tokio::time::timeout(Duration::from_secs(10), read_reply_inner(r))
        .await
        .expect("no response within 10 s")
}

async fn read_reply_inner<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> RawReply {
    let mut line = String::new();
    assert!(
        r.read_line(&mut line).await.unwrap() > 0,
        "connection closed before a response"
    );
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').unwrap();
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let mut reply = RawReply {
        status,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = reply.header("content-length") {
        let mut body = vec![0u8; len.parse().unwrap()];
        r.read_exact(&mut body).await.unwrap();
        reply.body = body;
    } else if reply
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0u8; size + 2];
            r.read_exact(&mut chunk).await.unwrap();
            if size == 0 {
                break;
            }
            reply.body.extend_from_slice(&chunk[..size]);
        }
    }
    reply
}

/// Opens a connection and sends the head of an unauthenticated upload with `length`.
async fn send_upload_head(addr: SocketAddr, extra: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {UPLOAD} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n{extra}\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    BufReader::new(s)
}

#[tokio::test]
async fn early_401_keeps_the_connection_usable_for_the_next_request() {
    let server = Server::start("");
    let body = vec![b'x'; 100 * 1024];
    let mut conn =
        send_upload_head(server.http, &format!("Content-Length: {}\r\n", body.len())).await;
    // The registry answers before the body arrives, as Go clients experience it.
    let first = read_reply(&mut conn).await;
    assert_eq!(first.status, 401, "{first:?}");
    assert!(
        String::from_utf8_lossy(&first.body).contains("UNAUTHORIZED"),
        "{first:?}"
    );
    assert!(!first.closes(), "{first:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.get_mut().write_all(&body).await.unwrap();
    conn.get_mut()
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let second = read_reply(&mut conn).await;
    assert!(answered(second.status), "{second:?}");
}

#[tokio::test]
async fn early_401_with_a_body_over_the_drain_limit_announces_close() {
    let server = Server::start("");
    let mut conn = send_upload_head(server.http, "Content-Length: 10485760\r\n").await;
    let first = read_reply(&mut conn).await;
    assert_eq!(first.status, 401, "{first:?}");
    assert!(first.closes(), "no `Connection: close`: {first:?}");

    // A chunked body of unknown length cannot be promised to fit either.
    let mut conn = send_upload_head(server.http, "Transfer-Encoding: chunked\r\n").await;
    let first = read_reply(&mut conn).await;
    assert_eq!(first.status, 401, "{first:?}");
    assert!(first.closes(), "no `Connection: close`: {first:?}");
    // The server still reads (and discards) what the client goes on sending, then closes.
    conn.get_mut()
        .write_all(b"4\r\nabcd\r\n0\r\n\r\n")
        .await
        .unwrap();
    time_until_closed(&mut conn, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn early_401_with_expect_continue_announces_close() {
    let server = Server::start("");
    let mut conn = send_upload_head(
        server.http,
        "Content-Length: 1000\r\nExpect: 100-continue\r\n",
    )
    .await;
    // The client may never send a body it was not invited to send.
    let first = read_reply(&mut conn).await;
    assert_eq!(first.status, 401, "{first:?}");
    assert!(first.closes(), "no `Connection: close`: {first:?}");
}

#[tokio::test]
async fn early_401_over_h2_keeps_the_connection_without_a_connection_header() {
    let server = Server::start("");
    let stream = TcpStream::connect(server.http).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(UPLOAD)
        .header("host", "localhost")
        .body(Full::new(Bytes::from(vec![b'x'; 1024 * 1024])))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("connection").is_none());
    resp.into_body().collect().await.unwrap();
    let resp = sender
        .send_request(common::get("localhost", "/v2/"))
        .await
        .unwrap();
    assert!(answered(resp.status().as_u16()), "{resp:?}");
}
