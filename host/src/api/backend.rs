//! The contract of a built instance: the context the host hands to a kind's `build`, the
//! `Backend` trait with its one `Service`, and the console commands an instance offers.

use std::fmt;
use std::sync::Arc;

use super::admin::HostAdmin;
pub use super::console::{CommandError, CommandFuture, CommandHelp, InstanceCommands};
use super::frontend::Frontend;
use super::names::{InstanceName, PathPrefix, Vhost};
use super::ssh::SshService;
use super::store::InstanceStore;

/// What the host hands to a factory's `build`: everything an instance may know about its
/// surroundings. It deliberately carries no data directory or store manager, so an instance
/// can only reach the one store the host chose for it.
///
/// Its `auth` authenticates and authorizes, and that is all a backend can do with the
/// directory:
///
/// ```
/// # use everlock_host::BackendContext;
/// # use everlock_host::auth::{AccessPath, Action, Principal};
/// fn may_read(ctx: &BackendContext, who: &Principal, path: &AccessPath) -> bool {
///     ctx.auth.authorize(who, path, Action::Read)
/// }
/// ```
///
/// Administering the directory is not on it, even with a principal a request authenticated
/// as an administrator:
///
/// ```compile_fail,E0599
/// # use everlock_host::BackendContext;
/// # use everlock_host::auth::Principal;
/// async fn escalate(ctx: &BackendContext, admin: &Principal) {
///     let _ = ctx.auth.add_user(admin, "mallory", "mallory-password").await;
/// }
/// ```
#[derive(Debug, Clone)]
pub struct BackendContext {
    /// The backend kind being built.
    pub kind: &'static str,
    /// The instance's name, unique within its kind.
    pub instance: InstanceName,
    /// Hostnames routed to this instance (HTTP kinds).
    pub vhosts: Vec<Vhost>,
    /// Path prefix under which this instance is mounted; requests keep their full path.
    pub prefix: PathPrefix,
    /// This instance's own store, opened on first use.
    pub store: InstanceStore,
    /// Authentication and authorization, and nothing else (never the directory
    /// administration); every read and write path must go through it.
    pub auth: everlock_auth::AccessControl,
    /// Cancelled when the server shuts down, so background tasks can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Host administration: `Some` only for the one kind the composition root granted it
    /// (`Host::grant_administration`, the admin console), and only once the host has started;
    /// no factory can ask for it, and only the host can make one that reaches the host. Every
    /// other backend sees nothing but its own store.
    pub admin: Option<Arc<dyn HostAdmin>>,
}

/// What a built instance serves: the one protocol its frontend speaks to it.
pub enum Service {
    /// An HTTP instance's router. The host routes every request whose vhost and path prefix
    /// (its mount or one of the extra prefixes its settings claim) select this instance to
    /// it, with the full original path.
    Http(axum::Router),
    /// An SSH instance's session service: the SSH frontend hands every authenticated session
    /// channel (exec or shell, with or without a terminal) to it.
    Ssh(Arc<dyn SshService>),
}

impl Service {
    /// The frontend that carries this service's traffic.
    pub fn frontend(&self) -> Frontend {
        match self {
            Service::Http(_) => Frontend::Http,
            Service::Ssh(_) => Frontend::Ssh,
        }
    }
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Service::{}", self.frontend())
    }
}

/// A built backend instance.
///
/// The instance names its one [`Service`]; everything else is a defaulted method returning
/// `None`, so a backend implements only what it offers.
pub trait Backend: Send + Sync + 'static {
    /// The service the instance offers. The host calls it once after `build`; a service of
    /// another frontend than the kind declared is a build error.
    fn service(&self) -> Service;

    /// Maintenance commands this instance offers to the admin console (for example
    /// `/site history <name>`, `/site rollback <name> <commit>`, `/oci gc <name>`). The host
    /// asks once after `build`; `None` means the instance has none.
    fn commands(&self) -> Option<Arc<dyn InstanceCommands>> {
        None
    }

    /// Kind-specific upkeep the maintenance task runs on each pass, before the stores' GC
    /// (an OCI registry applies its retention rules, so that GC frees what they removed).
    /// The output is logged; `None` means the instance has none.
    fn maintain(&self) -> Option<CommandFuture> {
        None
    }
}

impl dyn Backend {
    /// The router of an HTTP instance, `None` for any other service; for callers (tests,
    /// tools) that only drive HTTP.
    pub fn http_router(&self) -> Option<axum::Router> {
        match self.service() {
            Service::Http(router) => Some(router),
            Service::Ssh(_) => None,
        }
    }
}

/// Why a backend instance could not be built or its settings were rejected.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The kind-specific settings table is invalid (unknown key, wrong type, bad value).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The backend could not start for a reason outside its settings.
    #[error("{0}")]
    Failed(String),
}

impl BuildError {
    /// Wraps a strict deserialisation error of a settings table.
    pub fn settings(err: impl fmt::Display) -> Self {
        BuildError::Settings(err.to_string())
    }
}

/// Parses a settings table strictly into `T`, turning serde errors into [`BuildError`].
pub fn parse_settings<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
) -> Result<T, BuildError> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(BuildError::settings)
}
