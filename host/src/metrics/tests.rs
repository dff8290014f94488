use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use everlock_auth::AdminPassword;
use http::{Method, Request, Version};
use http_body_util::BodyExt;

use super::exchange::{ByteCount, Counted, Exchange, LoginSlot, Observed};
use super::*;
use crate::registry::Registry as Kinds;

/// The value of the sample `name` (with its labels, as exposed) in a text exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn exchange(metrics: &Metrics, method: Method, status: u16, login: LoginSlot) -> Exchange {
    Exchange {
        metrics: Some(metrics.clone()),
        started: Instant::now(),
        remote: SocketAddr::from(([127, 0, 0, 1], 4000)),
        scheme: "http",
        version: Version::HTTP_11,
        method,
        host: "localhost".to_owned(),
        path: "/x".to_owned(),
        status,
        length: None,
        kind: "site-http",
        instance: "default".to_owned(),
        user_agent: "test".to_owned(),
        login,
        received: ByteCount::default(),
    }
}

#[tokio::test]
async fn request_families_move_with_each_finished_response() {
    let metrics = Metrics::new();
    let text = metrics.encode(Format::Prometheus);
    // Nothing was served yet: empty families are not exposed, the listeners' gauges are.
    assert!(!text.contains("everlock_http_requests_total"), "{text}");
    assert!(
        text.contains("everlock_open_connections{listener=\"ssh\"} 0"),
        "{text}"
    );
    assert!(text.contains("everlock_build_info{"), "{text}");

    for _ in 0..2 {
        let body = Observed::new(
            Body::from("hello"),
            exchange(&metrics, Method::GET, 200, LoginSlot::default()),
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }
    // A response the client abandons is still counted, with what was sent.
    drop(Observed::new(
        Body::from("gone"),
        exchange(&metrics, Method::GET, 404, LoginSlot::default()),
    ));
    let text = metrics.encode(Format::Prometheus);
    let labels = "{kind=\"site-http\",instance=\"default\",status=\"2xx\"}";
    assert_eq!(
        sample(&text, &format!("everlock_http_requests_total{labels}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("everlock_http_response_bytes_total{labels}")
        ),
        Some(10.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("everlock_http_request_duration_seconds_count{labels}")
        ),
        Some(2.0),
        "{text}"
    );
    assert!(text.contains("status=\"4xx\"} 1"), "{text}");
}

#[tokio::test]
async fn request_bytes_are_counted_as_the_backend_reads_them() {
    let count = ByteCount::default();
    let body = Counted::new(Body::from(vec![0u8; 1000]), count.clone());
    assert_eq!(body.collect().await.unwrap().to_bytes().len(), 1000);
    assert_eq!(count.get(), 1000);
}

#[test]
fn connections_sessions_logins_and_maintenance_are_counted() {
    let metrics = Metrics::new();
    let a = metrics.connection(Listener::Http);
    let _b = metrics.connection(Listener::Http);
    let session = metrics.ssh_session();
    metrics.ssh_login("password", false);
    metrics.ssh_login("publickey", true);
    metrics.maintenance_run("site-default", 4096);
    let text = metrics.encode(Format::Prometheus);
    assert!(
        text.contains("everlock_open_connections{listener=\"http\"} 2"),
        "{text}"
    );
    assert!(text.contains("everlock_ssh_open_sessions 1"), "{text}");
    assert!(text.contains("everlock_ssh_sessions_total 1"), "{text}");
    assert!(
        text.contains("everlock_ssh_logins_total{method=\"password\",result=\"refused\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("everlock_maintenance_freed_bytes_total{store=\"site-default\"} 4096"),
        "{text}"
    );
    assert!(
        text.contains("everlock_maintenance_runs_total{store=\"site-default\"} 1"),
        "{text}"
    );
    drop(a);
    drop(session);
    let text = metrics.encode(Format::Prometheus);
    assert!(
        text.contains("everlock_open_connections{listener=\"http\"} 1"),
        "{text}"
    );
    assert!(text.contains("everlock_ssh_open_sessions 0"), "{text}");
}

#[test]
fn openmetrics_is_served_only_when_asked_for() {
    let mut headers = http::HeaderMap::new();
    assert_eq!(server::negotiate(&headers), Format::Prometheus);
    headers.insert(
        http::header::ACCEPT,
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            .parse()
            .unwrap(),
    );
    assert_eq!(server::negotiate(&headers), Format::OpenMetrics);
    let metrics = Metrics::new();
    metrics.ssh_login("password", true);
    let om = metrics.encode(Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(!metrics.encode(Format::Prometheus).contains("# EOF"));
}

async fn host() -> (crate::test_util::TestEnv, crate::Host) {
    let env = crate::test_util::TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("right-pw".into()))
        .await
        .unwrap();
    let host = crate::Host::new(
        Kinds::from_factories([]).unwrap(),
        env.stores.clone(),
        env.auth.clone(),
        everlock_auth::SystemAuthority::for_tests(),
        Default::default(),
    );
    (env, host)
}

/// A request's parts with Basic credentials (`admin:wrong` or `admin:right-pw`, encoded).
fn parts_with(credentials: &str, slot: &LoginSlot) -> http::request::Parts {
    let mut req = Request::get("/")
        .header(http::header::AUTHORIZATION, format!("Basic {credentials}"))
        .body(())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 1))));
    req.extensions_mut().insert(slot.clone());
    req.into_parts().0
}

#[tokio::test]
async fn scrapes_read_auth_counters_and_store_sizes() {
    let (_env, host) = host().await;
    let metrics = host.metrics().clone();
    let text = metrics.render(&host, Format::Prometheus).await;
    assert_eq!(
        sample(&text, "everlock_auth_failures_total"),
        Some(0.0),
        "{text}"
    );
    // The users store holds the administrator: one commit at least, and it opens.
    assert_eq!(
        sample(&text, "everlock_store_up{store=\"everlock-users\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "everlock_store_commits{store=\"everlock-users\"}").unwrap() >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "everlock_store_bytes{store=\"everlock-users\"}").unwrap() > 0.0,
        "{text}"
    );

    // A wrong password leaves the slot empty and moves the failure counter.
    let slot = LoginSlot::default();
    let wrong = crate::http_auth::authenticate(
        &host.auth().access_control(),
        &parts_with("YWRtaW46d3Jvbmc=", &slot),
    )
    .await;
    assert!(wrong.is_err());
    assert_eq!(slot.get(), None);
    let text = metrics.render(&host, Format::Prometheus).await;
    assert_eq!(
        sample(&text, "everlock_auth_failures_total"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "everlock_auth_bcrypt_verifications_total").unwrap() >= 1.0,
        "{text}"
    );

    // Only a verified login reaches the access log's slot.
    let slot = LoginSlot::default();
    let right = crate::http_auth::authenticate(
        &host.auth().access_control(),
        &parts_with("YWRtaW46cmlnaHQtcHc=", &slot),
    )
    .await;
    assert!(right.is_ok());
    assert_eq!(slot.get(), Some("admin"));

    // Wrong passwords until the throttle closes: the refusals without a check are counted.
    let mut throttled = false;
    for _ in 0..10 {
        let slot = LoginSlot::default();
        let parts = parts_with("YWRtaW46d3Jvbmc=", &slot);
        throttled |= matches!(
            crate::http_auth::authenticate(&host.auth().access_control(), &parts).await,
            Err(everlock_auth::LoginError::Throttled { .. })
        );
    }
    assert!(throttled);
    let text = metrics.render(&host, Format::Prometheus).await;
    assert!(
        sample(&text, "everlock_auth_throttled_total").unwrap() >= 1.0,
        "{text}"
    );
}
