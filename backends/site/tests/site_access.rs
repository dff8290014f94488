//! Access: public and private sites, 401/403, changes applied immediately, and the zero-config
//! sites never provisioning themselves on the request path.

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

/// A site never provisions itself: whatever its name and settings, requests (deploys
/// included) neither seed content nor grant `anon` anything. Zero-config provisioning is the
/// host's, once, at install (host/src/provision.rs; end to end in tests/site_e2e.rs).
#[tokio::test]
async fn sites_never_seed_or_open_themselves_on_requests() {
    let env = TestEnv::new().await;
    env.auth
        .bootstrap(
            "admin",
            everlock_host::auth::AdminPassword::Given("admin-pw".into()),
        )
        .await
        .unwrap();
    for settings in ["", "mode = \"html\""] {
        let ctx = env.context(KIND, "welcome", "localhost", "/");
        let store = ctx.store.clone();
        let table: everlock_host::toml::Table = settings.parse().unwrap();
        let router = build(ctx, &table).unwrap().http_router().unwrap();
        let get = || {
            Request::get("/")
                .header("host", "localhost")
                .body(Body::empty())
                .unwrap()
        };
        let resp = router.clone().oneshot(get()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{settings}");
        let put = Request::put("/.well-known/everlock/deploy")
            .header("host", "localhost")
            .header("authorization", basic("admin", "admin-pw"))
            .body(Body::from(common::tar(&[("index.html", b"mine")])))
            .unwrap();
        // The second round deploys the same content again: 200, nothing committed.
        let status = router.clone().oneshot(put).await.unwrap().status();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}"
        );
        assert_eq!(
            router.oneshot(get()).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "a deploy must not make the site public"
        );
        let resource = AccessPath::from_segments(["http", "site", "welcome"]).unwrap();
        assert!(
            !env.auth
                .authorize(&Principal::anon(), &resource, Action::Read)
        );
        let log = store.get().await.unwrap().log(10).await.unwrap();
        assert!(log.iter().all(|c| c.principal == "admin"), "{log:?}");
    }
}

#[test]
fn the_welcome_seed_shows_how_to_start() {
    let (path, html) = everlock_backend_site_http::welcome::FILES[0];
    assert_eq!(path, "index.html");
    let html = String::from_utf8_lossy(html);
    assert!(
        html.contains("skopeo copy") && html.contains("docker://localhost:8443/"),
        "{html}"
    );
    assert!(
        html.contains("everlock site deploy") && html.contains("ssh -p 2222 admin@localhost"),
        "{html}"
    );
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
