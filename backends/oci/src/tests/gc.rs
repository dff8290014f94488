//! Garbage collection: the grace period, dry runs, untagged manifests, the console command,
//! and collection racing pushes.

use super::*;

/// Collection options with no grace period.
fn now(untagged: bool, dry_run: bool) -> crate::GcOptions {
    crate::GcOptions {
        untagged,
        dry_run,
        grace: Duration::ZERO,
    }
}

#[tokio::test]
async fn gc_collects_unreferenced_and_untagged_content_only() {
    let reg = Reg::new().await;
    let (d1, _) = reg.push_image("app", "v1", "one").await;
    let (d2, _) = reg.push_image("app", "v1", "two").await; // moves the tag: d1 is untagged
    let stray = reg.push_blob("app", b"never referenced").await;
    let stray_uri = format!("/v2/app/blobs/{stray}");
    let store = reg.store().await;

    // Step 1: within the grace period nothing is collected.
    let graced = crate::GcOptions {
        grace: Duration::from_secs(3600),
        ..now(false, false)
    };
    let report = crate::gc(&store, &graced).await.unwrap();
    assert_eq!(
        report,
        crate::GcReport::default(),
        "everything is within the grace period"
    );

    // Step 2: a dry run reports the stray blob and changes nothing.
    let report = crate::gc(&store, &now(false, true)).await.unwrap();
    assert_eq!(report.blobs, vec![stray.clone()]);
    let r = reg.call("HEAD", &stray_uri, ALICE).await;
    assert_eq!(r.status, StatusCode::OK, "a dry run changes nothing");

    // Step 3: a real run removes it.
    let report = crate::gc(&store, &now(false, false)).await.unwrap();
    assert_eq!(report.blobs, vec![stray.clone()]);
    let r = reg.call("HEAD", &stray_uri, ALICE).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Step 4: with `untagged`, the old image goes too, and the tagged one stays.
    let report = crate::gc(&store, &now(true, false)).await.unwrap();
    assert_eq!(report.manifests, vec![format!("app@{d1}")]);
    assert_eq!(report.blobs.len(), 2, "config and layer of the old image");
    for (reference, status) in [(d1.as_str(), 404), (d2.as_str(), 200), ("v1", 200)] {
        let r = reg
            .call("GET", &format!("/v2/app/manifests/{reference}"), ALICE)
            .await;
        assert_eq!(r.status.as_u16(), status, "{reference}");
    }
    let log = store.log(4).await.unwrap();
    assert!(log.iter().all(|c| c.principal == "system"));
}

#[tokio::test]
async fn the_gc_console_command_checks_the_callers_rights_and_flags() {
    let reg = Reg::new().await;
    let cmds = crate::build(
        reg.env.context(crate::KIND, "default", "localhost", "/v2"),
        &Default::default(),
    )
    .unwrap()
    .commands()
    .unwrap();
    let alice = Principal::test_user("alice");
    assert!(cmds.run(alice, "gc", vec![]).await.is_err());
    let admin = Principal::test_user("admin");
    let out = cmds
        .run(admin.clone(), "gc", vec!["--dry-run".into()])
        .await
        .unwrap();
    assert!(out.contains("dry run"), "{out}");
    assert!(cmds.run(admin, "gc", vec!["--bogus".into()]).await.is_err());
}

#[tokio::test]
async fn gc_racing_pushes_never_breaks_an_acknowledged_manifest() {
    let reg = Arc::new(Reg::new().await);
    let store = reg.store().await;
    // Blobs that exist but are unreferenced: the collector wants them, pushes reuse them.
    let mut blobs = Vec::new();
    for i in 0..6 {
        let data = format!("shared blob {i}").into_bytes();
        blobs.push((reg.push_blob("app", &data).await, data.len()));
    }
    let collector = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                crate::gc(&store, &now(false, false)).await.unwrap();
            }
        })
    };
    let mut acknowledged = Vec::new();
    for (i, pair) in blobs.windows(2).enumerate() {
        let [(cd, cs), (ld, ls)] = pair else {
            unreachable!()
        };
        let manifest = json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
        })
        .to_string();
        let r = reg.put_manifest("app", &format!("t{i}"), manifest).await;
        match r.status.as_u16() {
            201 => acknowledged.push((cd.clone(), ld.clone())),
            400 => assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN"),
            other => panic!("unexpected {other}"),
        }
        tokio::task::yield_now().await;
    }
    collector.await.unwrap();
    crate::gc(&store, &now(false, false)).await.unwrap();
    for (cd, ld) in acknowledged {
        for d in [cd, ld] {
            let r = reg.call("HEAD", &format!("/v2/app/blobs/{d}"), ALICE).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "blob {d} of an acknowledged manifest"
            );
        }
    }
}
