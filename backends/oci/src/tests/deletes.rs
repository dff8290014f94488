//! Deleting tags and manifests: who may, and what a delete takes with it.

use super::*;

#[tokio::test]
async fn writers_may_not_delete() {
    let reg = Reg::new().await;
    reg.push_image("team/app", "v2", "two").await;
    let r = reg.call("DELETE", "/v2/team/app/manifests/v2", ALICE).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "writers may not delete");
    assert_eq!(r.code(), "DENIED");
}

#[tokio::test]
async fn deleting_a_tag_keeps_the_manifest() {
    let reg = Reg::new().await;
    let (d2, _) = reg.push_image("team/app", "v2", "two").await;
    let r = reg.call("DELETE", "/v2/team/app/manifests/v2", ADMIN).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = reg.call("HEAD", "/v2/team/app/manifests/v2", BOB).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = reg
        .call("GET", &format!("/v2/team/app/manifests/{d2}"), BOB)
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "deleting a tag keeps the manifest"
    );
}

#[tokio::test]
async fn deleting_a_manifest_removes_every_tag_pointing_at_it() {
    let reg = Reg::new().await;
    let (d1, m1) = reg.push_image("team/app", "v1", "one").await;
    reg.put_manifest("team/app", "alias", m1).await;
    let by_digest = format!("/v2/team/app/manifests/{d1}");
    let r = reg.call("DELETE", &by_digest, ADMIN).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    for reference in ["v1", "alias", d1.as_str()] {
        let r = reg
            .call("GET", &format!("/v2/team/app/manifests/{reference}"), BOB)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{reference}");
        assert_eq!(r.code(), "MANIFEST_UNKNOWN");
    }
    let r = reg.call("DELETE", &by_digest, ADMIN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
