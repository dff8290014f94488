//! `auth = "token"`: the Bearer challenge with realm, service and scope, the token endpoint
//! granting only what the caller may do (anonymous tokens for what `anon` may read), tokens
//! honoured for exactly their actions, and forged or unknown tokens refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

/// A token-auth registry holding `team/app:v1` and `public/app:v1` (readable by anon), and
/// the digest of `team/app:v1`. The images are pushed with Basic credentials before the
/// router switches to token authentication (same store).
async fn token_reg() -> (Reg, String) {
    let mut reg = Reg::new().await;
    let admin = Principal::test_user(ADMIN.0);
    reg.env
        .auth
        .grant(&admin, "anon", "http/oci/default/public", "reader")
        .await
        .unwrap();
    let (digest, _) = reg.push_image("team/app", "v1", "t").await;
    reg.push_image("public/app", "v1", "p").await;
    reg.router = Reg::router(&reg.env, "auth = \"token\"");
    (reg, digest)
}

/// A request with a `Host` header (the challenge names it) and optional extra headers.
async fn hosted(
    reg: &Reg,
    method: &str,
    uri: &str,
    who: Option<(&str, &str)>,
    bearer: Option<&str>,
) -> Reply {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("host", "registry.test:5000")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    reg.req(method, uri, who, &headers, Body::empty()).await
}

/// Fetches a token for `scope` and returns it with its decoded claims.
async fn token(reg: &Reg, who: Option<(&str, &str)>, scope: &str) -> (String, Value) {
    let uri = format!("/v2/token?service=registry.test%3A5000&scope={scope}");
    let r = hosted(reg, "GET", &uri, who, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = r.json();
    let t = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["access_token"], body["token"]);
    assert_eq!(body["expires_in"], 300);
    let payload = t.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (t, claims)
}

#[tokio::test]
async fn a_protected_request_gets_a_bearer_challenge_with_its_scope() {
    let (reg, _) = token_reg().await;
    let r = hosted(&reg, "GET", "/v2/team/app/manifests/v1", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        "Bearer realm=\"http://registry.test:5000/v2/token\",service=\"registry.test:5000\",scope=\"repository:team/app:pull\""
    );
    let r = hosted(&reg, "POST", "/v2/team/app/blobs/uploads/", None, None).await;
    assert!(
        r.header("www-authenticate")
            .ends_with("scope=\"repository:team/app:pull,push\"")
    );
    // Even though anon may read something here: the Docker daemon learns the realm only
    // from a 401 ping (token::tests has the regression test).
    let r = hosted(&reg, "GET", "/v2/", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Bearer realm="));
}

#[tokio::test]
async fn a_token_carries_only_granted_actions_and_is_honoured_for_exactly_those() {
    let (reg, digest) = token_reg().await;
    // bob reads team/*: asking for push gets pull only.
    let (t, claims) = token(&reg, Some(BOB), "repository:team/app:pull,push").await;
    assert_eq!(claims["sub"], "bob");
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
    );
    let r = hosted(&reg, "GET", "/v2/team/app/manifests/v1", None, Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("docker-content-digest"), digest);
    let r = hosted(&reg, "POST", "/v2/team/app/blobs/uploads/", None, Some(&t)).await;
    // RFC 6750: a valid token lacking the scope gets 403 `insufficient_scope`.
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a pull token refused on push"
    );
    assert!(
        r.header("www-authenticate")
            .contains("repository:team/app:pull,push\",error=\"insufficient_scope\"")
    );
    let r = hosted(&reg, "GET", "/v2/team/other/manifests/v1", None, Some(&t)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another repository");

    // alice may push: her token allows an upload.
    let (t, claims) = token(&reg, Some(ALICE), "repository:team/new:pull,push").await;
    assert_eq!(claims["access"][0]["actions"], json!(["pull", "push"]));
    let r = hosted(&reg, "POST", "/v2/team/new/blobs/uploads/", None, Some(&t)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // Wrong credentials at the token endpoint: 401, no token.
    let r = hosted(
        &reg,
        "GET",
        "/v2/token?scope=repository:team/app:pull",
        Some(("bob", "nope")),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_tokens_cover_what_anon_may_read() {
    let (reg, _) = token_reg().await;
    let (t, claims) = token(&reg, None, "repository:public/app:pull,push").await;
    assert_eq!(claims["sub"], "");
    assert_eq!(claims["access"][0]["actions"], json!(["pull"]));
    let r = hosted(&reg, "GET", "/v2/public/app/manifests/v1", None, Some(&t)).await;
    assert_eq!(r.status, StatusCode::OK);
    let (t, claims) = token(&reg, None, "repository:team/app:pull").await;
    assert_eq!(claims["access"][0]["actions"], json!([]));
    let r = hosted(&reg, "GET", "/v2/team/app/manifests/v1", None, Some(&t)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn forged_and_foreign_tokens_are_refused() {
    let (reg, _) = token_reg().await;
    let (t, _) = token(&reg, Some(BOB), "repository:team/app:pull").await;
    // The same claims granting push, re-encoded: the signature no longer matches.
    let mut pieces: Vec<String> = t.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&pieces[1]).unwrap()).unwrap();
    claims["access"][0]["actions"] = json!(["pull", "push"]);
    pieces[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged = pieces.join(".");
    let r = hosted(
        &reg,
        "POST",
        "/v2/team/app/blobs/uploads/",
        None,
        Some(&forged),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for garbage in ["x", "a.b.c", ""] {
        let r = hosted(
            &reg,
            "GET",
            "/v2/team/app/manifests/v1",
            None,
            Some(garbage),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{garbage:?}");
        assert!(r.header("www-authenticate").starts_with("Bearer "));
    }
    // A token of another instance (another key) means nothing here.
    let (other, _) = token_reg().await;
    let (foreign, _) = token(&other, Some(BOB), "repository:team/app:pull").await;
    let r = hosted(
        &reg,
        "GET",
        "/v2/team/app/manifests/v1",
        None,
        Some(&foreign),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // The signing key lives in the store.
    assert_eq!(
        reg.store()
            .await
            .read("token/hs256.key")
            .await
            .unwrap()
            .len(),
        32
    );
}

#[tokio::test]
async fn a_basic_registry_has_no_token_endpoint_and_keeps_its_basic_challenge() {
    let reg = Reg::new().await;
    let r = hosted(
        &reg,
        "GET",
        "/v2/token?scope=repository:team/app:pull",
        Some(BOB),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = hosted(&reg, "GET", "/v2/team/app/manifests/v1", None, None).await;
    assert!(r.header("www-authenticate").starts_with("Basic realm="));
}

#[tokio::test]
async fn basic_credentials_count_only_at_the_token_endpoint() {
    let (reg, _) = token_reg().await;
    let r = hosted(&reg, "GET", "/v2/team/app/manifests/v1", Some(BOB), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Bearer realm="));
    let r = hosted(&reg, "GET", "/v2/", Some(BOB), None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "docker login learns the realm"
    );
}
