//! The referrers API: subjects that need not exist, the `artifactType` filter, and the
//! `OCI-Subject` header on push.

use super::*;

#[tokio::test]
async fn referrers_list_artifacts_by_subject_and_filter_by_type() {
    let reg = Reg::new().await;
    let (d1, m1) = reg.push_image("team/app", "v1", "one").await;
    let missing = format!("sha256:{}", "9".repeat(64));

    // Step 1: a signature of d1; the push answers OCI-Subject.
    let empty_cfg = reg.push_blob("team/app", b"{}").await;
    let mut sig = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_cfg, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": d1, "size": m1.len()},
        "annotations": {"who": "me"}
    });
    let r = reg.put_manifest("team/app", "sig", sig.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("oci-subject"), d1);
    let sig_digest = r.header("docker-content-digest").to_owned();

    // Step 2: an SBOM of a subject that does not exist is accepted.
    sig["artifactType"] = json!("application/x.sbom");
    sig["subject"]["digest"] = json!(missing);
    let r = reg.put_manifest("team/app", "sbom", sig.to_string()).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a missing subject is accepted"
    );

    // Step 3: the referrers of d1, whole and filtered.
    let r = reg
        .call("GET", &format!("/v2/team/app/referrers/{d1}"), BOB)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), OCI_INDEX);
    let list = r.json();
    assert_eq!(list["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(list["manifests"][0]["digest"], json!(sig_digest));
    assert_eq!(
        list["manifests"][0]["artifactType"],
        json!("application/x.sig")
    );
    assert_eq!(list["manifests"][0]["annotations"]["who"], json!("me"));
    let uri = format!("/v2/team/app/referrers/{d1}?artifactType=application/x.sbom");
    let r = reg.call("GET", &uri, BOB).await;
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    assert!(r.json()["manifests"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_subject_has_an_empty_index_never_404() {
    let reg = Reg::new().await;
    reg.push_image("team/app", "v1", "one").await;
    let uri = format!("/v2/team/app/referrers/sha256:{}", "1".repeat(64));
    let r = reg.call("GET", &uri, BOB).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "unknown subject: empty index, never 404"
    );
}
