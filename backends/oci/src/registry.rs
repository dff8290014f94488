//! One registry instance: its state, the authorization of every request (reference/oci.md
//! §11 "Everlock mapping") and the response helpers every handler shares. The dispatcher that
//! routes requests to the handlers is `dispatch`, above all of them.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use everlock_host::InstanceStore;
use everlock_host::auth::{AccessPath, Action, Auth, LoginError, Principal};
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use everlock_host::http::{StatusCode, request::Parts};
use everlock_host::http_auth;
use everlock_host::storage::{RetentionPolicy, StorageError, Store};
use futures_util::TryStreamExt as _;
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

use crate::error::{Code, OciError, OciResult};
use crate::names::Name;
use crate::settings::Settings;

/// The realm of the Basic challenge.
pub(crate) const REALM: &str = "everlock";

/// How often (at most) a request that starts an upload also sweeps expired sessions; more
/// often when sessions expire sooner than this.
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

/// The shared state of one instance.
pub(crate) struct Registry {
    pub(crate) instance: String,
    pub(crate) store: InstanceStore,
    pub(crate) auth: Auth,
    pub(crate) settings: Settings,
    last_sweep: Mutex<Option<Instant>>,
    /// The pull-through mirror, when `upstream` is set.
    pub(crate) mirror: Option<crate::mirror::Mirror>,
    /// Signing key and sessions of `auth = "token"`.
    pub(crate) tokens: crate::token::Tokens,
    /// Set once the registry's default retention policy is in place (see `open_store`).
    retention: tokio::sync::OnceCell<()>,
    /// The cached usage behind `[[quota]]` (see `quota`).
    pub(crate) quota: crate::quota::QuotaState,
    /// The webhook delivery channel and recent outcomes (see `webhooks`).
    pub(crate) webhooks: crate::webhooks::Webhooks,
}

impl Registry {
    pub(crate) fn new(
        instance: String,
        store: InstanceStore,
        auth: Auth,
        settings: Settings,
    ) -> Registry {
        let webhooks =
            crate::webhooks::Webhooks::start(&instance, settings.webhooks.clone(), store.clone());
        Registry {
            quota: crate::quota::QuotaState::default(),
            webhooks,
            instance,
            store,
            auth,
            settings,
            last_sweep: Mutex::new(None),
            mirror: None,
            tokens: crate::token::Tokens::default(),
            retention: tokio::sync::OnceCell::new(),
        }
    }

    /// The registry as a mirror of `upstream` (see `mirror`).
    pub(crate) fn with_mirror(mut self, mirror: Option<crate::mirror::Mirror>) -> Registry {
        self.mirror = mirror;
        self
    }

    /// The open store; failing to open it is the host's problem, never the client's.
    pub(crate) async fn store(&self) -> OciResult<&Store> {
        self.open_store().await.map_err(|e| OciError::internal(&e))
    }

    /// Opens the store and, the first time, gives it the registry's retention default:
    /// history is kept forever, but content HEAD no longer references is purged once the GC
    /// grace period has passed, so `gc` plus the store's maintenance give the space back. An
    /// operator's policy (`/store retention`) is never replaced. If recording the default
    /// fails (a full disk), the request goes on and a later one tries again.
    pub(crate) async fn open_store(&self) -> Result<&Store, StorageError> {
        let store = self.store.get().await?;
        let init = self
            .retention
            .get_or_try_init(|| async {
                let default = RetentionPolicy::PurgeAfter(self.settings.gc_grace());
                store.init_retention_policy(default).await.map(|_| ())
            })
            .await;
        if let Err(e) = init {
            tracing::warn!(instance = %self.instance, error = %e, "oci: cannot set the default retention policy");
        }
        Ok(store)
    }

    /// `http/oci/<instance>/<name...>`.
    pub(crate) fn access_path(&self, name: &Name) -> OciResult<AccessPath> {
        let mut segments = vec!["http", "oci", self.instance.as_str()];
        segments.extend(name.as_str().split('/'));
        AccessPath::from_segments(segments).map_err(|e| {
            OciError::bad(
                Code::NameInvalid,
                format!("repository name not usable: {e}"),
            )
        })
    }

    /// Whether `principal` may do `action` on repository `name`.
    pub(crate) fn allowed(&self, principal: &Principal, name: &Name, action: Action) -> bool {
        self.access_path(name)
            .is_ok_and(|p| self.auth.authorize(principal, &p, action))
    }

    /// 401 with a challenge for anonymous callers, 403 `DENIED` for authenticated ones.
    pub(crate) fn require(
        &self,
        principal: &Principal,
        name: &Name,
        action: Action,
    ) -> OciResult<()> {
        let path = self.access_path(name)?;
        if self.auth.authorize(principal, &path, action) {
            return Ok(());
        }
        Err(if principal.is_anon() {
            unauthorized("authentication required")
        } else {
            OciError::new(
                StatusCode::FORBIDDEN,
                Code::Denied,
                format!("{principal} may not {action} {name}"),
            )
        })
    }

    /// Removes expired upload sessions at most once a minute, piggybacking on upload starts
    /// so that no background task has to outlive an instance rebuild.
    pub(crate) async fn sweep_uploads(&self, store: &Store) {
        {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let every = EXPIRY_SWEEP.min(self.settings.upload_expiry());
            if last.is_some_and(|t| t.elapsed() < every) {
                return;
            }
            *last = Some(Instant::now());
        }
        match store.expire_uploads().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(instance = %self.instance, n, "oci: expired upload sessions"),
            Err(e) => tracing::warn!(instance = %self.instance, error = %e, "oci: upload expiry"),
        }
    }
}

/// 401 `UNAUTHORIZED` with the Basic challenge.
pub(crate) fn unauthorized(message: &str) -> OciError {
    OciError::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, message)
        .with_header(WWW_AUTHENTICATE, http_auth::challenge(REALM))
}

/// The spec error for a failed login (bad credentials, malformed header, throttling).
pub(crate) fn login_error(err: &LoginError) -> OciError {
    let status = http_auth::status(err);
    match err {
        LoginError::BadCredentials => unauthorized("invalid username or password"),
        LoginError::Throttled { retry_after } => {
            OciError::new(status, Code::TooManyRequests, "too many failed logins")
                .with_header(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)))
        }
        LoginError::Malformed(m) => OciError::new(status, Code::Unauthorized, m.clone()),
    }
}

/// The query parameters of a request (the last value wins for repeated keys).
pub(crate) fn query(parts: &Parts) -> HashMap<String, String> {
    parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A request body as a byte stream; transport errors (a truncated body, a reset) become
/// [`BodyError`]s so they can be told apart from disk errors.
pub(crate) fn body_reader(body: Body) -> impl AsyncRead + Unpin + Send {
    StreamReader::new(
        body.into_data_stream()
            .map_err(|e| io::Error::other(BodyError(e.to_string()))),
    )
}

/// The client's side of a failed upload: its body ended early, broke, or did not match its
/// declared length.
#[derive(Debug, thiserror::Error)]
#[error("request body: {0}")]
pub(crate) struct BodyError(pub(crate) String);

/// Whether a storage error came from the request body rather than from the store.
pub(crate) fn is_body_error(err: &StorageError) -> bool {
    match err {
        StorageError::Io(e) => e.get_ref().is_some_and(|inner| inner.is::<BodyError>()),
        _ => false,
    }
}

/// Whether a request carries no body at all (so a closing PUT need not append anything).
pub(crate) fn body_is_empty(parts: &Parts, body: &Body) -> bool {
    use http_body::Body as _;
    if body.size_hint().exact() == Some(0) {
        return true;
    }
    parts
        .headers
        .get(everlock_host::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0")
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        everlock_host::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An empty response with a status (Content-Length 0).
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response.headers_mut().insert(
        everlock_host::http::header::CONTENT_LENGTH,
        HeaderValue::from_static("0"),
    );
    response
}

/// A header value from text that we built ourselves (paths, digests, numbers): always valid,
/// but checked anyway instead of trusting it.
pub(crate) fn header(value: &str) -> OciResult<HeaderValue> {
    HeaderValue::from_str(value)
        .map_err(|_| OciError::bad(Code::Unsupported, "value not representable in a header"))
}
