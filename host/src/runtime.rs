//! The running host: the registry, the live instance table and the operations that change it.
//!
//! Startup builds every configured instance through its factory and installs them in one
//! swap; afterwards only the host's own administration API (`admin.rs`, which validates and
//! persists every change) and the follower change the table: the mutators here are
//! crate-private.
//!
//! Administration is a capability, not a flag a backend sets for itself: the composition root
//! names the one kind that receives it ([`Host::grant_administration`]), and the host hands
//! that kind's instances an `Arc<dyn HostAdmin>` backed by [`Administration`], which only this
//! crate can construct, and only once [`Host::start`] has begun.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use everlock_auth::{Auth, Principal, SystemAuthority, WeakAuth};
use everlock_storage::StoreManager;
use tokio_util::sync::CancellationToken;

use everlock_storage::Store;

use crate::api::{BackendContext, BuildError, HostAdmin, InstanceStore, Service};
use crate::config::{Config, Plan, Planned};
use crate::instance::Instance;
use crate::registry::Registry;
use crate::routes::{InstanceTable, RouteError};
use crate::tls::TlsState;
use crate::tls::acme::AcmeManager;

mod start;

/// Why an instance could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The kind is not compiled in.
    #[error("unknown backend kind `{0}`")]
    UnknownKind(String),
    /// The backend refused to build the instance.
    #[error("cannot build instance {id}: {error}")]
    Build {
        /// `kind/name`.
        id: String,
        /// The backend's reason.
        error: BuildError,
    },
    /// The instance conflicts with the table.
    #[error(transparent)]
    Route(#[from] RouteError),
}

/// What `Host` keeps to administer itself: the effective configuration and the system store.
#[derive(Debug)]
pub(crate) struct AdminState {
    pub(crate) config: Config,
    pub(crate) system: Option<Store>,
    /// The configuration file's configuration, before the runtime records are laid over it:
    /// what `follow` re-applies another node's records to.
    pub(crate) base: Config,
    /// The system store's HEAD seq the effective configuration reflects.
    pub(crate) seq: u64,
}

/// What the running server's TLS is, once its HTTPS listener is up.
#[derive(Debug, Clone)]
pub struct TlsHandle {
    /// The HTTPS listener's certificate state.
    pub state: Arc<TlsState>,
    /// The ACME manager, when `[acme] enabled`.
    pub acme: Option<Arc<AcmeManager>>,
}

/// The host's slot for it: set once by the server.
pub(crate) type TlsSlot = Arc<std::sync::OnceLock<TlsHandle>>;

/// The plugin host: which kinds exist and which instances are live.
#[derive(Debug, Clone)]
pub struct Host {
    registry: Registry,
    table: Arc<InstanceTable>,
    stores: StoreManager,
    auth: Auth,
    shutdown: CancellationToken,
    /// The right to act as the server itself (provisioning); never handed to a backend.
    system: Arc<SystemAuthority>,
    /// The effective configuration and the system store, for live administration; the lock
    /// serialises administrative changes.
    admin: Arc<tokio::sync::Mutex<AdminState>>,
    /// The server's metrics registry.
    metrics: crate::metrics::Metrics,
    /// The HTTPS listener's certificates and the ACME manager, for `/tls`.
    tls: TlsSlot,
    /// The newest `everlock-system` HEAD seq the live instances reflect (or will, once this
    /// node's commit in flight returns): lets the follower skip this node's own commits
    /// without taking the admin lock.
    seen: Arc<AtomicU64>,
    /// The kind the composition root granted host administration (the console), if any.
    admin_kind: Option<&'static str>,
    /// Set when `start` begins: no [`HostAdmin`] is minted before, so nothing can administer
    /// a host whose changes would not yet be persisted.
    started: Arc<AtomicBool>,
}

/// A [`Host`] that does not keep the server's stores open, for the background task that
/// follows other nodes' changes: it must end with the server, not keep it alive.
#[derive(Debug, Clone)]
pub(crate) struct WeakHost {
    registry: Registry,
    table: Weak<InstanceTable>,
    stores: StoreManager,
    auth: WeakAuth,
    shutdown: CancellationToken,
    system: Weak<SystemAuthority>,
    admin: Weak<tokio::sync::Mutex<AdminState>>,
    metrics: crate::metrics::Metrics,
    tls: Weak<std::sync::OnceLock<TlsHandle>>,
    pub(crate) seen: Arc<AtomicU64>,
    admin_kind: Option<&'static str>,
    started: Arc<AtomicBool>,
}

impl WeakHost {
    /// The host, while the server holds it.
    pub(crate) fn upgrade(&self) -> Option<Host> {
        Some(Host {
            registry: self.registry.clone(),
            table: self.table.upgrade()?,
            stores: self.stores.clone(),
            auth: self.auth.upgrade()?,
            shutdown: self.shutdown.clone(),
            system: self.system.upgrade()?,
            admin: self.admin.upgrade()?,
            metrics: self.metrics.clone(),
            tls: self.tls.upgrade()?,
            seen: Arc::clone(&self.seen),
            admin_kind: self.admin_kind,
            started: Arc::clone(&self.started),
        })
    }
}

impl Host {
    /// A host with an empty instance table; instances get their stores from `stores` and
    /// share `auth`. `system` is the server's own authority, used only for the host's own
    /// work (provisioning zero-config instances) and never passed to a backend.
    pub fn new(
        registry: Registry,
        stores: StoreManager,
        auth: Auth,
        system: SystemAuthority,
        shutdown: CancellationToken,
    ) -> Host {
        Host {
            registry,
            table: Arc::new(InstanceTable::new()),
            stores,
            auth,
            system: Arc::new(system),
            shutdown,
            admin: Arc::new(tokio::sync::Mutex::new(AdminState {
                config: Config::default(),
                system: None,
                base: Config::default(),
                seq: 0,
            })),
            metrics: crate::metrics::Metrics::new(),
            tls: Default::default(),
            seen: Arc::new(AtomicU64::new(0)),
            admin_kind: None,
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A handle that does not keep this host alive.
    pub(crate) fn downgrade(&self) -> WeakHost {
        WeakHost {
            registry: self.registry.clone(),
            table: Arc::downgrade(&self.table),
            stores: self.stores.clone(),
            auth: self.auth.downgrade(),
            shutdown: self.shutdown.clone(),
            system: Arc::downgrade(&self.system),
            admin: Arc::downgrade(&self.admin),
            metrics: self.metrics.clone(),
            tls: Arc::downgrade(&self.tls),
            seen: Arc::clone(&self.seen),
            admin_kind: self.admin_kind,
            started: Arc::clone(&self.started),
        }
    }

    /// Grants host administration to the instances of `kind` (the admin console): they alone
    /// receive an `Arc<dyn HostAdmin>` in `BackendContext::admin`, once the host has started. Only the
    /// composition root calls it, before `start` and before the host is cloned into the
    /// server (a source test in `tests/authority.rs` checks that); a factory cannot ask for it.
    pub fn grant_administration(&mut self, kind: &str) -> Result<(), HostError> {
        let factory = self
            .registry
            .get(kind)
            .ok_or_else(|| HostError::UnknownKind(kind.to_owned()))?;
        self.admin_kind = Some(factory.kind);
        Ok(())
    }

    /// See the `seen` field.
    pub(crate) fn seen(&self) -> &AtomicU64 {
        &self.seen
    }

    pub(crate) fn admin_state(&self) -> &tokio::sync::Mutex<AdminState> {
        &self.admin
    }

    /// Every store of this server, for the host's own bookkeeping; never handed to backends.
    pub(crate) fn stores(&self) -> &StoreManager {
        &self.stores
    }

    /// The server's own principal, for the host's own work only.
    pub(crate) fn system_principal(&self) -> Principal {
        self.system.principal()
    }

    /// Where the server records its TLS state (`admin_tls`).
    pub(crate) fn tls_slot(&self) -> &TlsSlot {
        &self.tls
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The shared auth service.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The compiled-in kinds.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The live instance table the frontends route with.
    pub fn table(&self) -> &Arc<InstanceTable> {
        &self.table
    }

    /// Builds every instance of `plan` and installs them all at once; nothing is installed if
    /// any one fails. Only a [`Plan`] is installed, so the table never holds a set of
    /// instances the whole-configuration validation has not accepted.
    pub(crate) fn start_instances(&self, plan: &Plan) -> Result<(), HostError> {
        let mut built = Vec::new();
        for spec in plan.instances() {
            built.push(self.build_instance(spec)?);
        }
        self.table.replace_all(built)?;
        Ok(())
    }

    /// Builds one instance of a plan through its kind's factory without installing it.
    pub(crate) fn build_instance(&self, spec: Planned<'_>) -> Result<Instance, HostError> {
        let factory = self
            .registry
            .get(&spec.kind)
            .ok_or_else(|| HostError::UnknownKind(spec.kind.clone()))?;
        let id = spec.id();
        let ctx = BackendContext {
            kind: factory.kind,
            instance: spec.name.clone(),
            vhosts: spec.vhosts.clone(),
            prefix: spec.prefix.clone(),
            store: InstanceStore::new(self.stores.clone(), spec.store_name()),
            auth: self.auth.access_control(),
            shutdown: self.shutdown.child_token(),
            admin: self.administration_for(factory.kind),
        };
        let build_error = |error| HostError::Build {
            id: id.clone(),
            error,
        };
        // The settings declare the extra prefixes; validation saw the same list before.
        let extra_prefixes = (factory.check)(&spec.settings).map_err(build_error)?;
        let backend = (factory.build)(ctx, &spec.settings).map_err(build_error)?;
        let service = backend.service();
        if service.frontend() != factory.frontend {
            return Err(build_error(BuildError::Failed(format!(
                "a {} kind built a {} service",
                factory.frontend,
                service.frontend()
            ))));
        }
        let (router, ssh) = match service {
            Service::Http(router) => (Some(router), None),
            Service::Ssh(ssh) => (None, Some(ssh)),
        };
        let commands = backend.commands();
        Ok(Instance {
            kind: factory.kind,
            frontend: factory.frontend,
            spec: (*spec).clone(),
            extra_prefixes,
            store: spec.store_name(),
            router,
            ssh,
            commands,
            backend,
        })
    }

    /// The administration handle for an instance of `kind`: only for the granted kind, and
    /// only once the host has started.
    fn administration_for(&self, kind: &str) -> Option<Arc<dyn HostAdmin>> {
        let granted = self.admin_kind == Some(kind) && self.started.load(Ordering::SeqCst);
        granted.then(|| self.administration())
    }

    /// The administration capability over this host. Crate-private: only the granted kind's
    /// contexts carry one (see `administration_for`).
    pub(crate) fn administration(&self) -> Arc<dyn HostAdmin> {
        Arc::new(Administration { host: self.clone() })
    }

    /// The administration capability over this host, for tests that drive the console
    /// without a granted instance (feature `test-util`, dev-dependencies only).
    #[cfg(any(test, feature = "test-util"))]
    pub fn test_administration(&self) -> Arc<dyn HostAdmin> {
        self.administration()
    }

    /// Builds and adds the instances of `plan` (planned alone, not with the live table),
    /// bypassing persistence (tests only).
    #[cfg(test)]
    pub(crate) fn add_instance(&self, plan: &Plan) -> Result<(), HostError> {
        for spec in plan.instances() {
            let instance = self.build_instance(spec)?;
            self.table.insert(instance)?;
        }
        Ok(())
    }

    /// Rebuilds an existing instance with new vhosts, prefix, store or settings, live, bypassing
    /// validation and persistence (tests only).
    #[cfg(test)]
    pub(crate) fn replace_instance(&self, plan: &Plan) -> Result<(), HostError> {
        for spec in plan.instances() {
            let instance = self.build_instance(spec)?;
            self.table.replace(instance)?;
        }
        Ok(())
    }

    /// Removes an instance live; requests already routed to it finish (tests only).
    #[cfg(test)]
    pub(crate) fn remove_instance(
        &self,
        kind: &str,
        name: &crate::config::InstanceName,
    ) -> Result<(), HostError> {
        self.table.remove(kind, name)?;
        Ok(())
    }
}

/// The object behind the [`HostAdmin`] capability the granted kind receives: the host itself,
/// behind a type only this crate can name or construct (the trait's methods are implemented
/// in `admin/grant.rs`, on top of the host's validated, persisted administration API).
///
/// Outside the host nothing can make one that reaches the host; a `Host` is not itself an
/// administration handle:
///
/// ```compile_fail,E0277
/// fn forge(host: everlock_host::Host) -> std::sync::Arc<dyn everlock_host::HostAdmin> {
///     std::sync::Arc::new(host)
/// }
/// ```
///
/// nor can the type behind the grant be named:
///
/// ```compile_fail,E0603
/// fn forge(host: everlock_host::Host) -> everlock_host::runtime::Administration {
///     everlock_host::runtime::Administration { host }
/// }
/// ```
///
/// and the host mints one for tests only (feature `test-util`), never in a normal build:
///
/// ```compile_fail,E0624
/// fn forge(host: everlock_host::Host) -> std::sync::Arc<dyn everlock_host::HostAdmin> {
///     host.administration()
/// }
/// ```
///
/// Nor can a factory grant it to itself: the registration has no such field.
///
/// ```compile_fail,E0560
/// fn grant_self(f: everlock_host::BackendFactory) -> everlock_host::BackendFactory {
///     everlock_host::BackendFactory { admin: true, ..f }
/// }
/// ```
///
/// ```
/// fn describe(f: everlock_host::BackendFactory) -> everlock_host::BackendFactory {
///     everlock_host::BackendFactory { summary: "allowed: a factory's own fields", ..f }
/// }
/// ```
///
/// The only way to the host's administration is the context the host builds, for the granted
/// kind:
///
/// ```
/// fn administration(
///     ctx: everlock_host::BackendContext,
/// ) -> Option<std::sync::Arc<dyn everlock_host::HostAdmin>> {
///     ctx.admin
/// }
/// ```
#[derive(Debug)]
pub(crate) struct Administration {
    /// The administered host.
    pub(crate) host: Host,
}

#[cfg(test)]
mod tests;
