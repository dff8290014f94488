//! A sweep of bad input: every malformed name, digest, reference, manifest, range and
//! upload request gets the spec's error code (as JSON) and never a 5xx; a truncated body
//! fails only its own request.

use super::*;

/// A case with no extra headers and no body.
fn plain<'a>(method: &'a str, uri: impl Into<String>, status: u16, code: &'a str) -> Case<'a> {
    (method, uri.into(), vec![], vec![], status, code)
}

/// Runs each case as alice; the code, when given, must come with a JSON body.
async fn run_cases(reg: &Reg, cases: Vec<Case<'_>>) {
    for (method, uri, headers, body, status, code) in cases {
        let r = reg.req(method, &uri, Some(ALICE), &headers, body).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{method} {uri} {headers:?}: {:?}",
            r.body
        );
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{method} {uri}");
            assert_eq!(r.header("content-type"), "application/json");
        }
    }
}

#[tokio::test]
async fn bad_names_digests_and_paths_get_spec_errors() {
    let reg = Reg::new().await;
    let blob = reg.push_blob("r", b"abc").await;
    let upper = format!("sha256:{}", "A".repeat(64));
    let short = "sha256:abc";
    let zeros = "0".repeat(64);
    let cases: Vec<Case<'_>> = vec![
        plain("GET", "/v2/UPPER/tags/list", 400, "NAME_INVALID"),
        plain("GET", "/v2/a..b/manifests/x", 400, "NAME_INVALID"),
        plain("GET", "/v2/a//b/manifests/x", 400, "NAME_INVALID"),
        plain(
            "GET",
            format!("/v2/{}/manifests/x", "a".repeat(300)),
            400,
            "NAME_INVALID",
        ),
        plain("GET", "/v2/-a/blobs/uploads/", 400, "NAME_INVALID"),
        plain(
            "GET",
            "/v2/r/manifests/.INVALID_MANIFEST_NAME",
            404,
            "MANIFEST_UNKNOWN",
        ),
        plain(
            "GET",
            "/v2/r/manifests/sha256:totallywrong",
            400,
            "DIGEST_INVALID",
        ),
        plain("HEAD", "/v2/r/manifests/sha256:totallywrong", 404, ""),
        plain(
            "GET",
            format!("/v2/r/manifests/{upper}"),
            400,
            "DIGEST_INVALID",
        ),
        plain("GET", "/v2/r/manifests/nosuchtag", 404, "MANIFEST_UNKNOWN"),
        plain("GET", format!("/v2/r/blobs/{short}"), 400, "DIGEST_INVALID"),
        plain("HEAD", format!("/v2/r/blobs/{short}"), 404, ""),
        plain("GET", "/v2/r/blobs/md5:abcdef", 400, "DIGEST_INVALID"),
        plain(
            "GET",
            format!("/v2/r/blobs/sha256:{zeros}"),
            404,
            "BLOB_UNKNOWN",
        ),
        (
            "GET",
            format!("/v2/r/blobs/{blob}"),
            vec![("range", "bytes=9-3")],
            vec![],
            416,
            "BLOB_UNKNOWN",
        ),
        plain("GET", "/v2/r/referrers/sha256:zz", 400, "DIGEST_INVALID"),
        plain("GET", "/v2/r/tags/list?n=abc", 400, "UNSUPPORTED"),
        plain("GET", "/v2/r/tags/list?n=-1", 400, "UNSUPPORTED"),
        plain(
            "GET",
            "/v2/r/blobs/uploads/../../etc/passwd",
            404,
            "NAME_UNKNOWN",
        ),
        plain("GET", "/v2/r/unknown/thing", 404, "NAME_UNKNOWN"),
        plain("POST", "/v2/r/manifests/x", 405, "UNSUPPORTED"),
        plain("GET", "/v3/", 404, "NAME_UNKNOWN"),
        (
            "GET",
            "/v2/".into(),
            vec![("authorization", "Basic !!!")],
            vec![],
            400,
            "UNAUTHORIZED",
        ),
    ];
    run_cases(&reg, cases).await;
}

#[tokio::test]
async fn bad_manifest_pushes_get_spec_errors() {
    let reg = Reg::new().await;
    let put = |uri: &str, headers, body: &[u8], status, code| -> Case<'_> {
        ("PUT", uri.into(), headers, body.to_vec(), status, code)
    };
    let cases: Vec<Case<'_>> = vec![
        put(
            "/v2/r/manifests/bad:tag:x",
            vec![],
            b"{}",
            400,
            "MANIFEST_INVALID",
        ),
        put(
            "/v2/r/manifests/.bad",
            vec![],
            b"{}",
            400,
            "MANIFEST_INVALID",
        ),
        put(
            "/v2/r/manifests/t",
            vec![],
            b"not json",
            400,
            "MANIFEST_INVALID",
        ),
        put(
            "/v2/r/manifests/t",
            vec![],
            b"{\"schemaVersion\":1,\"fsLayers\":[]}",
            400,
            "MANIFEST_INVALID",
        ),
        put(
            "/v2/r/manifests/t",
            vec![("content-type", OCI_MANIFEST)],
            b"{\"schemaVersion\":2,\"config\":{\"digest\":\"x\"}}",
            400,
            "MANIFEST_INVALID",
        ),
        put(
            "/v2/r/manifests/t",
            vec![("content-length", "99999999999")],
            b"",
            413,
            "SIZE_INVALID",
        ),
        put(
            "/v2/r/manifests/md5:00",
            vec![],
            b"{}",
            400,
            "DIGEST_INVALID",
        ),
    ];
    run_cases(&reg, cases).await;
}

#[tokio::test]
async fn bad_upload_starts_get_spec_errors() {
    let reg = Reg::new().await;
    let zeros = "0".repeat(64);
    let cases: Vec<Case<'_>> = vec![
        (
            "POST",
            "/v2/r/blobs/uploads/?digest=sha256:nothex".into(),
            vec![],
            b"abc".to_vec(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "POST",
            format!("/v2/r/blobs/uploads/?digest=sha256:{zeros}"),
            vec![],
            b"abc".to_vec(),
            400,
            "DIGEST_INVALID",
        ),
        plain("POST", "/v2/r/blobs/uploads/?mount=garbage&from=A", 202, ""),
    ];
    run_cases(&reg, cases).await;
}

#[tokio::test]
async fn bad_upload_requests_get_spec_errors_and_leave_the_session_intact() {
    let reg = Reg::new().await;
    let loc = reg.upload_session("r").await;
    reg.req(
        "PATCH",
        &loc,
        Some(ALICE),
        &[("content-range", "0-1")],
        "ab",
    )
    .await;
    let patch = |headers, body: &[u8], status, code| -> Case<'_> {
        ("PATCH", loc.clone(), headers, body.to_vec(), status, code)
    };
    let cases: Vec<Case<'_>> = vec![
        patch(
            vec![("content-range", "garbage")],
            b"c",
            416,
            "BLOB_UPLOAD_INVALID",
        ),
        patch(
            vec![("content-range", "5-2")],
            b"c",
            416,
            "BLOB_UPLOAD_INVALID",
        ),
        patch(
            vec![("content-range", "bytes=0-0")],
            b"c",
            416,
            "BLOB_UPLOAD_INVALID",
        ),
        patch(
            vec![("content-range", "2-4")],
            b"cd",
            400,
            "BLOB_UPLOAD_INVALID",
        ),
        patch(
            vec![("content-range", "2-3"), ("content-length", "5")],
            b"cd",
            400,
            "SIZE_INVALID",
        ),
        patch(vec![("content-length", "x")], b"cd", 400, "SIZE_INVALID"),
        plain("PUT", loc.clone(), 400, "DIGEST_INVALID"),
        plain(
            "PUT",
            format!("{loc}?digest=sha256:xyz"),
            400,
            "DIGEST_INVALID",
        ),
        (
            "PATCH",
            "/v2/r/blobs/uploads/0123456789abcdef0123456789abcdef".into(),
            vec![],
            b"x".to_vec(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        plain(
            "GET",
            "/v2/r/blobs/uploads/%2e%2e",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        plain(
            "DELETE",
            "/v2/r/blobs/uploads/nope",
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
    ];
    run_cases(&reg, cases).await;
    // After all that, the chunk session is intact at its last good offset.
    let r = reg.call("GET", &loc, ALICE).await;
    assert_eq!(r.header("range"), "0-1");
}

#[tokio::test]
async fn a_truncated_body_fails_only_its_request() {
    let reg = Reg::new().await;
    let blob = reg.push_blob("r", b"abc").await;
    let loc = reg.upload_session("r").await;
    reg.req(
        "PATCH",
        &loc,
        Some(ALICE),
        &[("content-range", "0-1")],
        "ab",
    )
    .await;

    // A chunk cut by a reset, or shorter than its Content-Range, leaves the offset.
    let broken = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"cd")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "2-5")],
            Body::from_stream(broken),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    let short_body =
        futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"c"))]);
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "2-5")],
            Body::from_stream(short_body),
        )
        .await;
    assert_eq!(
        r.code(),
        "BLOB_UPLOAD_INVALID",
        "body shorter than its Content-Range"
    );
    let r = reg.call("GET", &loc, ALICE).await;
    assert_eq!(r.header("range"), "0-1");
    let r = reg
        .req(
            "PUT",
            &format!("{loc}?digest={blob}"),
            Some(ALICE),
            &[("content-range", "2-2")],
            "c",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "the session still finishes");
}

#[tokio::test]
async fn a_cut_monolithic_upload_or_manifest_is_a_client_error() {
    let reg = Reg::new().await;
    let blob = reg.push_blob("r", b"abc").await;
    let broken = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("reset")),
    ]);
    let r = reg
        .req(
            "POST",
            &format!("/v2/r/blobs/uploads/?digest={blob}"),
            Some(ALICE),
            &[],
            Body::from_stream(broken),
        )
        .await;
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    let broken = futures_util::stream::iter(vec![Err::<Bytes, _>(std::io::Error::other("reset"))]);
    let r = reg
        .req(
            "PUT",
            "/v2/r/manifests/t",
            Some(ALICE),
            &[],
            Body::from_stream(broken),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
}
