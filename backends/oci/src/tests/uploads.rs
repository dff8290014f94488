//! Every blob upload style clients use (monolithic POST, POST then PUT, chunked PATCHes,
//! one streamed PATCH), digest checks, cancelling, session ownership and lifetime, and
//! cross-repository mounts.

use super::*;

/// 3000 bytes that are not all alike, so a misplaced chunk shows in the digest.
fn sample() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test]
async fn a_single_post_with_the_digest_stores_the_blob() {
    let reg = Reg::new().await;
    let data = sample();
    let d = reg.push_blob("a", &data).await;
    assert_eq!(d, OciDigest::sha256_of(&data).to_string());
    let r = reg.call("GET", &format!("/v2/a/blobs/{d}"), ALICE).await;
    assert_eq!(&r.body[..], &data[..]);
}

#[tokio::test]
async fn post_then_monolithic_put_as_containerd_does() {
    let reg = Reg::new().await;
    let other = b"monolithic".to_vec();
    let od = OciDigest::sha256_of(&other).to_string();
    let r = reg.call("POST", "/v2/b/blobs/uploads/", ALICE).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-0");
    let loc = r.header("location").to_owned();
    assert!(loc.starts_with("/v2/b/blobs/uploads/"));
    let r = reg
        .req(
            "PUT",
            &format!("{loc}?digest={od}"),
            Some(ALICE),
            &[],
            other,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("location"), format!("/v2/b/blobs/{od}"));
    assert_eq!(r.header("docker-content-digest"), od);
}

/// A PATCH of `data[a..=b]` with its `Content-Range`.
async fn patch(reg: &Reg, loc: &str, data: &[u8], a: usize, b: usize) -> Reply {
    let range = format!("{a}-{b}");
    reg.req(
        "PATCH",
        loc,
        Some(ALICE),
        &[("content-range", &range)],
        data[a..=b].to_vec(),
    )
    .await
}

#[tokio::test]
async fn chunks_with_content_range_refuse_repeats_and_gaps() {
    let reg = Reg::new().await;
    let data = sample();
    let d = OciDigest::sha256_of(&data).to_string();
    let loc = reg.upload_session("c").await;

    // Step 1: the first chunk; the Location stays the same.
    let r = patch(&reg, &loc, &data, 0, 999).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-999");
    assert_eq!(r.header("location"), loc, "earlier Locations stay valid");

    // Step 2: a repeated chunk and a gap are refused with the current range.
    let r = patch(&reg, &loc, &data, 0, 999).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(r.header("range"), "0-999");
    let r = patch(&reg, &loc, &data, 1500, 1999).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = reg.call("GET", &loc, ALICE).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), "0-999");

    // Step 3: the next chunk, then the last one with the closing PUT.
    let r = patch(&reg, &loc, &data, 1000, 1999).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = reg
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            Some(ALICE),
            &[("content-range", "2000-2999")],
            data[2000..].to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Step 4: the finished session is gone.
    let r = reg.call("GET", &loc, ALICE).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a finished session is gone"
    );
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn one_streamed_patch_then_an_empty_put_as_skopeo_and_podman_do() {
    let reg = Reg::new().await;
    let data = sample();
    let d = OciDigest::sha256_of(&data).to_string();
    let loc = reg.upload_session("d").await;
    let stream = futures_util::stream::iter(
        data.chunks(700)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let r = reg
        .req("PATCH", &loc, Some(ALICE), &[], Body::from_stream(stream))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-2999");
    let r = reg.call("PUT", &format!("{loc}?digest={d}"), ALICE).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = reg.call("GET", &format!("/v2/d/blobs/{d}"), ALICE).await;
    assert_eq!(&r.body[..], &data[..]);
}

#[tokio::test]
async fn a_wrong_digest_discards_the_data_and_cancel_gives_204() {
    let reg = Reg::new().await;
    let data = sample();
    let od = OciDigest::sha256_of(b"monolithic").to_string();

    // Step 1: a wrong digest ends the session and stores nothing.
    let loc = reg.upload_session("e").await;
    let r = reg
        .req("PUT", &format!("{loc}?digest={od}"), Some(ALICE), &[], data)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = reg.call("GET", &loc, ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = reg.call("HEAD", &format!("/v2/e/blobs/{od}"), ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Step 2: a cancel succeeds once.
    let loc = reg.upload_session("e").await;
    let r = reg.call("DELETE", &loc, ALICE).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = reg.call("DELETE", &loc, ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_session_belongs_to_its_repository() {
    let reg = Reg::new().await;
    let loc = reg.upload_session("e").await;
    let id = loc.rsplit('/').next().unwrap().to_owned();
    let r = reg
        .call("GET", &format!("/v2/other/blobs/uploads/{id}"), ALICE)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sha512_is_verified_and_served_under_its_own_digest() {
    let reg = Reg::new().await;
    let data = sample();
    let d512 = OciDigest::of(crate::names::Algorithm::Sha512, &data).to_string();
    let loc = reg.upload_session("f").await;
    reg.req("PATCH", &loc, Some(ALICE), &[], data.clone()).await;
    let r = reg
        .call("PUT", &format!("{loc}?digest={d512}"), ALICE)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("docker-content-digest"), d512);
    let r = reg.call("GET", &format!("/v2/f/blobs/{d512}"), ALICE).await;
    assert_eq!(&r.body[..], &data[..]);
}

#[tokio::test]
async fn sessions_survive_a_rebuild_and_expire() {
    let reg = Reg::with_settings("upload-expiry-secs = 1").await;
    let loc = reg.upload_session("r").await;
    reg.req(
        "PATCH",
        &loc,
        Some(ALICE),
        &[("content-range", "0-2")],
        "abc",
    )
    .await;
    // A rebuilt instance (the host rebuilds on live changes) serves the same session.
    let rebuilt = Reg::router(&reg.env, "upload-expiry-secs = 1");
    let token = base64::engine::general_purpose::STANDARD.encode("alice:alice-pw");
    let r = rebuilt
        .oneshot(
            Request::get(&loc)
                .header("authorization", format!("Basic {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-2");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = reg.call("GET", &loc, ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "expired");
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    // The next upload start sweeps expired sessions and their data.
    reg.call("POST", "/v2/r/blobs/uploads/", ALICE).await;
    let store = reg.store().await;
    assert_eq!(store.uploads().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_mount_needs_read_access_to_the_source_and_an_existing_blob() {
    let reg = Reg::new().await;
    let secret = reg.push_blob("private/app", b"secret layer").await;
    let admin = Principal::test_user(ADMIN.0);
    reg.env
        .auth
        .grant(&admin, "bob", "http/oci/default/team/bob", "writer")
        .await
        .unwrap();

    // Step 1: 202 (a normal upload) when the caller may not read the source.
    let from_private = |repo: &str, digest: &str| {
        format!("/v2/{repo}/blobs/uploads/?mount={digest}&from=private/app")
    };
    let r = reg
        .call("POST", &from_private("team/bob", &secret), BOB)
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "bob cannot read private/app"
    );
    assert!(
        r.header("location")
            .starts_with("/v2/team/bob/blobs/uploads/")
    );

    // Step 2: 201 when it may, and the blob is then readable in the target.
    let r = reg
        .call("POST", &from_private("team/copy", &secret), ALICE)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), secret);
    let r = reg
        .call("GET", &format!("/v2/team/copy/blobs/{secret}"), ALICE)
        .await;
    assert_eq!(&r.body[..], b"secret layer");

    // Step 3: never 201 for a blob that does not exist.
    let missing = format!("sha256:{}", "4".repeat(64));
    let r = reg
        .call("POST", &from_private("team/copy", &missing), ALICE)
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "never 201 for a missing blob"
    );
}
