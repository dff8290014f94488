//! The contract between the host and a backend kind: a const factory descriptor that the
//! backend registers, the context the host hands to `build`, and the `Backend` trait that a
//! built instance implements.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use everlock_auth::Principal;

use crate::config::{InstanceName, PathPrefix, Vhost};
use crate::store::InstanceStore;

/// Which frontend carries a backend kind's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// Requests arrive through the HTTP(S) frontend and are routed by vhost and path prefix.
    Http,
    /// Sessions arrive through the SSH frontend.
    Ssh,
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Frontend::Http => "http",
            Frontend::Ssh => "ssh",
        })
    }
}

/// Builds one instance from its context and kind-specific settings.
pub type BuildFn = fn(BackendContext, &toml::Table) -> Result<Box<dyn Backend>, BuildError>;

/// A backend kind's registration: constant data plus plain function pointers, because
/// `inventory` only accepts `const`, `Sync`, `'static` values.
///
/// All real work (parsing settings, opening stores) happens inside `build`, never at
/// registration time.
#[derive(Debug)]
pub struct BackendFactory {
    /// Short kind name such as `oci-http`; lowercase letters, digits and `-`, unique.
    pub kind: &'static str,
    /// The frontend that carries this kind's traffic.
    pub frontend: Frontend,
    /// One line shown by `everlock backends`.
    pub summary: &'static str,
    /// Parses an instance's kind-specific settings table strictly, without side effects.
    /// `everlock config check` calls it; `build` must accept whatever it accepts.
    pub check: fn(&toml::Table) -> Result<(), BuildError>,
    /// Builds one instance. An `Err` aborts startup (for instances from configuration) or
    /// rejects the live change that asked for the instance; the running table is untouched.
    pub build: BuildFn,
    /// The instances this kind serves when the configuration names none for it: the
    /// zero-config defaults.
    pub default_instances: fn() -> Vec<DefaultInstance>,
    /// A documented example of the settings table, as TOML; a test parses it with `check`.
    pub example_settings: &'static str,
    /// Whether instances receive the host administration handle (`BackendContext::admin`).
    /// Only the admin console needs it; every other backend sees nothing but its own store.
    pub admin: bool,
    /// The access-path root under which each instance's grants live (`http/site` means
    /// `http/site/<instance>` and below). The host removes every grant there when an instance
    /// is deleted, so re-creating the name never inherits old access; `None` for kinds that
    /// authorize nothing per instance.
    pub access_root: Option<&'static str>,
}

/// One zero-config instance proposed by a backend kind.
///
/// The host provisions it exactly once, when it first installs it on an empty store (access
/// and seed content as declared here), and records that in the system store; it never runs on
/// the request path and never again, so an operator's later choices (a private site, other
/// content) are never overridden.
#[derive(Debug, Clone)]
pub struct DefaultInstance {
    /// Instance name, unique within the kind.
    pub name: &'static str,
    /// Hostnames the instance answers on.
    pub vhosts: &'static [&'static str],
    /// Path prefix under which the instance is mounted (`/` for everything).
    pub prefix: &'static str,
    /// Name of the instance's own store.
    pub store: &'static str,
    /// Whether provisioning makes the instance public (anon reader on its access path; needs
    /// the factory's `access_root`).
    pub public: bool,
    /// `(path, content)` committed into the instance's store when it is provisioned.
    pub seed: &'static [(&'static str, &'static [u8])],
}

/// What the host hands to a factory's `build`: everything an instance may know about its
/// surroundings. It deliberately carries no data directory or store manager, so an instance
/// can only reach the one store the host chose for it.
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
    /// Authentication and authorization; every read and write path must go through it.
    pub auth: everlock_auth::Auth,
    /// Cancelled when the server shuts down, so background tasks can stop.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The host itself, for administration; `Some` only for kinds whose factory sets `admin`.
    pub admin: Option<crate::runtime::Host>,
}

/// A built backend instance.
///
/// Every capability is a defaulted method returning `None`, so a backend implements only what
/// it serves; the host treats `None` as "this instance does not speak that protocol".
pub trait Backend: Send + Sync + 'static {
    /// The HTTP service of an HTTP instance. The host calls it once after `build` and routes
    /// every request whose vhost and path prefix select this instance to the returned router,
    /// with the full original path. `None` from an HTTP kind is a build error.
    fn http_router(&self) -> Option<axum::Router> {
        None
    }

    /// Maintenance commands this instance offers to the admin console (for example
    /// `/site history <name>`, `/site rollback <name> <commit>`, `/oci gc <name>`). The host
    /// asks once after `build`; `None` means the instance has none.
    fn commands(&self) -> Option<Arc<dyn InstanceCommands>> {
        None
    }

    /// The session service of an SSH instance: the SSH frontend hands every authenticated
    /// session channel (exec or shell, with or without a terminal) to it. `None` for
    /// everything that does not speak SSH.
    fn ssh_service(&self) -> Option<Arc<dyn crate::frontend::ssh::SshService>> {
        None
    }
}

/// The future an instance command returns: its output text, or an error for the operator.
pub type CommandFuture = Pin<Box<dyn Future<Output = Result<String, CommandError>> + Send>>;

/// One console command an instance offers, for help and completion.
#[derive(Debug, Clone, Copy)]
pub struct CommandHelp {
    /// The subcommand word, e.g. `rollback`.
    pub name: &'static str,
    /// Arguments after the instance name, e.g. `<commit>`.
    pub args: &'static str,
    /// One line of help.
    pub summary: &'static str,
}

/// Console commands addressed to one instance: `/<backend> <command> <instance> <args...>`.
/// The console checks the caller's tier before calling; implementations authorize again with
/// `Auth::authorize` for anything instance-specific and record `actor` in their commits.
pub trait InstanceCommands: Send + Sync + 'static {
    /// The commands, in help order.
    fn help(&self) -> &'static [CommandHelp];

    /// Runs `command` with `args` (the words after the instance name) as `actor`.
    fn run(&self, actor: Principal, command: &str, args: Vec<String>) -> CommandFuture;
}

/// Why an instance command failed; the console prints it and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Wrong arguments; the message says what is wrong and shows the usage.
    #[error("{0}")]
    Usage(String),
    /// The caller may not do this.
    #[error("permission denied: {0}")]
    Denied(String),
    /// The command ran and failed.
    #[error("{0}")]
    Failed(String),
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

/// Registers a backend factory with the host at link time.
///
/// Backend crates call this with a `const` [`BackendFactory`] expression and never depend on
/// `inventory` themselves, so the registration mechanism stays a host detail. The crate that
/// calls it must be linked into the binary (see `src/linked.rs`), or the registration is
/// silently dropped by the linker.
#[macro_export]
macro_rules! register_backend {
    ($factory:expr) => {
        $crate::__private_inventory::submit! { $factory }
    };
}

inventory::collect!(BackendFactory);

/// Parses a settings table strictly into `T`, turning serde errors into [`BuildError`].
pub fn parse_settings<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
) -> Result<T, BuildError> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(BuildError::settings)
}
