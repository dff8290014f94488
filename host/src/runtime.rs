//! The running host: the registry, the live instance table and the operations that change it.
//!
//! Startup builds every configured instance through its factory and installs them in one
//! swap; later issues (the admin console) call `add_instance`, `replace_instance` and
//! `remove_instance` to change the table while the server runs.

use std::sync::Arc;

use everlock_auth::{Auth, Principal, SystemAuthority};
use everlock_storage::StoreManager;
use tokio_util::sync::CancellationToken;

use crate::admin::{AdminError, AdminState, SYSTEM_STORE, overlay};
use crate::backend::{BackendContext, BuildError, Frontend};
use crate::config::{Config, InstanceName, ResolvedInstance};
use crate::instance::Instance;
use crate::registry::Registry;
use crate::routes::{InstanceTable, RouteError};
use crate::store::InstanceStore;

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
            })),
            metrics: crate::metrics::Metrics::new(),
        }
    }

    /// Starts serving `config`: opens the `everlock-system` store, lays the runtime changes
    /// recorded there over `config`, validates the result and installs every instance at once.
    pub async fn start(&self, mut config: Config) -> Result<(), AdminError> {
        let system = self.stores.open(SYSTEM_STORE).await?;
        overlay(&mut config, self, &system).await?;
        config
            .validate(&self.registry, None)
            .map_err(|e| AdminError::Conflict(e.to_string()))?;
        self.provision_defaults(&config, &system).await?;
        self.start_instances(&config)?;
        crate::maintenance::spawn(self, &config.storage, self.shutdown.clone());
        let mut state = self.admin.lock().await;
        state.config = config;
        state.system = Some(system);
        Ok(())
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

    /// Builds every instance `config` asks for and installs them all at once; nothing is
    /// installed if any one fails.
    pub fn start_instances(&self, config: &Config) -> Result<(), HostError> {
        let mut built = Vec::new();
        for spec in config.instances(&self.registry) {
            built.push(self.build_instance(&spec)?);
        }
        self.table.replace_all(built)?;
        Ok(())
    }

    /// Builds one instance through its kind's factory without installing it.
    pub fn build_instance(&self, spec: &ResolvedInstance) -> Result<Instance, HostError> {
        let factory = self
            .registry
            .get(spec.kind)
            .ok_or_else(|| HostError::UnknownKind(spec.kind.to_owned()))?;
        let id = format!("{}/{}", spec.kind, spec.name);
        let ctx = BackendContext {
            kind: factory.kind,
            instance: spec.name.clone(),
            vhosts: spec.vhosts.clone(),
            prefix: spec.prefix.clone(),
            store: InstanceStore::new(self.stores.clone(), spec.store.clone()),
            auth: self.auth.clone(),
            shutdown: self.shutdown.child_token(),
            admin: factory.admin.then(|| self.clone()),
        };
        let backend = (factory.build)(ctx, &spec.settings).map_err(|error| HostError::Build {
            id: id.clone(),
            error,
        })?;
        let router = backend.http_router();
        let commands = backend.commands();
        if factory.frontend == Frontend::Http && router.is_none() {
            return Err(HostError::Build {
                id,
                error: BuildError::Failed("HTTP backend returned no router".to_owned()),
            });
        }
        Ok(Instance {
            kind: factory.kind,
            frontend: factory.frontend,
            settings: spec.settings.clone(),
            name: spec.name.clone(),
            vhosts: spec.vhosts.clone(),
            prefix: spec.prefix.clone(),
            store: spec.store.clone(),
            router,
            commands,
            backend,
        })
    }

    /// Builds and adds an instance while the server runs.
    pub fn add_instance(&self, spec: &ResolvedInstance) -> Result<(), HostError> {
        let instance = self.build_instance(spec)?;
        self.table.insert(instance)?;
        Ok(())
    }

    /// Rebuilds an existing instance with new vhosts, prefix, store or settings, live.
    pub fn replace_instance(&self, spec: &ResolvedInstance) -> Result<(), HostError> {
        let instance = self.build_instance(spec)?;
        self.table.replace(instance)?;
        Ok(())
    }

    /// Removes an instance live; requests already routed to it finish.
    pub fn remove_instance(&self, kind: &str, name: &InstanceName) -> Result<(), HostError> {
        self.table.remove(kind, name)?;
        Ok(())
    }
}
