//! In-process router tests of every endpoint, the authorization rules, GC and a sweep of bad
//! input that must get spec errors and never a 5xx.
//!
//! One file per endpoint or concern; this one holds the shared fixture: [`Reg`], a registry
//! instance behind its router with three users (`admin`, `alice` a writer everywhere, `bob` a
//! reader of `team/*`), and [`Reply`], a collected answer. Every request through [`Reg::req`]
//! also checks the two things every answer must satisfy: never a 5xx, and the
//! `Docker-Distribution-API-Version` header.

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

mod auth;
mod bad_input;
mod blobs;
mod console;
mod deletes;
mod extras;
mod gc;
mod hardening;
mod listing;
mod manifests;
mod mirror;
mod props;
mod referrers;
mod retention;
mod settings;
mod token;
mod ui;
mod uploads;
mod webhooks;

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

    /// A request as `who` with no extra headers and no body.
    async fn call(&self, method: &str, uri: &str, who: (&str, &str)) -> Reply {
        self.req(method, uri, Some(who), &[], Body::empty()).await
    }

    /// Pushes `body` as an OCI image manifest to `/v2/<repo>/manifests/<reference>` as alice.
    async fn put_manifest(&self, repo: &str, reference: &str, body: impl Into<Body>) -> Reply {
        self.put_typed(repo, reference, OCI_MANIFEST, body).await
    }

    /// Pushes `body` with the given media type to `/v2/<repo>/manifests/<reference>` as alice.
    async fn put_typed(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: impl Into<Body>,
    ) -> Reply {
        let uri = format!("/v2/{repo}/manifests/{reference}");
        self.req(
            "PUT",
            &uri,
            Some(ALICE),
            &[("content-type", media_type)],
            body,
        )
        .await
    }

    /// Opens an upload session in `repo` as alice and returns its Location.
    async fn upload_session(&self, repo: &str) -> String {
        let uri = format!("/v2/{repo}/blobs/uploads/");
        let r = self.call("POST", &uri, ALICE).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
        r.header("location").to_owned()
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
