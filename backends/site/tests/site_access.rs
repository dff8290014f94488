//! Access: public and private sites, 401/403, changes applied immediately, and the zero-config
//! welcome site seeding itself as public exactly once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use common::{TestSite, basic, header};
use everlock_backend_site_http::{KIND, build};
use everlock_host::auth::{AccessPath, Action, Principal};
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, StatusCode};
use everlock_host::test_util::TestEnv;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn private_sites_challenge_anonymous_and_refuse_ungranted_users() {
    let s = TestSite::new("intra", "", true).await;
    s.write(&[("index.html", b"internal"), ("a.png", b"png")])
        .await;
    let (r, body) = s.get("/", &[]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&r, "www-authenticate").starts_with("Basic realm=\"site\""));
    assert!(!String::from_utf8_lossy(&body).contains("internal"));
    // Even paths that do not exist answer 401: a private site reveals nothing.
    assert_eq!(
        s.get("/nope", &[]).await.0.status(),
        StatusCode::UNAUTHORIZED
    );
    let (r, _) = s
        .get("/", &[("authorization", &basic("alice", "alice-pw"))])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (r, _) = s
        .get("/", &[("authorization", &basic("rita", "wrong"))])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (r, body) = s
        .get("/", &[("authorization", &basic("rita", "rita-pw"))])
        .await;
    assert_eq!(
        (r.status(), body.as_slice()),
        (StatusCode::OK, &b"internal"[..])
    );
    assert_eq!(header(&r, "cache-control"), "private, no-cache");
    // Making it public applies on the next request, and public responses are not `private`.
    s.env
        .auth
        .grant(&s.admin, "anon", "http/site/intra", "reader")
        .await
        .unwrap();
    let (r, _) = s.get("/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    s.env
        .auth
        .revoke(&s.admin, "anon", "http/site/intra")
        .await
        .unwrap();
    assert_eq!(s.get("/", &[]).await.0.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_zero_config_welcome_site_seeds_itself_once() {
    let env = TestEnv::new().await;
    let ctx = env.context(KIND, "welcome", "localhost", "/");
    let store = ctx.store.clone();
    let router = build(ctx, &everlock_host::toml::Table::new())
        .unwrap()
        .http_router()
        .unwrap();
    let get = || {
        Request::get("/")
            .header("host", "localhost")
            .body(Body::empty())
            .unwrap()
    };
    let resp = router.clone().oneshot(get()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains("skopeo copy") && html.contains("docker://localhost:8443/"),
        "{html}"
    );
    assert!(
        html.contains("everlock site deploy") && html.contains("ssh -p 2222 admin@localhost"),
        "{html}"
    );
    let resource = AccessPath::from_segments(["http", "site", "welcome"]).unwrap();
    assert!(
        env.auth
            .authorize(&Principal::Anon, &resource, Action::Read)
    );
    let log = store.get().await.unwrap().log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].principal, "system");
    // An operator's later decision to make it private sticks, across rebuilds of the instance.
    env.auth
        .revoke(&Principal::System, "anon", "http/site/welcome")
        .await
        .unwrap();
    let ctx = env.context(KIND, "welcome", "localhost", "/");
    let router = build(ctx, &everlock_host::toml::Table::new())
        .unwrap()
        .http_router()
        .unwrap();
    assert_eq!(
        router.oneshot(get()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(store.get().await.unwrap().log(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_welcome_site_first_used_by_a_deploy_is_still_public() {
    let env = TestEnv::new().await;
    env.auth
        .bootstrap(
            "admin",
            everlock_host::auth::AdminPassword::Given("admin-pw".into()),
        )
        .await
        .unwrap();
    let ctx = env.context(KIND, "welcome", "localhost", "/");
    let router = build(ctx, &everlock_host::toml::Table::new())
        .unwrap()
        .http_router()
        .unwrap();
    let put = Request::put("/.well-known/everlock/deploy")
        .header("host", "localhost")
        .header("authorization", basic("admin", "admin-pw"))
        .body(Body::from(common::tar(&[("index.html", b"mine")])))
        .unwrap();
    assert_eq!(
        router.clone().oneshot(put).await.unwrap().status(),
        StatusCode::CREATED
    );
    let resp = router
        .oneshot(
            Request::get("/")
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .as_ref(),
        b"mine"
    );
}

#[tokio::test]
async fn configured_sites_do_not_seed_or_open_themselves() {
    let env = TestEnv::new().await;
    let ctx = env.context(KIND, "welcome", "localhost", "/");
    let table: everlock_host::toml::Table = "mode = \"html\"".parse().unwrap();
    let router = build(ctx, &table).unwrap().http_router().unwrap();
    let resp = router
        .oneshot(
            Request::get("/")
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn settings_are_strict() {
    let env = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestEnv::new());
    let table: everlock_host::toml::Table = "mode = \"wiki\"".parse().unwrap();
    let err = build(env.context(KIND, "x", "h", "/"), &table)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("wiki"), "{err}");
    let table: everlock_host::toml::Table = "max-deploy-byte = 1".parse().unwrap();
    let err = build(env.context(KIND, "x", "h", "/"), &table)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("max-deploy-byte"), "{err}");
    let table: everlock_host::toml::Table = everlock_backend_site_http::settings::EXAMPLE_SETTINGS
        .parse()
        .unwrap();
    assert!(build(env.context(KIND, "x", "h", "/"), &table).is_ok());
}
