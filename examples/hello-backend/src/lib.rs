//! `hello-http`: a tiny backend written the way a third party would write one.
//!
//! It depends only on `everlock-host` and registers itself with `register_backend!`; the host
//! never names it. It proves the plugin contract end to end (settings parsed strictly,
//! routing under a path prefix, streaming request bodies). It serves only instances named in the
//! configuration: the zero-config welcome page belongs to the site backend.
//!
//! # Routes (relative to the instance's prefix)
//! - `GET /`: a plain-text greeting naming the instance.
//! - `POST /echo`: streams the request body and answers with its length and sha256, without
//!   buffering it.
//!
//! With `private = true`, every request needs read access on `http/hello/<instance>`: it shows
//! how a third-party backend uses the host's authentication (401 with a challenge without
//! credentials, 403 without a grant, 429 when throttled).

#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use everlock_host::auth::{AccessControl, AccessPath, Action};
use everlock_host::axum::Router;
use everlock_host::axum::body::Body;
use everlock_host::axum::extract::{Request, State};
use everlock_host::axum::http::StatusCode;
use everlock_host::axum::middleware::{self, Next};
use everlock_host::axum::response::Response;
use everlock_host::axum::routing::{get, post};
use everlock_host::http_auth;
use everlock_host::{
    Backend, BackendContext, BackendFactory, BackendKind, BuildError, ConsoleFamily,
    DefaultInstance, Frontend, OptionSpec, OptionValue, Service, register_backend,
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
    /// Require read access on `http/hello/<instance>` for every request.
    #[serde(default)]
    private: bool,
}

fn default_greeting() -> String {
    "Hello from Everlock".to_owned()
}

const EXAMPLE_SETTINGS: &str = r#"# First line of the page at `/`.
greeting = "Hello from Everlock"
# Require read access on http/hello/<instance> (401 without credentials, 403 without a grant).
private = false
"#;

/// The registration: `check` and `build` are derived from [`HelloKind`]'s typed settings, so
/// the table is parsed by one declaration.
const FACTORY: BackendFactory = BackendFactory {
    default_instances,
    example_settings: EXAMPLE_SETTINGS,
    access_root: Some("http/hello"),
    console: Some(ConsoleFamily {
        word: "hello",
        noun: "hello page",
        default_prefix: None,
        create_options: &[
            OptionSpec {
                key: "greeting",
                summary: "<text>",
                required: false,
                allowed: &[],
                value: OptionValue::Text,
            },
            OptionSpec {
                key: "private",
                summary: "<true|false>",
                required: false,
                allowed: &[],
                value: OptionValue::Bool,
            },
        ],
        public_by_default: false,
        owner_on_create: false,
        commands: &[],
    }),
    ..BackendFactory::of::<HelloKind>(
        KIND,
        "example backend: a greeting page and a streaming echo endpoint",
    )
};

register_backend!(FACTORY);

/// The kind: typed settings and the build; everything else is the factory's constant data.
struct HelloKind;

impl BackendKind for HelloKind {
    type Settings = Settings;
    const FRONTEND: Frontend = Frontend::Http;

    fn build(ctx: BackendContext, settings: Settings) -> Result<Box<dyn Backend>, BuildError> {
        build(ctx, settings)
    }
}

/// None: the example serves only configured instances, because the zero-config welcome page
/// on localhost belongs to the site backend (two instances cannot share a vhost and prefix).
fn default_instances() -> Vec<DefaultInstance> {
    Vec::new()
}

fn build(ctx: BackendContext, settings: Settings) -> Result<Box<dyn Backend>, BuildError> {
    let resource = AccessPath::from_segments(["http", "hello", ctx.instance.as_str()])
        .map_err(|e| BuildError::Failed(e.to_string()))?;
    Ok(Box::new(Hello {
        guard: settings.private.then(|| Guard {
            auth: ctx.auth.clone(),
            resource,
        }),
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
    guard: Option<Guard>,
}

/// What a private instance checks on every request.
#[derive(Clone)]
struct Guard {
    auth: AccessControl,
    resource: AccessPath,
}

impl Backend for Hello {
    fn service(&self) -> Service {
        // Requests keep their full path, so routes are spelled out under the prefix; both
        // `/prefix` and `/prefix/` show the page.
        let base = self.prefix.trim_end_matches('/');
        let mut router = Router::new().route(&format!("{base}/"), get(page));
        if !base.is_empty() {
            router = router.route(base, get(page));
        }
        let router = router
            .route(&format!("{base}/echo"), post(echo))
            .with_state(self.page.clone());
        Service::Http(match &self.guard {
            Some(guard) => {
                router.layer(middleware::from_fn_with_state(guard.clone(), require_read))
            }
            None => router,
        })
    }
}

/// Authenticates the request and requires read access on the instance.
async fn require_read(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    const REALM: &str = "hello";
    let (parts, body) = req.into_parts();
    let principal = match http_auth::authenticate(&guard.auth, &parts).await {
        Ok(p) => p,
        Err(e) => return http_auth::reject(&e, REALM),
    };
    if !guard
        .auth
        .authorize(&principal, &guard.resource, Action::Read)
    {
        return if principal.is_anon() {
            http_auth::unauthorized(REALM)
        } else {
            http_auth::forbidden()
        };
    }
    next.run(Request::from_parts(parts, body)).await
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
    /// The `/hello` family offers exactly the settings `check` accepts.
    #[test]
    fn console_options_are_settings_the_kind_accepts() {
        let registry = everlock_host::Registry::collect().unwrap();
        let factory = registry.get(super::KIND).unwrap();
        assert_eq!(factory.console.map(|c| c.word), Some("hello"));
        factory.check_console().unwrap();
    }

    use super::*;
    use everlock_host::axum::http::Request;
    use tower::ServiceExt;

    use everlock_host::auth::Principal;
    use everlock_host::test_util::TestEnv;

    async fn call(router: Router, req: Request<Body>) -> (StatusCode, String) {
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn example_settings_round_trip() {
        let table: everlock_host::toml::Table = EXAMPLE_SETTINGS.parse().unwrap();
        (FACTORY.check)(&table).unwrap();
    }

    #[test]
    fn unknown_settings_are_rejected() {
        let table: everlock_host::toml::Table = "greting = \"typo\"".parse().unwrap();
        let err = (FACTORY.check)(&table).unwrap_err().to_string();
        assert!(err.contains("greting"), "{err}");
    }

    #[tokio::test]
    async fn greets_and_echoes_under_a_prefix() {
        let env = TestEnv::new().await;
        let table: everlock_host::toml::Table = "greeting = \"Hi\"".parse().unwrap();
        let router = (FACTORY.build)(env.context(KIND, "t", "h.example", "/hello"), &table)
            .unwrap()
            .http_router()
            .unwrap();
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

    #[tokio::test]
    async fn private_instances_authenticate_and_authorize() {
        use everlock_host::auth::AdminPassword;
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("admin-pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        env.auth
            .add_user(&admin, "alice", "alice-pw")
            .await
            .unwrap();
        env.auth.add_user(&admin, "bob", "bob-pw").await.unwrap();
        env.auth
            .grant(&admin, "alice", "http/hello/p", "reader")
            .await
            .unwrap();
        let table: everlock_host::toml::Table = "private = true".parse().unwrap();
        let router = (FACTORY.build)(env.context(KIND, "p", "h.example", "/"), &table)
            .unwrap()
            .http_router()
            .unwrap();
        let get = |auth: Option<&str>| {
            let mut b = Request::get("/");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(Body::empty()).unwrap()
        };
        let basic = |l: &str, p: &str| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{l}:{p}"))
            )
        };
        let resp = router.clone().oneshot(get(None)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"hello\", charset=\"UTF-8\""
        );
        assert_eq!(
            call(router.clone(), get(Some(&basic("alice", "alice-pw"))))
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(router.clone(), get(Some(&basic("bob", "bob-pw"))))
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            call(router.clone(), get(Some(&basic("alice", "nope"))))
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(router.clone(), get(Some("Basic !!"))).await.0,
            StatusCode::BAD_REQUEST
        );
        // Granting anon reader opens the instance to everyone, immediately.
        env.auth
            .grant(&admin, "anon", "http/hello/p", "reader")
            .await
            .unwrap();
        assert_eq!(call(router.clone(), get(None)).await.0, StatusCode::OK);
        env.auth
            .revoke(&admin, "anon", "http/hello/p")
            .await
            .unwrap();
        assert_eq!(call(router, get(None)).await.0, StatusCode::UNAUTHORIZED);
    }
}
