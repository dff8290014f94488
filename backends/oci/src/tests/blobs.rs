//! Reading blobs: HEAD, GET, byte ranges, repository isolation, and blob deletes.

use super::*;

/// 3000 bytes that are not all alike, so a wrong range shows.
fn sample() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test]
async fn head_keeps_the_real_length_and_get_answers_the_bytes() {
    let reg = Reg::new().await;
    let data = sample();
    let d = reg.push_blob("a", &data).await;
    let r = reg.call("HEAD", &format!("/v2/a/blobs/{d}"), ALICE).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-length"),
        "3000",
        "HEAD keeps the real length"
    );
    assert_eq!(r.header("docker-content-digest"), d);
    assert!(r.body.is_empty());
    let r = reg.call("GET", &format!("/v2/a/blobs/{d}"), ALICE).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &data[..]);
}

#[tokio::test]
async fn ranges_answer_206_with_content_range_or_416() {
    let reg = Reg::new().await;
    let data = sample();
    let d = reg.push_blob("a", &data).await;
    for (range, status, want) in [
        ("bytes=500-1499", 206, Some((500, 1499))),
        ("bytes=500-", 206, Some((500, 2999))),
        ("bytes=-500", 206, Some((2500, 2999))),
        ("bytes=2000-5000", 206, Some((2000, 2999))),
        ("bytes=500-0", 416, None),
        ("bytes=5000-10000", 416, None),
    ] {
        let uri = format!("/v2/a/blobs/{d}");
        let r = reg
            .req("GET", &uri, Some(ALICE), &[("range", range)], Body::empty())
            .await;
        assert_eq!(r.status.as_u16(), status, "{range}");
        if let Some((a, b)) = want {
            assert_eq!(&r.body[..], &data[a..=b], "{range}");
            assert_eq!(r.header("content-range"), format!("bytes {a}-{b}/3000"));
            assert_eq!(r.header("content-length"), (b - a + 1).to_string());
        }
    }
}

#[tokio::test]
async fn a_blob_of_one_repository_is_not_readable_through_another() {
    let reg = Reg::new().await;
    let secret = reg.push_blob("private/app", b"secret layer").await;
    let r = reg
        .call("GET", &format!("/v2/team/app/blobs/{secret}"), ALICE)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn a_blob_delete_is_atomic_and_a_second_one_is_unknown() {
    let reg = Reg::new().await;
    let d = reg.push_blob("a", &sample()).await;
    let uri = format!("/v2/a/blobs/{d}");
    let r = reg.call("DELETE", &uri, ADMIN).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = reg.call("HEAD", &uri, ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "atomic delete");
    let r = reg.call("DELETE", &uri, ADMIN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UNKNOWN");
}
