//! One registry instance: its state and the authorization of every request (reference/oci.md
//! §11 "Everlock mapping"). The response helpers every handler shares are in `respond`, below
//! it; the dispatcher that routes requests to the handlers is `dispatch`, above all of them.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use everlock_host::InstanceStore;
use everlock_host::auth::{AccessControl, AccessPath, Action, Principal};
use everlock_host::http::StatusCode;
use everlock_host::storage::{RetentionPolicy, StorageError, Store};

use crate::error::{Code, OciError, OciResult};
use crate::names::Name;
use crate::respond::unauthorized;
use crate::settings::Settings;

/// How often (at most) a request that starts an upload also sweeps expired sessions; more
/// often when sessions expire sooner than this.
const EXPIRY_SWEEP: Duration = Duration::from_secs(60);

/// The shared state of one instance.
pub(crate) struct Registry {
    pub(crate) instance: String,
    pub(crate) store: InstanceStore,
    pub(crate) auth: AccessControl,
    pub(crate) settings: Settings,
    last_sweep: Mutex<Option<Instant>>,
    /// The pull-through mirror, when `upstream` is set.
    pub(crate) mirror: Option<crate::mirror::Mirror>,
    /// Signing key and sessions of `auth = "token"`.
    pub(crate) tokens: crate::token::state::Tokens,
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
        auth: AccessControl,
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
            tokens: crate::token::state::Tokens::default(),
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
