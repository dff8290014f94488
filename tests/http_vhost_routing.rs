//! End to end: the real binary routes by Host and path prefix over HTTP/1.1, HTTP/2 (TLS
//! ALPN) and with curl, and serves a certificate clients can trust via the generated CA.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{Server, get, http1, https};

const CONFIG: &str = r#"
# The zero-config welcome site would also claim localhost/.
[backends.site-http]
enabled = false

[backends.hello-http.instances.main]
vhosts = ["localhost", "127.0.0.1", "Main.Example"]
[backends.hello-http.instances.main.settings]
greeting = "main site"

[backends.hello-http.instances.api]
vhosts = ["main.example"]
prefix = "/api"
[backends.hello-http.instances.api.settings]
greeting = "api"
"#;

#[tokio::test]
async fn routes_by_host_and_prefix_over_http1() {
    let server = Server::start(CONFIG);
    let cases: &[(&str, &str, u16, &str)] = &[
        ("localhost", "/", 200, "main site"),
        ("LOCALHOST:1234", "/", 200, "main site"),
        ("main.example.", "/", 200, "main site"),
        ("main.example", "/api", 200, "api"),
        ("main.example", "/api/", 200, "api"),
        ("main.example", "/apix", 404, ""),
        ("nope", "/", 404, "No backend configured for host: nope"),
        ("bad host", "/", 400, "Invalid Host header"),
    ];
    for (host, path, status, body) in cases {
        let reply = http1(server.http, get(host, path)).await;
        assert_eq!(reply.status, *status, "{host}{path}: {reply:?}");
        assert!(
            reply.body.starts_with(body),
            "{host}{path}: {:?}",
            reply.body
        );
    }
    // The access log records each request with its instance.
    let log = server.log();
    assert!(log.contains("everlock::access"), "{log}");
    assert!(log.contains("instance=hello-http/api"), "{log}");
}

#[tokio::test]
async fn missing_host_on_http11_is_400() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(CONFIG);
    let mut s = tokio::net::TcpStream::connect(server.http).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
}

#[tokio::test]
async fn https_with_trusted_generated_certificate_http2_and_http11() {
    let server = Server::start(CONFIG);
    let ca = server.ca_pem();
    let h2 = https(
        server.https,
        "localhost",
        &ca,
        &[b"h2", b"http/1.1"],
        get("localhost", "/"),
    )
    .await;
    assert_eq!(h2.status, 200);
    assert_eq!(h2.version, hyper::Version::HTTP_2);
    assert!(h2.body.starts_with("main site"), "{h2:?}");

    let h1 = https(
        server.https,
        "localhost",
        &ca,
        &[b"http/1.1"],
        get("main.example", "/api"),
    )
    .await;
    assert_eq!(h1.status, 200);
    assert_eq!(h1.version, hyper::Version::HTTP_11);
    assert!(h1.body.starts_with("api"), "{h1:?}");

    let unknown = https(server.https, "localhost", &ca, &[b"h2"], get("nope", "/")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body, "No backend configured for host: nope");
}

#[tokio::test]
async fn http2_authority_is_used_for_routing() {
    // Over HTTP/2 the host travels as :authority, which hyper exposes as the URI authority.
    let server = Server::start(CONFIG);
    let ca = server.ca_pem();
    let req = hyper::Request::get(format!("https://main.example:{}/api", server.https.port()))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let reply = https(server.https, "localhost", &ca, &[b"h2"], req).await;
    assert_eq!(reply.version, hyper::Version::HTTP_2);
    assert!(reply.body.starts_with("api"), "{reply:?}");
}

#[test]
fn curl_trusts_the_generated_ca() {
    if !common::have_binary("curl") {
        return;
    }
    let server = Server::start(CONFIG);
    let ca = server.data_dir.join("_host/tls/ca.pem");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .arg(format!("https://localhost:{}/", server.https.port()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("main site"));

    let out = std::process::Command::new("curl")
        .args(["-sS", "-H", "Host: nope"])
        .arg(format!("http://127.0.0.1:{}/", server.http.port()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "No backend configured for host: nope"
    );
}

// Multi-threaded: `wait_exit` blocks its thread, and the HTTP/2 client task must keep
// answering the server's shutdown handshake meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_is_reused_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = {
        let mut s = Server::start_in(dir.path(), &data, CONFIG, None);
        let ca = s.ca_pem();
        let reply = https(s.https, "localhost", &ca, &[b"h2"], get("localhost", "/")).await;
        assert_eq!(reply.status, 200);
        s.signal("TERM");
        assert!(s.wait_exit(std::time::Duration::from_secs(10)).success());
        ca
    };
    let s = Server::start_in(dir.path(), &data, CONFIG, None);
    assert_eq!(s.ca_pem(), first);
    // The old CA still validates the restarted server's certificate.
    let reply = https(
        s.https,
        "localhost",
        &first,
        &[b"h2"],
        get("localhost", "/"),
    )
    .await;
    assert_eq!(reply.status, 200);
}
