//! The ping endpoint, Basic authentication, the login throttle, and per-repository
//! authorization for users and for `anon`.

use super::*;

#[tokio::test]
async fn ping_challenges_anonymous_callers_and_accepts_users() {
    let reg = Reg::new().await;
    let r = reg.req("GET", "/v2/", None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .starts_with("Basic realm=\"everlock\"")
    );
    assert_eq!(r.code(), "UNAUTHORIZED");
    // containers/image sends empty credentials when anonymous: still a challenge, no failure.
    let empty = [("authorization", "Basic Og==")];
    let r = reg.req("GET", "/v2/", None, &empty, Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = reg.call("GET", "/v2/", ALICE).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({}));
    let r = reg.call("GET", "/v2", BOB).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg.call("GET", "/v2/", ("alice", "wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "UNAUTHORIZED");
    let bearer = [("authorization", "Bearer x")];
    let r = reg.req("GET", "/v2/", None, &bearer, Body::empty()).await;
    assert!(r.status.is_client_error());
}

#[tokio::test]
async fn repeated_bad_passwords_are_throttled_with_retry_after() {
    let reg = Reg::new().await;
    for _ in 0..6 {
        let r = reg.call("GET", "/v2/", ("bob", "wrong")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = reg.call("GET", "/v2/", BOB).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "TOOMANYREQUESTS");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn a_reader_reads_only_its_repositories_and_may_not_push() {
    let reg = Reg::new().await;
    reg.push_image("team/app", "v1", "t").await;
    reg.push_image("private/app", "v1", "p").await;

    let r = reg.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg.call("GET", "/v2/private/app/manifests/v1", BOB).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "DENIED");
    let r = reg.call("POST", "/v2/team/app/blobs/uploads/", BOB).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/x",
            Some(BOB),
            &[("content-type", OCI_MANIFEST)],
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn anonymous_callers_are_challenged_until_anon_holds_reader() {
    let reg = Reg::new().await;
    reg.push_image("team/app", "v1", "t").await;
    reg.push_image("private/app", "v1", "p").await;
    let anon_get = |uri: &'static str, headers: &'static [(&'static str, &'static str)]| {
        reg.req("GET", uri, None, headers, Body::empty())
    };

    // Step 1: without a grant, a challenge.
    let r = anon_get("/v2/team/app/manifests/v1", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Basic"));

    // Step 2: anon reader on team/*: reads there, with or without empty credentials.
    let admin = Principal::test_user(ADMIN.0);
    reg.env
        .auth
        .grant(&admin, "anon", "http/oci/default/team", "reader")
        .await
        .unwrap();
    let r = anon_get("/v2/team/app/manifests/v1", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let empty: &'static [(&str, &str)] = &[("authorization", "Basic Og==")];
    let r = anon_get("/v2/team/app/manifests/v1", empty).await;
    assert_eq!(r.status, StatusCode::OK);

    // Step 3: nothing else, and never a push.
    let r = anon_get("/v2/private/app/manifests/v1", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = reg
        .req(
            "POST",
            "/v2/team/app/blobs/uploads/",
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "anon may not push");
}
