//! End to end: the metrics listener on the real binary. `/metrics` passes `promtool check
//! metrics` and its counters move with traffic (requests, bytes, a failed login), the access
//! log names the verified login, the bytes sent, the user agent and an integer duration,
//! `/healthz` answers, `/readyz` turns 503 with JSON reasons when a store cannot open, and in
//! JSON log mode every line the server writes is one JSON object.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::{Reply, Server, get, get_as, have_binary, http1};
use http_body_util::Full;
use hyper::Request;

const VAULT: &str = r#"
[backends.hello-http.instances.vault]
vhosts = ["vault.localhost"]
[backends.hello-http.instances.vault.settings]
private = true
greeting = "secret page"
"#;

const ENV: [(&str, &str); 1] = [("EVERLOCK_ADMIN_PASSWORD", "admin-secret")];

async fn fetch(addr: SocketAddr, path: &str, accept: Option<&str>) -> Reply {
    let mut req = Request::get(path).header("host", "metrics.local");
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    http1(addr, req.body(Full::new(Bytes::new())).unwrap()).await
}

/// The value of one sample (name with labels, exactly as exposed), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Runs `promtool check metrics` on `text`; false (after a visible SKIP) without promtool.
fn promtool_accepts(text: &str) -> bool {
    if !have_binary("promtool") {
        return false;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// The server's log once it contains `needle` (at most 10 s later).
fn wait_for_log(server: &Server, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.contains(needle) || std::time::Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn with_agent(mut req: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    req.headers_mut()
        .insert("user-agent", "metrics-test/1.0".parse().unwrap());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_with_traffic_and_the_exposition_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_env(dir.path(), VAULT, &ENV);
    let before = fetch(server.metrics, "/metrics", None).await;
    assert_eq!(before.status, 200);
    assert_eq!(
        before.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        before.body.contains("everlock_build_info{"),
        "{}",
        before.body
    );
    assert!(
        before
            .body
            .contains("everlock_open_connections{listener=\"https\"}")
    );

    let ok = http1(
        server.http,
        with_agent(get_as("vault.localhost", "/", "admin", "admin-secret")),
    )
    .await;
    assert_eq!(ok.status, 200);
    let bad = http1(
        server.http,
        get_as("vault.localhost", "/", "admin", "wrong"),
    )
    .await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        http1(server.http, get("vault.localhost", "/")).await.status,
        401
    );

    let after = fetch(server.metrics, "/metrics", None).await.body;
    let ok_series = "{kind=\"hello-http\",instance=\"vault\",status=\"2xx\"}";
    let denied = "{kind=\"hello-http\",instance=\"vault\",status=\"4xx\"}";
    assert_eq!(
        sample(&after, &format!("everlock_http_requests_total{ok_series}")),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, &format!("everlock_http_requests_total{denied}")),
        2.0,
        "{after}"
    );
    assert!(
        sample(
            &after,
            &format!("everlock_http_response_bytes_total{ok_series}")
        ) >= ok.body.len() as f64,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            &format!("everlock_http_request_duration_seconds_count{ok_series}")
        ),
        1.0
    );
    let failures = |t: &str| sample(t, "everlock_auth_failures_total");
    assert_eq!(failures(&after) - failures(&before.body), 1.0, "{after}");
    assert!(sample(&after, "everlock_auth_bcrypt_verifications_total") >= 2.0);
    assert_eq!(
        sample(&after, "everlock_store_up{store=\"everlock-users\"}"),
        1.0,
        "{after}"
    );

    // The access log: who, how many bytes were sent, which client, how long in µs. Lines
    // are written when a response body ends, a moment after the client has it.
    wait_for_log(&server, "status=200");
    let log = wait_for_log(&server, "status=401");
    let line = log
        .lines()
        .find(|l| l.contains("everlock::access") && l.contains("status=200"))
        .unwrap_or_else(|| panic!("no access line:\n{log}"));
    assert!(line.contains("login=admin"), "{line}");
    assert!(line.contains("user_agent=metrics-test/1.0"), "{line}");
    assert!(
        line.contains(&format!("bytes_out={}", ok.body.len())),
        "{line}"
    );
    assert!(line.contains("complete=true"), "{line}");
    let micros = line.split("duration_us=").nth(1).unwrap();
    assert!(
        micros
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .is_ok(),
        "{line}"
    );
    let denied_line = log
        .lines()
        .find(|l| l.contains("everlock::access") && l.contains("status=401"))
        .unwrap();
    assert!(denied_line.contains("login=-"), "{denied_line}");

    // OpenMetrics on request.
    let om = fetch(
        server.metrics,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .await;
    assert!(
        om.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);

    let health = fetch(server.metrics, "/healthz", None).await;
    assert_eq!(health.status, 200);
    let ready = fetch(server.metrics, "/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let ready: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(ready["ready"], true);

    if promtool_accepts(&before.body) {
        assert!(promtool_accepts(&after));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_with_reasons_when_a_store_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    // An instance whose store directory holds a store of an unknown format: the server
    // starts (the instance opens its store only on first use), but it is not ready.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("hello-broken")).unwrap();
    std::fs::write(data.join("hello-broken/FORMAT"), "garbage\n").unwrap();
    let config = format!(
        "{VAULT}\n[backends.hello-http.instances.broken]\nvhosts = [\"broken.localhost\"]\nstore = \"hello-broken\"\n"
    );
    let server = Server::start_env(dir.path(), &config, &ENV);
    let ready = fetch(server.metrics, "/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(body["ready"], false);
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{body}");
    assert_eq!(problems[0]["store"], "hello-broken");
    assert!(!problems[0]["error"].as_str().unwrap().is_empty());
    // Still alive, and the other stores are reported as up in the metrics.
    assert_eq!(fetch(server.metrics, "/healthz", None).await.status, 200);
    let text = fetch(server.metrics, "/metrics", None).await.body;
    assert!(
        text.contains("everlock_store_up{store=\"hello-broken\"} 0"),
        "{text}"
    );

    // Repaired (the directory removed: the store is created on first use), it is ready.
    std::fs::remove_dir_all(data.join("hello-broken")).unwrap();
    let ready = fetch(server.metrics, "/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_mode_writes_only_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    // No administrator password given: the generated one is announced, as JSON too.
    let mut server = Server::start_env(dir.path(), VAULT, &[("EVERLOCK_LOG_FORMAT", "json")]);
    let reply = http1(server.http, with_agent(get("vault.localhost", "/"))).await;
    assert_eq!(reply.status, 401);
    // The access line is written when the response body ends, just after the client has it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    let log = server.log();
    let mut access = None;
    let mut announced = false;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n--- log ---\n{log}"));
        if v["target"] == "everlock::access" {
            access = Some(v.clone());
        }
        announced |= v["fields"]["password"].is_string();
    }
    assert!(announced, "{log}");
    let access = access.unwrap_or_else(|| panic!("no access line:\n{log}"));
    let fields = &access["fields"];
    assert_eq!(fields["status"], 401, "{access}");
    assert_eq!(fields["login"], "-", "{access}");
    assert_eq!(fields["user_agent"], "metrics-test/1.0", "{access}");
    assert!(fields["duration_us"].is_u64(), "{access}");
    assert!(fields["bytes_out"].is_u64(), "{access}");
}
