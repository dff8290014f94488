//! Distribution-spec main extras (issue #15 item 6): tags given as `?tag=` on a push by
//! digest, and a mount without `from` that finds the blob in any repository the caller may
//! read, and only there.

use super::*;

/// A minimal image manifest for blobs already pushed to `repo`.
async fn manifest_for(reg: &Reg, repo: &str) -> Vec<u8> {
    let config = b"{}".to_vec();
    let cd = reg.push_blob(repo, &config).await;
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": 2},
        "layers": [],
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_push_by_digest_with_tag_parameters_creates_each_tag_and_names_it() {
    let reg = Reg::new().await;
    let m = manifest_for(&reg, "team/app").await;
    let d = OciDigest::sha256_of(&m).to_string();
    let r = reg
        .put_manifest("team/app", &format!("{d}?tag=a&tag=b&tag=a"), m.clone())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let announced: Vec<&str> = r
        .headers
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(announced, ["a", "b"], "one OCI-Tag per tag, no duplicates");
    for tag in ["a", "b"] {
        let got = reg
            .call("GET", &format!("/v2/team/app/manifests/{tag}"), ALICE)
            .await;
        assert_eq!(got.status, StatusCode::OK, "{tag}");
        assert_eq!(&got.body[..], &m[..]);
    }
    let list = reg.call("GET", "/v2/team/app/tags/list", ALICE).await;
    assert_eq!(list.json()["tags"], json!(["a", "b"]));
    // The commit names the tags, so the history says what the push did.
    let log = reg.store().await.log(5).await.unwrap();
    assert!(log.iter().any(|c| c.message.contains("team/app:a,b")));
}

#[tokio::test]
async fn a_bad_tag_parameter_refuses_the_whole_push() {
    let reg = Reg::new().await;
    let m = manifest_for(&reg, "team/app").await;
    let d = OciDigest::sha256_of(&m).to_string();
    let r = reg
        .put_manifest("team/app", &format!("{d}?tag=ok&tag=-bad"), m.clone())
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let got = reg.call("GET", "/v2/team/app/manifests/ok", ALICE).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND, "nothing half-applied");
    let many: String = (0..101).map(|i| format!("tag=t{i}&")).collect();
    let r = reg
        .put_manifest("team/app", &format!("{d}?{many}"), m)
        .await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
}

#[tokio::test]
async fn a_mount_without_from_finds_only_blobs_the_caller_may_read() {
    let reg = Reg::new().await;
    let admin = Principal::test_user(ADMIN.0);
    let auth = &reg.env.auth;
    auth.add_user(&admin, "carol", "carol-pw").await.unwrap();
    auth.grant(&admin, "carol", "http/oci/default/carol", "writer")
        .await
        .unwrap();
    auth.grant(&admin, "carol", "http/oci/default/team", "reader")
        .await
        .unwrap();
    let carol = ("carol", "carol-pw");
    let readable = reg.push_blob("team/app", b"readable by carol").await;
    let secret = reg.push_blob("private/app", b"not for carol").await;

    let r = reg
        .call(
            "POST",
            &format!("/v2/carol/app/blobs/uploads/?mount={readable}"),
            carol,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("docker-content-digest"), readable);
    let got = reg
        .call("GET", &format!("/v2/carol/app/blobs/{readable}"), carol)
        .await;
    assert_eq!(&got.body[..], b"readable by carol");

    let r = reg
        .call(
            "POST",
            &format!("/v2/carol/app/blobs/uploads/?mount={secret}"),
            carol,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "never reveals private/app");
    assert!(r.header("location").contains("/blobs/uploads/"));
    let got = reg
        .call("HEAD", &format!("/v2/carol/app/blobs/{secret}"), carol)
        .await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    // A blob nobody holds is an ordinary upload as well.
    let none = format!("sha256:{}", "7".repeat(64));
    let r = reg
        .call(
            "POST",
            &format!("/v2/carol/app/blobs/uploads/?mount={none}"),
            carol,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}
