//! `hello-http`: a tiny backend written the way a third party would write one.
//!
//! It depends only on `everlock-host` and registers itself with `register_backend!`; the host
//! never names it. It proves the plugin contract end to end (settings parsed strictly,
//! zero-config instances, routing under a path prefix, streaming request bodies) and serves
//! the zero-config welcome page until the site backend takes that over.
//!
//! # Routes (relative to the instance's prefix)
//! - `GET /`: a plain-text greeting naming the instance.
//! - `POST /echo`: streams the request body and answers with its length and sha256, without
//!   buffering it.

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use everlock_host::axum::Router;
use everlock_host::axum::body::Body;
use everlock_host::axum::extract::State;
use everlock_host::axum::http::StatusCode;
use everlock_host::axum::routing::{get, post};
use everlock_host::{
    Backend, BackendContext, BackendFactory, BuildError, DefaultInstance, Frontend, parse_settings,
    register_backend,
};
use http_body_util::BodyExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The kind name.
pub const KIND: &str = "hello-http";

/// Settings of one instance (`[backends.hello-http.instances.<name>.settings]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Settings {
    /// First line of the page at `/`.
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "Hello from Everlock".to_owned()
}

const EXAMPLE_SETTINGS: &str = r#"# First line of the page at `/`.
greeting = "Hello from Everlock"
"#;

register_backend!(BackendFactory {
    kind: KIND,
    frontend: Frontend::Http,
    summary: "example backend: a greeting page and a streaming echo endpoint",
    check,
    build,
    default_instances,
    example_settings: EXAMPLE_SETTINGS,
});

fn check(table: &everlock_host::toml::Table) -> Result<(), BuildError> {
    parse_settings::<Settings>(table).map(|_| ())
}

fn default_instances() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "welcome",
        vhosts: &["localhost", "127.0.0.1", "::1"],
        prefix: "/",
        store: "hello-http-welcome",
    }]
}

fn build(
    ctx: BackendContext,
    table: &everlock_host::toml::Table,
) -> Result<Box<dyn Backend>, BuildError> {
    let settings: Settings = parse_settings(table)?;
    Ok(Box::new(Hello {
        page: format!(
            "{}\n\nThis is instance `{}` of the `{KIND}` example backend, mounted at {} on {}.\n",
            settings.greeting,
            ctx.instance,
            ctx.prefix,
            ctx.vhosts
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        prefix: ctx.prefix.to_string(),
    }))
}

/// One built instance.
struct Hello {
    page: String,
    prefix: String,
}

impl Backend for Hello {
    fn http_router(&self) -> Option<Router> {
        // Requests keep their full path, so routes are spelled out under the prefix; both
        // `/prefix` and `/prefix/` show the page.
        let base = self.prefix.trim_end_matches('/');
        let mut router = Router::new().route(&format!("{base}/"), get(page));
        if !base.is_empty() {
            router = router.route(base, get(page));
        }
        Some(
            router
                .route(&format!("{base}/echo"), post(echo))
                .with_state(self.page.clone()),
        )
    }
}

async fn page(State(page): State<String>) -> String {
    page
}

/// Hashes the body chunk by chunk as it arrives, so arbitrarily large uploads use constant
/// memory, then reports what was received.
async fn echo(body: Body) -> Result<String, (StatusCode, String)> {
    let mut body = body;
    let mut hasher = Sha256::new();
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("cannot read request body: {e}\n"),
            )
        })?;
        if let Some(data) = frame.data_ref() {
            len += data.len() as u64;
            hasher.update(data);
        }
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("received {len} bytes, sha256 {hex}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use everlock_host::axum::http::Request;
    use tower::ServiceExt;

    fn ctx(prefix: &str) -> BackendContext {
        BackendContext {
            kind: KIND,
            instance: "t".parse().unwrap(),
            vhosts: vec!["h.example".parse().unwrap()],
            prefix: prefix.parse().unwrap(),
            store: "hello-http-t".parse().unwrap(),
            shutdown: Default::default(),
        }
    }

    async fn call(router: Router, req: Request<Body>) -> (StatusCode, String) {
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn example_settings_round_trip() {
        let table: everlock_host::toml::Table = EXAMPLE_SETTINGS.parse().unwrap();
        check(&table).unwrap();
    }

    #[test]
    fn unknown_settings_are_rejected() {
        let table: everlock_host::toml::Table = "greting = \"typo\"".parse().unwrap();
        let err = check(&table).unwrap_err().to_string();
        assert!(err.contains("greting"), "{err}");
    }

    #[tokio::test]
    async fn greets_and_echoes_under_a_prefix() {
        let table: everlock_host::toml::Table = "greeting = \"Hi\"".parse().unwrap();
        let router = build(ctx("/hello"), &table).unwrap().http_router().unwrap();
        for path in ["/hello", "/hello/"] {
            let (status, body) = call(
                router.clone(),
                Request::get(path).body(Body::empty()).unwrap(),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.starts_with("Hi\n"), "{body}");
        }
        let (status, body) = call(
            router.clone(),
            Request::post("/hello/echo")
                .body(Body::from("abc"))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            "received 3 bytes, sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
        );
        let (status, _) = call(
            router,
            Request::get("/elsewhere").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
