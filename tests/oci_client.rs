//! End to end with a third-party Rust client, the `oci-client` crate, over HTTPS with Basic
//! auth: image push and pull (chunked and monolithic blob uploads), tag listing, a
//! cross-repository mount and the referrers API.

#![cfg(feature = "backend-oci-http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod oci_common;

use common::Server;
use oci_client::client::{
    Certificate, CertificateEncoding, ClientConfig, ClientProtocol, Config, ImageLayer,
};
use oci_client::manifest::{IMAGE_LAYER_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_common::{ALICE, PULLER, seed_users};

fn client(ca_pem: &[u8], monolithic: bool) -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::Https,
        use_monolithic_push: monolithic,
        extra_root_certificates: vec![Certificate {
            encoding: CertificateEncoding::Pem,
            data: ca_pem.to_vec(),
        }],
        ..ClientConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_client_pushes_and_pulls_an_image() {
    // The crate is built without a bundled crypto provider; the test installs ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    seed_users(&dir.path().join("data"), false).await;
    let server = Server::start_env(dir.path(), "", &[]);
    let host = format!("localhost:{}", server.https.port());
    let alice = RegistryAuth::Basic(ALICE.0.into(), ALICE.1.into());
    let puller = RegistryAuth::Basic(PULLER.0.into(), PULLER.1.into());

    let layers = vec![
        ImageLayer::oci_v1(vec![7u8; 300_000], None),
        ImageLayer::oci_v1(b"second layer".to_vec(), None),
    ];
    let config = Config::oci_v1(br#"{"architecture":"amd64","os":"linux"}"#.to_vec(), None);
    for monolithic in [false, true] {
        let reference: Reference = format!("{host}/crate/app:mono-{monolithic}")
            .parse()
            .unwrap();
        let pusher = client(&server.ca_pem(), monolithic);
        let pushed = pusher
            .push(&reference, &layers, config.clone(), &alice, None)
            .await
            .unwrap();
        assert!(pushed.manifest_url.contains("/v2/crate/app/manifests/"));

        let pulled = client(&server.ca_pem(), false)
            .pull(&reference, &puller, vec![IMAGE_LAYER_MEDIA_TYPE])
            .await
            .unwrap();
        assert_eq!(pulled.layers.len(), 2);
        // oci-client downloads layers concurrently and returns them in completion order, so
        // the order is checked on the manifest the registry served and the content as a set.
        let served: Vec<String> = pulled
            .manifest
            .as_ref()
            .unwrap()
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .collect();
        let pushed_digests: Vec<String> = layers.iter().map(|l| l.sha256_digest()).collect();
        assert_eq!(served, pushed_digests);
        let mut got: Vec<&[u8]> = pulled.layers.iter().map(|l| l.data.as_ref()).collect();
        let mut want: Vec<&[u8]> = layers.iter().map(|l| l.data.as_ref()).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert!(
            got == want,
            "pulled layer content differs from what was pushed"
        );
        assert_eq!(pulled.config.data, config.data);
        assert!(pulled.digest.unwrap().starts_with("sha256:"));
    }

    let reader = client(&server.ca_pem(), false);
    let reference: Reference = format!("{host}/crate/app:mono-false").parse().unwrap();
    let tags = reader
        .list_tags(&reference, &puller, None, None)
        .await
        .unwrap();
    assert_eq!(tags.tags, ["mono-false", "mono-true"]);
    let page = reader
        .list_tags(&reference, &puller, Some(1), Some("mono-false"))
        .await
        .unwrap();
    assert_eq!(page.tags, ["mono-true"]);

    // A pull-only user cannot push.
    let denied = client(&server.ca_pem(), true)
        .push(
            &format!("{host}/crate/other:x").parse().unwrap(),
            &layers,
            config.clone(),
            &puller,
            None,
        )
        .await;
    assert!(denied.is_err());

    // Cross-repository mount, then a referrer (an artifact whose subject is the image).
    let writer = client(&server.ca_pem(), false);
    let copy: Reference = format!("{host}/crate/copy:v1").parse().unwrap();
    let layer_digest = layers[0].sha256_digest();
    writer
        .store_auth_if_needed(copy.resolve_registry(), &alice)
        .await;
    writer
        .mount_blob(&copy, &reference, &layer_digest)
        .await
        .unwrap();
    let (manifest, subject_digest) = writer.pull_manifest(&reference, &alice).await.unwrap();
    let subject_size = serde_json::to_vec(&manifest).unwrap().len();
    let empty = Config::new(
        b"{}".to_vec(),
        "application/vnd.oci.empty.v1+json".into(),
        None,
    );
    let sig_layer = ImageLayer::new(b"signature".to_vec(), "application/x.sig".into(), None);
    let mut sig_manifest = OciImageManifest::build(std::slice::from_ref(&sig_layer), &empty, None);
    sig_manifest.artifact_type = Some("application/x.sig".into());
    sig_manifest.subject = Some(OciDescriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: subject_digest.clone(),
        size: i64::try_from(subject_size).unwrap(),
        ..OciDescriptor::default()
    });
    let sig_ref: Reference = format!("{host}/crate/app:sig").parse().unwrap();
    writer
        .push(&sig_ref, &[sig_layer], empty, &alice, Some(sig_manifest))
        .await
        .unwrap();
    let subject_ref: Reference = format!("{host}/crate/app@{subject_digest}")
        .parse()
        .unwrap();
    let index = writer
        .pull_referrers(&subject_ref, Some("application/x.sig"))
        .await
        .unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(
        index.manifests[0].media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    let none = writer
        .pull_referrers(&subject_ref, Some("application/x.other"))
        .await
        .unwrap();
    assert!(none.manifests.is_empty(), "the artifactType filter applies");
}
