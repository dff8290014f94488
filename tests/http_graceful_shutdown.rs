//! End to end: SIGTERM lets an in-flight request finish and the process exits 0; a client
//! that dribbles its headers is disconnected by the header-read timeout.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Server;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;

/// A hello instance with the streaming `POST /echo` (hello has no zero-config instance).
const ECHO: &str = "[backends.hello-http.instances.echo]\nvhosts = [\"echo.localhost\"]\n";

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish_then_exits_zero() {
    let mut server = Server::start(ECHO);
    let stream = tokio::net::TcpStream::connect(server.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);

    // A request whose body arrives slowly: the server is busy reading it when SIGTERM lands.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    let body = StreamBody::new(tokio_stream_from(rx));
    let req = hyper::Request::post("/echo")
        .header("host", "echo.localhost")
        .body(body)
        .unwrap();
    let response = tokio::spawn(async move { sender.send_request(req).await });

    tx.send(Ok(Frame::data(Bytes::from_static(b"first chunk "))))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("TERM");
    // New connections are refused soon after the signal, while ours is still open.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(server.http).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still accepting after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(Ok(Frame::data(Bytes::from_static(b"second chunk"))))
        .await
        .unwrap();
    drop(tx);

    let resp = response.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        String::from_utf8_lossy(&body).starts_with("received 24 bytes, sha256 "),
        "{body:?}"
    );
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("SIGTERM received"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn sigint_exits_zero_when_idle() {
    let mut server = Server::start("");
    server.signal("INT");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[tokio::test]
async fn slowloris_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start("header-read-timeout-secs = 1\n");
    let mut s = tokio::net::TcpStream::connect(server.http).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Keep dribbling a header byte now and then, never finishing the header block.
    let mut buf = [0u8; 512];
    let closed_after = loop {
        tokio::select! {
            n = s.read(&mut buf) => {
                // Either EOF or an error response (408), then EOF.
                if n.unwrap_or(0) == 0 { break started.elapsed(); }
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if s.write_all(b"X").await.is_err() { break started.elapsed(); }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "connection still open"
        );
    };
    assert!(
        closed_after >= Duration::from_millis(800),
        "closed too early: {closed_after:?}"
    );

    // The TLS handshake is bounded the same way.
    let mut t = tokio::net::TcpStream::connect(server.https).await.unwrap();
    let started = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(8), t.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(n.unwrap_or(0), 0);
    assert!(started.elapsed() >= Duration::from_millis(800));
}

/// Adapts an mpsc receiver into a `Stream` without an extra dependency.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
