//! The console's content commands: `repos`, `tags`, `rm`, and `usage` with quotas.

use super::*;
use everlock_host::{CommandError, InstanceCommands};

/// The console commands of a second build of the same instance (same store).
fn commands(reg: &Reg, settings: &str) -> Arc<dyn InstanceCommands> {
    let table: everlock_host::toml::Table = settings.parse().unwrap();
    let ctx = reg.env.context(crate::KIND, "default", "localhost", "/v2");
    crate::build(ctx, &table).unwrap().commands().unwrap()
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn repos_and_tags_list_what_the_actor_may_read() {
    let reg = Reg::new().await;
    let (d1, _) = reg.push_image("team/app", "v1", "one").await;
    reg.push_image("team/app", "v2", "two").await;
    reg.push_image("private", "latest", "three").await;
    let c = commands(&reg, "");
    let admin = Principal::test_user(ADMIN.0);
    let bob = Principal::test_user(BOB.0);

    let out = c.run(admin.clone(), "repos", vec![]).await.unwrap();
    assert!(out.starts_with("REPOSITORY"), "{out}");
    assert!(out.contains("team/app  2  2"), "{out}");
    assert!(out.contains("private  1  1"), "{out}");
    // bob reads team/* only.
    let json = c.run(bob.clone(), "repos", words("--json")).await.unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(v[0]["repository"], "team/app");

    let json = c
        .run(bob.clone(), "tags", words("team/app --json"))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["tag"], "v1");
    assert_eq!(v[0]["digest"], d1.as_str());
    assert!(v[0]["pushed"].as_str().unwrap().ends_with('Z'), "{json}");
    let denied = c.run(bob.clone(), "tags", words("private")).await;
    assert!(matches!(denied, Err(CommandError::Denied(_))), "{denied:?}");
    let unknown = c.run(admin.clone(), "tags", words("nope")).await;
    // A repository that does not exist is `NotFound`, not a failure of the command.
    assert!(
        matches!(&unknown, Err(CommandError::NotFound(m)) if m == "repository nope not known"),
        "{unknown:?}"
    );
    for bad in ["", "a b", "--yaml x", "Bad_Name"] {
        let r = c.run(admin.clone(), "tags", words(bad)).await;
        assert!(matches!(r, Err(CommandError::Usage(_))), "{bad}: {r:?}");
    }
}

#[tokio::test]
async fn rm_needs_owner_and_removes_a_tag_or_a_manifest() {
    let reg = Reg::new().await;
    let (d1, _) = reg.push_image("team/app", "v1", "one").await;
    reg.push_image("team/app", "v2", "two").await;
    let c = commands(&reg, "");
    let admin = Principal::test_user(ADMIN.0);
    // bob is a reader, alice a writer: neither is an owner.
    for who in [BOB.0, ALICE.0] {
        let r = c
            .run(Principal::test_user(who), "rm", words("team/app:v2"))
            .await;
        assert!(matches!(r, Err(CommandError::Denied(_))), "{who}: {r:?}");
    }
    let out = c
        .run(admin.clone(), "rm", words("team/app:v2"))
        .await
        .unwrap();
    assert!(out.starts_with("removed tag team/app:v2"), "{out}");
    let r = reg.call("GET", "/v2/team/app/manifests/v2", ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let out = c
        .run(admin.clone(), "rm", vec![format!("team/app@{d1}")])
        .await
        .unwrap();
    assert!(out.contains("removed manifest"), "{out}");
    let r = reg.call("GET", "/v2/team/app/manifests/v1", ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "the tag went with it");
    let log = reg.store().await.log(1).await.unwrap();
    assert_eq!(log[0].principal, "admin");
    for bad in [
        "team/app",
        "team/app@sha256:zz",
        "team/app:bad tag",
        "x:y/z",
    ] {
        let r = c.run(admin.clone(), "rm", vec![bad.to_owned()]).await;
        assert!(matches!(r, Err(CommandError::Usage(_))), "{bad}: {r:?}");
    }
    // What is already gone is `NotFound`, with the message naming it.
    let gone = c.run(admin.clone(), "rm", words("team/app:v1")).await;
    assert!(
        matches!(&gone, Err(CommandError::NotFound(m)) if m == "no tag team/app:v1"),
        "{gone:?}"
    );
    let gone = c.run(admin, "rm", vec![format!("team/app@{d1}")]).await;
    assert!(
        matches!(&gone, Err(CommandError::NotFound(m)) if m.starts_with("no manifest team/app@")),
        "{gone:?}"
    );
}

#[tokio::test]
async fn quota_refuses_the_push_that_exceeds_it_and_usage_counts_shared_blobs_once() {
    // push_image pushes a config of ~16 bytes, a layer of ~1,300 bytes and a ~400-byte
    // manifest: one image fits in 2,500 bytes, two distinct ones do not.
    let settings = "[[quota]]\nrepositories = \"team/*\"\nbytes = 2500\n";
    let reg = Reg::with_settings(settings).await;
    reg.push_image("team/a", "v1", "one").await;
    // The same image in a second repository of the quota adds only its manifest.
    let (_, manifest) = reg.push_image("team/b", "v1", "one").await;
    let c = commands(&reg, settings);
    let admin = Principal::test_user(ADMIN.0);
    let json = c
        .run(admin.clone(), "usage", words("--json"))
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    let a = v["repositories"][0]["bytes"].as_u64().unwrap();
    let b = v["repositories"][1]["bytes"].as_u64().unwrap();
    assert_eq!(a, b, "{json}");
    let used = v["quotas"][0]["used"].as_u64().unwrap();
    assert_eq!(
        used,
        a + manifest.len() as u64,
        "shared blobs count once: {json}"
    );
    assert_eq!(v["quotas"][0]["limit"], 2500);

    // A different image's blobs upload, but its manifest would exceed the quota.
    let config = b"{\"seed\":\"two\"}".to_vec();
    let layer = "layer of two".repeat(100).into_bytes();
    let cd = reg.push_blob("team/a", &config).await;
    let ld = reg.push_blob("team/a", &layer).await;
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
    });
    let r = reg.put_manifest("team/a", "v2", m.to_string()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.code(), "DENIED");
    let message = r.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("quota exceeded for team/*: used ")
            && message.ends_with(" of 2500 bytes"),
        "{message}"
    );
    // Outside the quota's pattern the same push is fine.
    reg.push_blob("other", &config).await;
    reg.push_blob("other", &layer).await;
    let r = reg.put_manifest("other", "v2", m.to_string()).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Re-tagging an image already inside the quota adds nothing and is allowed.
    let r = reg.put_manifest("team/a", "again", manifest).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let out = c.run(admin, "usage", vec![]).await.unwrap();
    assert!(out.contains("QUOTA  USED  LIMIT\nteam/*"), "{out}");
    let denied = c.run(Principal::test_user(BOB.0), "usage", vec![]).await;
    assert!(matches!(denied, Err(CommandError::Denied(_))), "{denied:?}");
}
