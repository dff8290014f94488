//! Token settings.

#[test]
fn auth_is_basic_or_token() {
    let parse = |t: &str| -> Result<crate::settings::Settings, _> {
        everlock_host::parse_settings(&t.parse().unwrap())
    };
    assert_eq!(parse("").unwrap().auth, super::state::AuthMode::Basic);
    assert_eq!(
        parse("auth = \"token\"").unwrap().auth,
        super::state::AuthMode::Token
    );
    assert!(parse("auth = \"oauth\"").is_err());
}

/// Anyone may ask `/v2/token` for an anonymous token, so the sessions behind tokens must stay
/// bounded: past the cap, the session expiring first goes and the newest stays.
#[test]
fn sessions_stay_bounded_and_the_earliest_expiry_goes_first() {
    use everlock_host::auth::Principal;
    let tokens = super::state::Tokens::default();
    let far = super::state::now_secs() + 10_000;
    for i in 0..super::state::MAX_SESSIONS + 100 {
        // The first sessions expire first; `i` keeps every expiry distinct.
        tokens.open_session(format!("jti-{i}"), Principal::anon(), far + i as u64);
    }
    let live = tokens.held();
    assert_eq!(live, super::state::MAX_SESSIONS);
    assert!(
        tokens.session("jti-0").is_none(),
        "the earliest expiry was evicted"
    );
    let newest = format!("jti-{}", super::state::MAX_SESSIONS + 99);
    assert!(
        tokens.session(&newest).is_some(),
        "the newest session stays"
    );
}

/// oras-py fetches a `pull` token for its first blob `HEAD`, then pushes with it; it asks for
/// a wider token only on a 403 carrying a challenge, so a token lacking the action must get
/// 403 with the scope and `error="insufficient_scope"` (RFC 6750), not a bare 401.
#[test]
fn a_token_without_the_action_gets_403_with_an_insufficient_scope_challenge() {
    use everlock_host::axum::response::IntoResponse as _;
    use everlock_host::http::header::{HeaderValue, WWW_AUTHENTICATE};
    use everlock_host::http::{Method, StatusCode};

    use crate::route::Route;

    let name = crate::names::Name::parse("team/app").unwrap();
    let grant = super::Grant(vec![super::Access {
        kind: "repository".into(),
        name: "team/app".into(),
        actions: vec!["pull".into()],
    }]);
    let pull = Route::Manifest(name.clone(), "v1".into());
    assert!(super::check(Some(&grant), &pull, &Method::GET).is_ok());
    let err = super::check(Some(&grant), &Route::UploadStart(name), &Method::POST).unwrap_err();
    assert_eq!(err.status, StatusCode::FORBIDDEN);
    let mut response = err.into_response();
    let challenge =
        "Bearer realm=\"https://h/v2/token\",service=\"h\",scope=\"repository:team/app:pull,push\"";
    super::rewrite(&mut response, HeaderValue::from_static(challenge));
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        format!("{challenge},error=\"insufficient_scope\"")
    );
    // A plain 401 gets the challenge as it is.
    let mut response = crate::respond::unauthorized("log in").into_response();
    super::rewrite(&mut response, HeaderValue::from_static(challenge));
    assert_eq!(response.headers()[WWW_AUTHENTICATE], challenge);
}

/// A token-auth registry with `alice` (writer everywhere), behind its router.
async fn token_router() -> (
    everlock_host::test_util::TestEnv,
    everlock_host::axum::Router,
) {
    use everlock_host::auth::{AdminPassword, Principal};
    let env = everlock_host::test_util::TestEnv::new().await;
    env.auth
        .bootstrap("admin", AdminPassword::Given("admin-pw".into()))
        .await
        .unwrap();
    let admin = Principal::test_user("admin");
    env.auth
        .add_user(&admin, "alice", "alice-pw")
        .await
        .unwrap();
    env.auth
        .grant(&admin, "alice", "http/oci/default", "writer")
        .await
        .unwrap();
    let table: everlock_host::toml::Table = "auth = \"token\"".parse().unwrap();
    let ctx = env.context(crate::KIND, "default", "localhost", "/v2");
    let router = crate::build(ctx, &table).unwrap().http_router().unwrap();
    (env, router)
}

/// Sends a request with optional headers and body; returns status and body as JSON (or
/// `Null`).
async fn send(
    router: &everlock_host::axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (everlock_host::http::StatusCode, serde_json::Value) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let mut b = everlock_host::http::Request::builder()
        .method(method)
        .uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let request = b
        .body(everlock_host::axum::body::Body::from(body.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

/// The `access` claim of a token (the payload is read without checking the signature).
fn access_of(token: &serde_json::Value) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.as_str().unwrap().split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["access"].clone()
}

const FORM: &str = "application/x-www-form-urlencoded";

/// Distribution's client and go-containerregistry may ask for tokens with an OAuth2 form
/// (`POST`, `grant_type=password`) instead of `GET` with Basic; the answer carries
/// `access_token`, `expires_in` and `issued_at` like the `GET` one, and the token works.
/// Before, `POST /v2/token` answered 405 and tokens had no `issued_at`.
#[tokio::test]
async fn an_oauth2_password_form_gets_a_token_with_its_issue_time() {
    use everlock_host::http::StatusCode;
    let (_env, router) = token_router().await;
    let form = "grant_type=password&username=alice&password=alice-pw&service=localhost\
                &client_id=docker&access_type=offline\
                &scope=repository%3Ateam%2Fapp%3Apull%2Cpush";
    let (status, body) = send(
        &router,
        "POST",
        "/v2/token",
        &[("content-type", FORM)],
        form,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], super::TOKEN_TTL_SECS);
    assert!(body.get("refresh_token").is_none(), "no refresh tokens");
    let issued = humantime::parse_rfc3339(body["issued_at"].as_str().unwrap()).unwrap();
    let age = std::time::SystemTime::now().duration_since(issued).unwrap();
    assert!(age.as_secs() < 60, "issued {age:?} ago");
    assert_eq!(
        access_of(&body["token"]),
        serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );
    let bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    let upload = "/v2/team/app/blobs/uploads/";
    let (status, _) = send(&router, "POST", upload, &[("authorization", &bearer)], "").await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // A wrong password is refused like wrong Basic credentials; other grants get OAuth2 errors.
    let form =
        "grant_type=password&username=alice&password=nope&scope=repository%3Ateam%2Fapp%3Apull";
    let (status, _) = send(
        &router,
        "POST",
        "/v2/token",
        &[("content-type", FORM)],
        form,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (form, error) in [
        (
            "grant_type=refresh_token&refresh_token=x&service=localhost",
            "invalid_grant",
        ),
        ("grant_type=client_credentials", "unsupported_grant_type"),
        ("grant_type=password&username=alice", "invalid_request"),
    ] {
        let (status, body) = send(
            &router,
            "POST",
            "/v2/token",
            &[("content-type", FORM)],
            form,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}");
        assert_eq!(body["error"], error, "{form}");
    }
    // The form is bounded.
    let huge = format!("grant_type=password&scope={}", "x".repeat(64 * 1024));
    let (status, _) = send(
        &router,
        "POST",
        "/v2/token",
        &[("content-type", FORM)],
        &huge,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Docker's `GET` carries `account`, `client_id` and `offline_token`, and clients may ask for
/// several scopes in one `scope` (space-separated) or in repeated ones: all are honoured.
#[tokio::test]
async fn several_scopes_in_one_or_repeated_parameters_are_all_granted() {
    use base64::Engine as _;
    use everlock_host::http::StatusCode;
    let (_env, router) = token_router().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")
    );
    let uri = "/v2/token?account=alice&client_id=docker&offline_token=true&service=localhost\
               &scope=repository%3Aa%3Apull%20repository%3Ab%3Apush&scope=repository%3Ac%3Apull";
    let (status, body) = send(&router, "GET", uri, &[("authorization", &basic)], "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        access_of(&body["token"]),
        serde_json::json!([
            {"type": "repository", "name": "a", "actions": ["pull"]},
            {"type": "repository", "name": "b", "actions": ["push"]},
            {"type": "repository", "name": "c", "actions": ["pull"]},
        ])
    );
}

/// The Docker daemon records challenges only from a 401 ping: after a 200 one it sent no
/// credentials and no token (`docker login` "succeeded" unchecked, `docker push` retried 401s
/// until it gave up). So an anonymous `GET /v2/` of a token-auth instance answers 401 with the
/// Bearer challenge even when anon may read something; a Bearer ping passes.
#[tokio::test]
async fn the_anonymous_ping_gets_the_bearer_challenge_even_when_anon_may_read() {
    use everlock_host::auth::Principal;
    use everlock_host::http::StatusCode;
    let (env, router) = token_router().await;
    let admin = Principal::test_user("admin");
    env.auth
        .grant(&admin, "anon", "http/oci/default/public", "reader")
        .await
        .unwrap();
    let request = everlock_host::http::Request::builder()
        .uri("/v2/")
        .header("host", "registry.test")
        .body(everlock_host::axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"http://registry.test/v2/token\",service=\"registry.test\""
    );
    let (status, body) = send(&router, "GET", "/v2/token?service=registry.test", &[], "").await;
    assert_eq!(status, StatusCode::OK, "an anonymous token");
    let bearer = format!("Bearer {}", body["token"].as_str().unwrap());
    let (status, _) = send(&router, "GET", "/v2/", &[("authorization", &bearer)], "").await;
    assert_eq!(status, StatusCode::OK);
}
