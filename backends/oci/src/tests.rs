//! In-process router tests of every endpoint, the authorization rules, GC and a sweep of bad
//! input that must get spec errors and never a 5xx.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use everlock_host::auth::{AdminPassword, Principal};
use everlock_host::axum::Router;
use everlock_host::axum::body::{Body, Bytes};
use everlock_host::http::{HeaderMap, Method, Request, StatusCode};
use everlock_host::storage::Store;
use everlock_host::test_util::TestEnv;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::manifests::{OCI_INDEX, OCI_MANIFEST};
use crate::names::OciDigest;

mod hardening;
mod props;

const ADMIN: (&str, &str) = ("admin", "admin-pw");
const ALICE: (&str, &str) = ("alice", "alice-pw");
const BOB: (&str, &str) = ("bob", "bob-pw");

/// Method, URI, headers, body, expected status and expected error code.
type Case<'a> = (
    &'a str,
    String,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

struct Reg {
    env: TestEnv,
    router: Router,
}

impl Reg {
    async fn new() -> Reg {
        Self::with_settings("").await
    }

    async fn with_settings(settings: &str) -> Reg {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap(ADMIN.0, AdminPassword::Given(ADMIN.1.into()))
            .await
            .unwrap();
        let admin = Principal::test_user(ADMIN.0);
        for (login, pw) in [ALICE, BOB] {
            env.auth.add_user(&admin, login, pw).await.unwrap();
        }
        env.auth
            .grant(&admin, "alice", "http/oci/default", "writer")
            .await
            .unwrap();
        env.auth
            .grant(&admin, "bob", "http/oci/default/team", "reader")
            .await
            .unwrap();
        let router = Self::router(&env, settings);
        Reg { env, router }
    }

    fn router(env: &TestEnv, settings: &str) -> Router {
        let table: everlock_host::toml::Table = settings.parse().unwrap();
        let ctx = env.context(crate::KIND, "default", "localhost", "/v2");
        crate::build(ctx, &table).unwrap().http_router().unwrap()
    }

    async fn store(&self) -> Store {
        self.env.stores.open("oci-http-default").await.unwrap()
    }

    async fn req(
        &self,
        method: &str,
        uri: &str,
        who: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        if let Some((u, p)) = who {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            b = b.header("authorization", format!("Basic {token}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let response = self
            .router
            .clone()
            .oneshot(b.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            !status.is_server_error(),
            "{method} {uri} answered {status}: {body:?}"
        );
        assert_eq!(
            headers["docker-distribution-api-version"], "registry/2.0",
            "{method} {uri}"
        );
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = OciDigest::sha256_of(data).to_string();
        let r = self
            .req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                Some(ALICE),
                &[],
                data.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        d
    }

    /// Pushes a config and one layer, then a manifest for them under `tag`.
    async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (String, Vec<u8>) {
        let config = format!("{{\"seed\":\"{seed}\"}}").into_bytes();
        let layer = format!("layer of {seed}").repeat(100).into_bytes();
        let cd = self.push_blob(repo, &config).await;
        let ld = self.push_blob(repo, &layer).await;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        let r = self
            .req(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                Some(ALICE),
                &[("content-type", OCI_MANIFEST)],
                manifest.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let d = OciDigest::sha256_of(&manifest).to_string();
        assert_eq!(r.header("docker-content-digest"), d);
        (d, manifest)
    }
}

#[tokio::test]
async fn ping_challenges_anonymous_callers_and_accepts_users() {
    let reg = Reg::new().await;
    let r = reg.req("GET", "/v2/", None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .starts_with("Basic realm=\"everlock\"")
    );
    assert_eq!(r.code(), "UNAUTHORIZED");
    // containers/image sends empty credentials when anonymous: still a challenge, no failure.
    let r = reg
        .req(
            "GET",
            "/v2/",
            None,
            &[("authorization", "Basic Og==")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = reg
        .req("GET", "/v2/", Some(ALICE), &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({}));
    let r = reg.req("GET", "/v2", Some(BOB), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg
        .req("GET", "/v2/", Some(("alice", "wrong")), &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "UNAUTHORIZED");
    let r = reg
        .req(
            "GET",
            "/v2/",
            None,
            &[("authorization", "Bearer x")],
            Body::empty(),
        )
        .await;
    assert!(r.status.is_client_error());
}

#[tokio::test]
async fn repeated_bad_passwords_are_throttled_with_retry_after() {
    let reg = Reg::new().await;
    for _ in 0..6 {
        let r = reg
            .req("GET", "/v2/", Some(("bob", "wrong")), &[], Body::empty())
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = reg.req("GET", "/v2/", Some(BOB), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "TOOMANYREQUESTS");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn every_upload_style_and_blob_reads() {
    let reg = Reg::new().await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = OciDigest::sha256_of(&data).to_string();

    // 1. Single POST.
    reg.push_blob("a", &data).await;
    let r = reg
        .req(
            "HEAD",
            &format!("/v2/a/blobs/{d}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-length"),
        "3000",
        "HEAD keeps the real length"
    );
    assert_eq!(r.header("docker-content-digest"), d);
    assert!(r.body.is_empty());
    let r = reg
        .req(
            "GET",
            &format!("/v2/a/blobs/{d}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &data[..]);
    for (range, status, want) in [
        ("bytes=500-1499", 206, Some((500, 1499))),
        ("bytes=500-", 206, Some((500, 2999))),
        ("bytes=-500", 206, Some((2500, 2999))),
        ("bytes=2000-5000", 206, Some((2000, 2999))),
        ("bytes=500-0", 416, None),
        ("bytes=5000-10000", 416, None),
    ] {
        let r = reg
            .req(
                "GET",
                &format!("/v2/a/blobs/{d}"),
                Some(ALICE),
                &[("range", range)],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{range}");
        if let Some((a, b)) = want {
            assert_eq!(&r.body[..], &data[a..=b], "{range}");
            assert_eq!(r.header("content-range"), format!("bytes {a}-{b}/3000"));
            assert_eq!(r.header("content-length"), (b - a + 1).to_string());
        }
    }

    // 2. POST + monolithic PUT (containerd).
    let other = b"monolithic".to_vec();
    let od = OciDigest::sha256_of(&other).to_string();
    let r = reg
        .req(
            "POST",
            "/v2/b/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
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
            other.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("location"), format!("/v2/b/blobs/{od}"));
    assert_eq!(r.header("docker-content-digest"), od);

    // 3. Chunked with Content-Range, with stale Locations and out-of-order chunks.
    let r = reg
        .req(
            "POST",
            "/v2/c/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let loc = r.header("location").to_owned();
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "0-999")],
            data[..1000].to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-999");
    assert_eq!(r.header("location"), loc, "earlier Locations stay valid");
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "0-999")],
            data[..1000].to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(r.header("range"), "0-999");
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "1500-1999")],
            data[1500..2000].to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = reg.req("GET", &loc, Some(ALICE), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), "0-999");
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "1000-1999")],
            data[1000..2000].to_vec(),
        )
        .await;
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
    let r = reg.req("GET", &loc, Some(ALICE), &[], Body::empty()).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a finished session is gone"
    );
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");

    // 4. One streamed PATCH without Content-Range, then an empty PUT (skopeo, podman).
    let r = reg
        .req(
            "POST",
            "/v2/d/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let loc = r.header("location").to_owned();
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
    let r = reg
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = reg
        .req(
            "GET",
            &format!("/v2/d/blobs/{d}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(&r.body[..], &data[..]);

    // 5. A wrong digest discards the data; cancel gives 204.
    let r = reg
        .req(
            "POST",
            "/v2/e/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let loc = r.header("location").to_owned();
    let r = reg
        .req(
            "PUT",
            &format!("{loc}?digest={od}"),
            Some(ALICE),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = reg.req("GET", &loc, Some(ALICE), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = reg
        .req(
            "HEAD",
            &format!("/v2/e/blobs/{od}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = reg
        .req(
            "POST",
            "/v2/e/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let loc = r.header("location").to_owned();
    let r = reg
        .req("DELETE", &loc, Some(ALICE), &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = reg
        .req("DELETE", &loc, Some(ALICE), &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A session belongs to its repository.
    let r = reg
        .req(
            "POST",
            "/v2/e/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let id = r.header("location").rsplit('/').next().unwrap().to_owned();
    let r = reg
        .req(
            "GET",
            &format!("/v2/other/blobs/uploads/{id}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // 6. sha512, verified and served under its own digest.
    let d512 = OciDigest::of(crate::names::Algorithm::Sha512, &data).to_string();
    let r = reg
        .req(
            "POST",
            "/v2/f/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let loc = r.header("location").to_owned();
    reg.req("PATCH", &loc, Some(ALICE), &[], data.clone()).await;
    let r = reg
        .req(
            "PUT",
            &format!("{loc}?digest={d512}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("docker-content-digest"), d512);
    let r = reg
        .req(
            "GET",
            &format!("/v2/f/blobs/{d512}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(&r.body[..], &data[..]);

    // 7. Blob delete.
    let r = reg
        .req(
            "DELETE",
            &format!("/v2/a/blobs/{d}"),
            Some(ADMIN),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = reg
        .req(
            "HEAD",
            &format!("/v2/a/blobs/{d}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "atomic delete");
    let r = reg
        .req(
            "DELETE",
            &format!("/v2/a/blobs/{d}"),
            Some(ADMIN),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn manifests_tags_referrers_and_deletes() {
    let reg = Reg::new().await;
    let (d1, m1) = reg.push_image("team/app", "v1", "one").await;
    let (d2, _) = reg.push_image("team/app", "v2", "two").await;
    let r = reg
        .req(
            "GET",
            "/v2/team/app/manifests/v1",
            Some(BOB),
            &[("accept", OCI_MANIFEST), ("accept", OCI_INDEX)],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &m1[..], "exact bytes");
    assert_eq!(r.header("content-type"), OCI_MANIFEST);
    assert_eq!(r.header("docker-content-digest"), d1);
    let r = reg
        .req(
            "HEAD",
            &format!("/v2/team/app/manifests/{d1}"),
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), m1.len().to_string());
    assert_eq!(r.header("content-type"), OCI_MANIFEST);

    // Every push is a commit recording the principal.
    let log = reg.store().await.log(100).await.unwrap();
    assert!(
        log.iter()
            .any(|c| c.principal == "alice" && c.message.contains("team/app:v1"))
    );

    // A multi-arch index over both, and an index naming a missing manifest.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d1, "size": m1.len(), "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": d2, "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
    ]}).to_string();
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/multi",
            Some(ALICE),
            &[("content-type", OCI_INDEX)],
            index.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let missing = format!("sha256:{}", "9".repeat(64));
    let bad_index = index.replace(&d2, &missing);
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/bad",
            Some(ALICE),
            &[("content-type", OCI_INDEX)],
            bad_index,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");

    // Missing layers, wrong digest reference, oversize.
    let unknown_layer = String::from_utf8(m1.clone())
        .unwrap()
        .replace("\"schemaVersion\"", "\"x\":1,\"schemaVersion\"");
    let unknown_layer = unknown_layer.replace(&d1, &missing);
    let manifest: Value = serde_json::from_slice(&m1).unwrap();
    let mut broken = manifest.clone();
    broken["layers"][0]["digest"] = json!(missing);
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/broken",
            Some(ALICE),
            &[("content-type", OCI_MANIFEST)],
            broken.to_string(),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    let r = reg
        .req(
            "PUT",
            &format!("/v2/team/app/manifests/{missing}"),
            Some(ALICE),
            &[("content-type", OCI_MANIFEST)],
            unknown_layer,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = reg
        .req(
            "PUT",
            &format!("/v2/team/app/manifests/{d1}"),
            Some(ALICE),
            &[("content-type", OCI_MANIFEST)],
            m1.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "push by digest");
    let huge = vec![b' '; 8 * 1024 * 1024 + 1];
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/huge",
            Some(ALICE),
            &[("content-type", OCI_MANIFEST)],
            huge,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A ~3.9 MB manifest (the main suite's large-manifest) is accepted.
    let mut large = manifest.clone();
    large["annotations"] = json!({"pad": "x".repeat(3_900_000)});
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/large",
            Some(ALICE),
            &[("content-type", OCI_MANIFEST)],
            large.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Referrers: a subject that need not exist, artifactType filter, OCI-Subject.
    let empty_cfg = reg.push_blob("team/app", b"{}").await;
    let mut sig = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty_cfg, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": d1, "size": m1.len()},
        "annotations": {"who": "me"}
    });
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/sig",
            Some(ALICE),
            &[("content-type", OCI_MANIFEST)],
            sig.to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("oci-subject"), d1);
    let sig_digest = r.header("docker-content-digest").to_owned();
    sig["artifactType"] = json!("application/x.sbom");
    sig["subject"]["digest"] = json!(missing);
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/sbom",
            Some(ALICE),
            &[("content-type", OCI_MANIFEST)],
            sig.to_string(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a missing subject is accepted"
    );
    let r = reg
        .req(
            "GET",
            &format!("/v2/team/app/referrers/{d1}"),
            Some(BOB),
            &[],
            Body::empty(),
        )
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
    let r = reg
        .req(
            "GET",
            &format!("/v2/team/app/referrers/{d1}?artifactType=application/x.sbom"),
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    assert!(r.json()["manifests"].as_array().unwrap().is_empty());
    let r = reg
        .req(
            "GET",
            &format!("/v2/team/app/referrers/sha256:{}", "1".repeat(64)),
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "unknown subject: empty index, never 404"
    );

    // Tag list with paging.
    let r = reg
        .req(
            "GET",
            "/v2/team/app/tags/list",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.json()["tags"],
        json!(["large", "multi", "sbom", "sig", "v1", "v2"])
    );
    let r = reg
        .req(
            "GET",
            "/v2/team/app/tags/list?n=2",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.json()["tags"], json!(["large", "multi"]));
    assert_eq!(
        r.header("link"),
        "</v2/team/app/tags/list?n=2&last=multi>; rel=\"next\""
    );
    let r = reg
        .req(
            "GET",
            "/v2/team/app/tags/list?n=2&last=v1",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.json()["tags"], json!(["v2"]));
    assert_eq!(r.header("link"), "");
    let r = reg
        .req(
            "GET",
            "/v2/team/app/tags/list?n=0",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.json()["tags"], json!([]));
    assert_eq!(r.header("link"), "");
    let r = reg
        .req(
            "GET",
            "/v2/team/none/tags/list",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "NAME_UNKNOWN");

    // Deletes: a tag, then a manifest by digest with every tag pointing at it.
    let r = reg
        .req(
            "DELETE",
            "/v2/team/app/manifests/v2",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "writers may not delete");
    assert_eq!(r.code(), "DENIED");
    let r = reg
        .req(
            "DELETE",
            "/v2/team/app/manifests/v2",
            Some(ADMIN),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = reg
        .req(
            "HEAD",
            "/v2/team/app/manifests/v2",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = reg
        .req(
            "GET",
            &format!("/v2/team/app/manifests/{d2}"),
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "deleting a tag keeps the manifest"
    );
    reg.req(
        "PUT",
        "/v2/team/app/manifests/alias",
        Some(ALICE),
        &[("content-type", OCI_MANIFEST)],
        m1.clone(),
    )
    .await;
    let r = reg
        .req(
            "DELETE",
            &format!("/v2/team/app/manifests/{d1}"),
            Some(ADMIN),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    for reference in ["v1", "alias", d1.as_str()] {
        let r = reg
            .req(
                "GET",
                &format!("/v2/team/app/manifests/{reference}"),
                Some(BOB),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{reference}");
        assert_eq!(r.code(), "MANIFEST_UNKNOWN");
    }
    let r = reg
        .req(
            "DELETE",
            &format!("/v2/team/app/manifests/{d1}"),
            Some(ADMIN),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn authorization_per_repository_anon_and_mounts() {
    let reg = Reg::new().await;
    reg.push_image("team/app", "v1", "t").await;
    reg.push_image("private/app", "v1", "p").await;
    let secret = reg.push_blob("private/app", b"secret layer").await;

    // bob reads team/*, nothing else, and may not push.
    let r = reg
        .req(
            "GET",
            "/v2/team/app/manifests/v1",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg
        .req(
            "GET",
            "/v2/private/app/manifests/v1",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "DENIED");
    let r = reg
        .req(
            "POST",
            "/v2/team/app/blobs/uploads/",
            Some(BOB),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = reg
        .req(
            "PUT",
            "/v2/team/app/manifests/x",
            Some(BOB),
            &[("content-type", OCI_MANIFEST)],
            "{}",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Anonymous: 401 with a challenge, until anon holds reader.
    let r = reg
        .req("GET", "/v2/team/app/manifests/v1", None, &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Basic"));
    let r = reg
        .req("GET", "/v2/_catalog", Some(BOB), &[], Body::empty())
        .await;
    assert_eq!(r.json()["repositories"], json!(["team/app"]));
    let r = reg
        .req("GET", "/v2/_catalog", Some(ALICE), &[], Body::empty())
        .await;
    assert_eq!(r.json()["repositories"], json!(["private/app", "team/app"]));
    let r = reg
        .req("GET", "/v2/_catalog?n=1", Some(ALICE), &[], Body::empty())
        .await;
    assert_eq!(r.json()["repositories"], json!(["private/app"]));
    assert_eq!(
        r.header("link"),
        "</v2/_catalog?n=1&last=private%2Fapp>; rel=\"next\""
    );
    let admin = Principal::test_user(ADMIN.0);
    reg.env
        .auth
        .grant(&admin, "anon", "http/oci/default/team", "reader")
        .await
        .unwrap();
    let r = reg
        .req("GET", "/v2/team/app/manifests/v1", None, &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg
        .req(
            "GET",
            "/v2/team/app/manifests/v1",
            None,
            &[("authorization", "Basic Og==")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg
        .req(
            "GET",
            "/v2/private/app/manifests/v1",
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = reg
        .req("GET", "/v2/_catalog", None, &[], Body::empty())
        .await;
    assert_eq!(r.json()["repositories"], json!(["team/app"]));
    let r = reg
        .req(
            "POST",
            "/v2/team/app/blobs/uploads/",
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "anon may not push");

    // A blob of one repository is not readable through another.
    let r = reg
        .req(
            "GET",
            &format!("/v2/team/app/blobs/{secret}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UNKNOWN");
    // Mount: 201 when the caller may read the source, 202 (a normal upload) otherwise.
    reg.env
        .auth
        .grant(&admin, "bob", "http/oci/default/team/bob", "writer")
        .await
        .unwrap();
    let r = reg
        .req(
            "POST",
            &format!("/v2/team/bob/blobs/uploads/?mount={secret}&from=private/app"),
            Some(BOB),
            &[],
            Body::empty(),
        )
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
    let r = reg
        .req(
            "POST",
            &format!("/v2/team/copy/blobs/uploads/?mount={secret}&from=private/app"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), secret);
    let r = reg
        .req(
            "GET",
            &format!("/v2/team/copy/blobs/{secret}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(&r.body[..], b"secret layer");
    let missing = format!("sha256:{}", "4".repeat(64));
    let r = reg
        .req(
            "POST",
            &format!("/v2/team/copy/blobs/uploads/?mount={missing}&from=private/app"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "never 201 for a missing blob"
    );
}

#[tokio::test]
async fn bad_input_gets_spec_errors_never_5xx() {
    let reg = Reg::with_settings("").await;
    let blob = reg.push_blob("r", b"abc").await;
    let r = reg
        .req(
            "POST",
            "/v2/r/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let loc = r.header("location").to_owned();
    reg.req(
        "PATCH",
        &loc,
        Some(ALICE),
        &[("content-range", "0-1")],
        "ab",
    )
    .await;
    let upper = format!("sha256:{}", "A".repeat(64));
    let short = "sha256:abc".to_owned();
    let cases: Vec<Case<'_>> = vec![
        (
            "GET",
            "/v2/UPPER/tags/list".into(),
            vec![],
            vec![],
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/a..b/manifests/x".into(),
            vec![],
            vec![],
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/a//b/manifests/x".into(),
            vec![],
            vec![],
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            format!("/v2/{}/manifests/x", "a".repeat(300)),
            vec![],
            vec![],
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/-a/blobs/uploads/".into(),
            vec![],
            vec![],
            400,
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/r/manifests/.INVALID_MANIFEST_NAME".into(),
            vec![],
            vec![],
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "GET",
            "/v2/r/manifests/sha256:totallywrong".into(),
            vec![],
            vec![],
            400,
            "DIGEST_INVALID",
        ),
        (
            "HEAD",
            "/v2/r/manifests/sha256:totallywrong".into(),
            vec![],
            vec![],
            404,
            "",
        ),
        (
            "GET",
            format!("/v2/r/manifests/{upper}"),
            vec![],
            vec![],
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            "/v2/r/manifests/nosuchtag".into(),
            vec![],
            vec![],
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            "GET",
            format!("/v2/r/blobs/{short}"),
            vec![],
            vec![],
            400,
            "DIGEST_INVALID",
        ),
        (
            "HEAD",
            format!("/v2/r/blobs/{short}"),
            vec![],
            vec![],
            404,
            "",
        ),
        (
            "GET",
            "/v2/r/blobs/md5:abcdef".into(),
            vec![],
            vec![],
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            format!("/v2/r/blobs/sha256:{}", "0".repeat(64)),
            vec![],
            vec![],
            404,
            "BLOB_UNKNOWN",
        ),
        (
            "GET",
            format!("/v2/r/blobs/{blob}"),
            vec![("range", "bytes=9-3")],
            vec![],
            416,
            "BLOB_UNKNOWN",
        ),
        (
            "GET",
            "/v2/r/referrers/sha256:zz".into(),
            vec![],
            vec![],
            400,
            "DIGEST_INVALID",
        ),
        (
            "GET",
            "/v2/r/tags/list?n=abc".into(),
            vec![],
            vec![],
            400,
            "UNSUPPORTED",
        ),
        (
            "GET",
            "/v2/r/tags/list?n=-1".into(),
            vec![],
            vec![],
            400,
            "UNSUPPORTED",
        ),
        (
            "PUT",
            "/v2/r/manifests/bad:tag:x".into(),
            vec![],
            b"{}".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "PUT",
            "/v2/r/manifests/.bad".into(),
            vec![],
            b"{}".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "PUT",
            "/v2/r/manifests/t".into(),
            vec![],
            b"not json".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "PUT",
            "/v2/r/manifests/t".into(),
            vec![],
            b"{\"schemaVersion\":1,\"fsLayers\":[]}".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "PUT",
            "/v2/r/manifests/t".into(),
            vec![("content-type", OCI_MANIFEST)],
            b"{\"schemaVersion\":2,\"config\":{\"digest\":\"x\"}}".to_vec(),
            400,
            "MANIFEST_INVALID",
        ),
        (
            "PUT",
            "/v2/r/manifests/t".into(),
            vec![("content-length", "99999999999")],
            vec![],
            413,
            "SIZE_INVALID",
        ),
        (
            "PUT",
            "/v2/r/manifests/md5:00".into(),
            vec![],
            b"{}".to_vec(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "POST",
            "/v2/r/blobs/uploads/?digest=sha256:nothex".into(),
            vec![],
            b"abc".to_vec(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "POST",
            format!("/v2/r/blobs/uploads/?digest=sha256:{}", "0".repeat(64)),
            vec![],
            b"abc".to_vec(),
            400,
            "DIGEST_INVALID",
        ),
        (
            "POST",
            "/v2/r/blobs/uploads/?mount=garbage&from=A".into(),
            vec![],
            vec![],
            202,
            "",
        ),
        (
            "PATCH",
            loc.clone(),
            vec![("content-range", "garbage")],
            b"c".to_vec(),
            416,
            "BLOB_UPLOAD_INVALID",
        ),
        (
            "PATCH",
            loc.clone(),
            vec![("content-range", "5-2")],
            b"c".to_vec(),
            416,
            "BLOB_UPLOAD_INVALID",
        ),
        (
            "PATCH",
            loc.clone(),
            vec![("content-range", "bytes=0-0")],
            b"c".to_vec(),
            416,
            "BLOB_UPLOAD_INVALID",
        ),
        (
            "PATCH",
            loc.clone(),
            vec![("content-range", "2-4")],
            b"cd".to_vec(),
            400,
            "BLOB_UPLOAD_INVALID",
        ),
        (
            "PATCH",
            loc.clone(),
            vec![("content-range", "2-3"), ("content-length", "5")],
            b"cd".to_vec(),
            400,
            "SIZE_INVALID",
        ),
        (
            "PATCH",
            loc.clone(),
            vec![("content-length", "x")],
            b"cd".to_vec(),
            400,
            "SIZE_INVALID",
        ),
        ("PUT", loc.clone(), vec![], vec![], 400, "DIGEST_INVALID"),
        (
            "PUT",
            format!("{loc}?digest=sha256:xyz"),
            vec![],
            vec![],
            400,
            "DIGEST_INVALID",
        ),
        (
            "PATCH",
            "/v2/r/blobs/uploads/0123456789abcdef0123456789abcdef".into(),
            vec![],
            b"x".to_vec(),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "GET",
            "/v2/r/blobs/uploads/../../etc/passwd".into(),
            vec![],
            vec![],
            404,
            "NAME_UNKNOWN",
        ),
        (
            "GET",
            "/v2/r/blobs/uploads/%2e%2e".into(),
            vec![],
            vec![],
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "DELETE",
            "/v2/r/blobs/uploads/nope".into(),
            vec![],
            vec![],
            404,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            "GET",
            "/v2/r/unknown/thing".into(),
            vec![],
            vec![],
            404,
            "NAME_UNKNOWN",
        ),
        (
            "POST",
            "/v2/r/manifests/x".into(),
            vec![],
            vec![],
            405,
            "UNSUPPORTED",
        ),
        ("GET", "/v3/".into(), vec![], vec![], 404, "NAME_UNKNOWN"),
        (
            "GET",
            "/v2/".into(),
            vec![("authorization", "Basic !!!")],
            vec![],
            400,
            "UNAUTHORIZED",
        ),
    ];
    for (method, uri, headers, body, status, code) in cases {
        let r = reg.req(method, &uri, Some(ALICE), &headers, body).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{method} {uri} {headers:?}: {:?}",
            r.body
        );
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{method} {uri}");
            assert_eq!(r.header("content-type"), "application/json");
        }
    }
    // After all that, the chunk session is intact at its last good offset.
    let r = reg.req("GET", &loc, Some(ALICE), &[], Body::empty()).await;
    assert_eq!(r.header("range"), "0-1");

    // A truncated body fails the upload with a client error and leaves the offset alone.
    let broken = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"cd")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "2-5")],
            Body::from_stream(broken),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    let short_body =
        futures_util::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"c"))]);
    let r = reg
        .req(
            "PATCH",
            &loc,
            Some(ALICE),
            &[("content-range", "2-5")],
            Body::from_stream(short_body),
        )
        .await;
    assert_eq!(
        r.code(),
        "BLOB_UPLOAD_INVALID",
        "body shorter than its Content-Range"
    );
    let r = reg.req("GET", &loc, Some(ALICE), &[], Body::empty()).await;
    assert_eq!(r.header("range"), "0-1");
    let r = reg
        .req(
            "PUT",
            &format!("{loc}?digest={blob}"),
            Some(ALICE),
            &[("content-range", "2-2")],
            "c",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "the session still finishes");
    let broken = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("reset")),
    ]);
    let r = reg
        .req(
            "POST",
            &format!("/v2/r/blobs/uploads/?digest={blob}"),
            Some(ALICE),
            &[],
            Body::from_stream(broken),
        )
        .await;
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    let broken = futures_util::stream::iter(vec![Err::<Bytes, _>(std::io::Error::other("reset"))]);
    let r = reg
        .req(
            "PUT",
            "/v2/r/manifests/t",
            Some(ALICE),
            &[],
            Body::from_stream(broken),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
}

#[tokio::test]
async fn sessions_survive_a_rebuild_and_expire() {
    let reg = Reg::with_settings("upload-expiry-secs = 1").await;
    let r = reg
        .req(
            "POST",
            "/v2/r/blobs/uploads/",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    let loc = r.header("location").to_owned();
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
    let r = reg.req("GET", &loc, Some(ALICE), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "expired");
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    // The next upload start sweeps expired sessions and their data.
    reg.req(
        "POST",
        "/v2/r/blobs/uploads/",
        Some(ALICE),
        &[],
        Body::empty(),
    )
    .await;
    let store = reg.store().await;
    assert_eq!(store.uploads().await.unwrap().len(), 1);
}

#[tokio::test]
async fn gc_collects_unreferenced_and_untagged_content_only() {
    let reg = Reg::new().await;
    let (d1, _) = reg.push_image("app", "v1", "one").await;
    let (d2, _) = reg.push_image("app", "v1", "two").await; // moves the tag: d1 is untagged
    let stray = reg.push_blob("app", b"never referenced").await;
    let store = reg.store().await;
    let opts = crate::GcOptions {
        untagged: false,
        dry_run: false,
        grace: Duration::from_secs(3600),
    };
    let report = crate::gc(&store, &opts).await.unwrap();
    assert_eq!(
        report,
        crate::GcReport::default(),
        "everything is within the grace period"
    );
    let now = crate::GcOptions {
        grace: Duration::ZERO,
        dry_run: true,
        ..opts.clone()
    };
    let report = crate::gc(&store, &now).await.unwrap();
    assert_eq!(report.blobs, vec![stray.clone()]);
    let r = reg
        .req(
            "HEAD",
            &format!("/v2/app/blobs/{stray}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "a dry run changes nothing");
    let report = crate::gc(
        &store,
        &crate::GcOptions {
            dry_run: false,
            ..now.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.blobs, vec![stray.clone()]);
    let r = reg
        .req(
            "HEAD",
            &format!("/v2/app/blobs/{stray}"),
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let untagged = crate::GcOptions {
        untagged: true,
        dry_run: false,
        grace: Duration::ZERO,
    };
    let report = crate::gc(&store, &untagged).await.unwrap();
    assert_eq!(report.manifests, vec![format!("app@{d1}")]);
    assert_eq!(report.blobs.len(), 2, "config and layer of the old image");
    for (reference, status) in [(d1.as_str(), 404), (d2.as_str(), 200), ("v1", 200)] {
        let r = reg
            .req(
                "GET",
                &format!("/v2/app/manifests/{reference}"),
                Some(ALICE),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{reference}");
    }
    let log = store.log(4).await.unwrap();
    assert!(log.iter().all(|c| c.principal == "system"));

    // The console command runs the same collection and checks the caller's rights.
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
            let opts = crate::GcOptions {
                untagged: false,
                dry_run: false,
                grace: Duration::ZERO,
            };
            for _ in 0..20 {
                crate::gc(&store, &opts).await.unwrap();
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
        let r = reg
            .req(
                "PUT",
                &format!("/v2/app/manifests/t{i}"),
                Some(ALICE),
                &[("content-type", OCI_MANIFEST)],
                manifest,
            )
            .await;
        match r.status.as_u16() {
            201 => acknowledged.push((cd.clone(), ld.clone())),
            400 => assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN"),
            other => panic!("unexpected {other}"),
        }
        tokio::task::yield_now().await;
    }
    collector.await.unwrap();
    let opts = crate::GcOptions {
        untagged: false,
        dry_run: false,
        grace: Duration::ZERO,
    };
    crate::gc(&store, &opts).await.unwrap();
    for (cd, ld) in acknowledged {
        for d in [cd, ld] {
            let r = reg
                .req(
                    "HEAD",
                    &format!("/v2/app/blobs/{d}"),
                    Some(ALICE),
                    &[],
                    Body::empty(),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "blob {d} of an acknowledged manifest"
            );
        }
    }
}

#[test]
fn settings_are_strict_and_the_example_parses() {
    let example: everlock_host::toml::Table = crate::settings::EXAMPLE_SETTINGS.parse().unwrap();
    assert!(crate::check(&example).is_ok());
    for bad in [
        "nope = 1",
        "upload-expiry-secs = 0",
        "max-manifest-bytes = 10",
    ] {
        let t: everlock_host::toml::Table = bad.parse().unwrap();
        assert!(crate::check(&t).is_err(), "{bad}");
    }
    let d = crate::default_instances();
    assert_eq!(
        (d[0].name, d[0].prefix, d[0].store),
        ("default", "/v2", "everlock-oci-local")
    );
}
