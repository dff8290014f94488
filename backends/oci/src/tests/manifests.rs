//! Pushing and pulling manifests and indexes: exact bytes, content negotiation, commits,
//! reference checks, and the size limit.

use super::*;

/// The digest of a manifest that is never pushed.
fn missing() -> String {
    format!("sha256:{}", "9".repeat(64))
}

#[tokio::test]
async fn a_pulled_manifest_is_the_exact_pushed_bytes() {
    let reg = Reg::new().await;
    let (d1, m1) = reg.push_image("team/app", "v1", "one").await;
    let accept = [("accept", OCI_MANIFEST), ("accept", OCI_INDEX)];
    let r = reg
        .req(
            "GET",
            "/v2/team/app/manifests/v1",
            Some(BOB),
            &accept,
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &m1[..], "exact bytes");
    assert_eq!(r.header("content-type"), OCI_MANIFEST);
    assert_eq!(r.header("docker-content-digest"), d1);
    let r = reg
        .call("HEAD", &format!("/v2/team/app/manifests/{d1}"), BOB)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), m1.len().to_string());
    assert_eq!(r.header("content-type"), OCI_MANIFEST);
}

#[tokio::test]
async fn every_push_is_a_commit_recording_the_principal() {
    let reg = Reg::new().await;
    reg.push_image("team/app", "v1", "one").await;
    let log = reg.store().await.log(100).await.unwrap();
    assert!(
        log.iter()
            .any(|c| c.principal == "alice" && c.message.contains("team/app:v1"))
    );
}

#[tokio::test]
async fn an_index_must_name_manifests_that_exist() {
    let reg = Reg::new().await;
    let (d1, m1) = reg.push_image("team/app", "v1", "one").await;
    let (d2, _) = reg.push_image("team/app", "v2", "two").await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d1, "size": m1.len(), "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": d2, "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
    ]}).to_string();
    let r = reg
        .put_typed("team/app", "multi", OCI_INDEX, index.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let bad_index = index.replace(&d2, &missing());
    let r = reg.put_typed("team/app", "bad", OCI_INDEX, bad_index).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn a_manifest_must_name_blobs_that_exist_and_match_its_digest_reference() {
    let reg = Reg::new().await;
    let (d1, m1) = reg.push_image("team/app", "v1", "one").await;
    let missing = missing();

    // Step 1: a layer that is not in the repository.
    let manifest: Value = serde_json::from_slice(&m1).unwrap();
    let mut broken = manifest.clone();
    broken["layers"][0]["digest"] = json!(missing);
    let r = reg
        .put_manifest("team/app", "broken", broken.to_string())
        .await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");

    // Step 2: pushed by a digest that is not the body's.
    let unknown_layer = String::from_utf8(m1.clone())
        .unwrap()
        .replace("\"schemaVersion\"", "\"x\":1,\"schemaVersion\"");
    let unknown_layer = unknown_layer.replace(&d1, &missing);
    let r = reg.put_manifest("team/app", &missing, unknown_layer).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");

    // Step 3: pushed by its own digest.
    let r = reg.put_manifest("team/app", &d1, m1.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "push by digest");
}

#[tokio::test]
async fn an_oversize_manifest_is_refused_and_a_large_one_accepted() {
    let reg = Reg::new().await;
    let (_, m1) = reg.push_image("team/app", "v1", "one").await;
    let huge = vec![b' '; 8 * 1024 * 1024 + 1];
    let r = reg.put_manifest("team/app", "huge", huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A ~3.9 MB manifest (the main suite's large-manifest) is accepted.
    let mut large: Value = serde_json::from_slice(&m1).unwrap();
    large["annotations"] = json!({"pad": "x".repeat(3_900_000)});
    let r = reg
        .put_manifest("team/app", "large", large.to_string())
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}
