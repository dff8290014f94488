//! Tag and catalog listings: sorting, paging with `n`/`last` and `Link`, and a catalog that
//! shows each caller only the repositories it may read.

use super::*;

#[tokio::test]
async fn tags_are_sorted_and_paged_with_link_headers() {
    let reg = Reg::new().await;
    // Pushed out of order, so the listing's sort shows.
    for tag in ["v2", "sig", "large", "v1", "sbom", "multi"] {
        reg.push_image("team/app", tag, tag).await;
    }
    let r = reg.call("GET", "/v2/team/app/tags/list", BOB).await;
    assert_eq!(
        r.json()["tags"],
        json!(["large", "multi", "sbom", "sig", "v1", "v2"])
    );
    let r = reg.call("GET", "/v2/team/app/tags/list?n=2", BOB).await;
    assert_eq!(r.json()["tags"], json!(["large", "multi"]));
    assert_eq!(
        r.header("link"),
        "</v2/team/app/tags/list?n=2&last=multi>; rel=\"next\""
    );
    let r = reg
        .call("GET", "/v2/team/app/tags/list?n=2&last=v1", BOB)
        .await;
    assert_eq!(r.json()["tags"], json!(["v2"]));
    assert_eq!(r.header("link"), "");
    let r = reg.call("GET", "/v2/team/app/tags/list?n=0", BOB).await;
    assert_eq!(r.json()["tags"], json!([]));
    assert_eq!(r.header("link"), "");
}

#[tokio::test]
async fn tags_of_an_unknown_repository_are_name_unknown() {
    let reg = Reg::new().await;
    let r = reg.call("GET", "/v2/team/none/tags/list", BOB).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn the_catalog_shows_only_readable_repositories_and_pages() {
    let reg = Reg::new().await;
    reg.push_image("team/app", "v1", "t").await;
    reg.push_image("private/app", "v1", "p").await;
    let r = reg.call("GET", "/v2/_catalog", BOB).await;
    assert_eq!(r.json()["repositories"], json!(["team/app"]));
    let r = reg.call("GET", "/v2/_catalog", ALICE).await;
    assert_eq!(r.json()["repositories"], json!(["private/app", "team/app"]));
    let r = reg.call("GET", "/v2/_catalog?n=1", ALICE).await;
    assert_eq!(r.json()["repositories"], json!(["private/app"]));
    assert_eq!(
        r.header("link"),
        "</v2/_catalog?n=1&last=private%2Fapp>; rel=\"next\""
    );
    // anon, once a reader of team/*, sees that part only.
    let admin = Principal::test_user(ADMIN.0);
    reg.env
        .auth
        .grant(&admin, "anon", "http/oci/default/team", "reader")
        .await
        .unwrap();
    let r = reg
        .req("GET", "/v2/_catalog", None, &[], Body::empty())
        .await;
    assert_eq!(r.json()["repositories"], json!(["team/app"]));
}
