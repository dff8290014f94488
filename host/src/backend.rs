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
    /// The access-path root under which each instance's grants live (`http/site` means
    /// `http/site/<instance>` and below). The host removes every grant there when an instance
    /// is deleted, so re-creating the name never inherits old access; `None` for kinds that
    /// authorize nothing per instance.
    pub access_root: Option<&'static str>,
    /// The admin console family this kind declares (`/oci`, `/site`, `/hello`): the console
    /// builds `list|create|set|unset|delete` and the kind's maintenance commands from it, so
    /// a new kind gets console commands without console code. `None` for kinds the console
    /// does not administer.
    pub console: Option<ConsoleFamily>,
}

/// A backend kind's admin console family: everything the console needs to list, create,
/// edit and delete the kind's instances. Instance settings the console accepts are exactly
/// `create_options`, checked again by the factory's `check` when the host applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleFamily {
    /// The command word without its `/`, e.g. `oci` for `/oci`.
    pub word: &'static str,
    /// What one instance is called in console messages, e.g. `registry` or `site`.
    pub noun: &'static str,
    /// The path prefix a new instance gets when `create` names none (`/v2` for a registry).
    pub default_prefix: Option<&'static str>,
    /// The kind's settings keys `create` and `set` accept, besides the generic `vhost`,
    /// `store`, `prefix` (create only) and `auth` (kinds with an access root).
    pub create_options: &'static [OptionSpec],
    /// Whether a new instance is readable anonymously unless `auth=private` is given.
    pub public_by_default: bool,
    /// Whether the creator is granted `owner` on the new instance's access path.
    pub owner_on_create: bool,
    /// The maintenance commands every instance of the kind offers, for help and completion
    /// (the instance's own `InstanceCommands::help` decides what actually runs).
    pub commands: &'static [CommandHelp],
}

/// One kind-specific settings key a console family accepts as `key=value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// The settings key, e.g. `mode` or `allow-delete`.
    pub key: &'static str,
    /// The placeholder shown in usage when `allowed` is empty, e.g. `<text>`.
    pub summary: &'static str,
    /// Whether `create` needs it.
    pub required: bool,
    /// The only values accepted, or empty for any value of `value`'s type.
    pub allowed: &'static [&'static str],
    /// How the console turns the word into a settings value.
    pub value: OptionValue,
}

/// The TOML type a console option becomes in the settings table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionValue {
    /// A string.
    Text,
    /// `true` or `false`.
    Bool,
    /// A non-negative integer.
    Integer,
    /// A TOML inline value (`[{repositories="team/*", bytes=1000000}]`): structured settings
    /// such as a registry's quotas, retention rules and webhooks.
    Toml,
}

/// The `key=value` keys the console handles itself, which a kind may not declare.
pub const GENERIC_CONSOLE_KEYS: [&str; 5] = ["vhost", "store", "prefix", "auth", "https-redirect"];

impl BackendFactory {
    /// Checks the console declaration against the kind's own `check`: every declared option,
    /// with its value from `example_settings` (or else its first allowed value, or else a
    /// value of its declared type), is a valid settings table, and no key is declared twice or shadows a generic one. A kind's
    /// tests call it, so a declaration can never offer a setting the kind then rejects.
    pub fn check_console(&self) -> Result<(), BuildError> {
        let Some(console) = &self.console else {
            return Ok(());
        };
        let example: toml::Table = self
            .example_settings
            .parse()
            .map_err(BuildError::settings)?;
        for (i, o) in console.create_options.iter().enumerate() {
            let repeated = console
                .create_options
                .iter()
                .take(i)
                .any(|p| p.key == o.key);
            // `auth=` is the console's access word (`public`/`private`); a kind may still
            // declare an `auth` setting whose values are other words (a registry's
            // `basic`/`token`), which the console tells apart by value.
            let kind_auth = o.key == "auth"
                && !o.allowed.is_empty()
                && !o.allowed.iter().any(|v| *v == "public" || *v == "private");
            if repeated || (GENERIC_CONSOLE_KEYS.contains(&o.key) && !kind_auth) {
                return Err(BuildError::Settings(format!(
                    "console option `{}` is declared twice or shadows a generic key",
                    o.key
                )));
            }
            let value = match (o.allowed.first(), o.value) {
                _ if example.contains_key(o.key) => example
                    .get(o.key)
                    .cloned()
                    .unwrap_or(toml::Value::Boolean(false)),
                (Some(v), _) => toml::Value::String((*v).to_owned()),
                (None, OptionValue::Text) => toml::Value::String("x".to_owned()),
                (None, OptionValue::Bool) => toml::Value::Boolean(false),
                (None, OptionValue::Integer) => toml::Value::Integer(1),
                (None, OptionValue::Toml) => toml::Value::Array(Vec::new()),
            };
            let mut table = toml::Table::new();
            table.insert(o.key.to_owned(), value);
            (self.check)(&table)
                .map_err(|e| BuildError::Settings(format!("console option `{}`: {e}", o.key)))?;
        }
        Ok(())
    }
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
    /// Host administration: `Some` only for the one kind the composition root granted it
    /// (`Host::grant_administration`, the admin console), and only once the host has started;
    /// no factory can ask for it. Every other backend sees nothing but its own store.
    pub admin: Option<crate::runtime::HostAdmin>,
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

    /// Path prefixes this HTTP instance serves besides its mount, on the same vhosts (the
    /// OCI registry's web UI at `/ui` next to its `/v2`). The host routes them with the
    /// usual longest-prefix rule and refuses a prefix another instance already has on one
    /// of the vhosts, exactly as for the mount. The host asks once per routing table; the
    /// router receives such requests with their full original path.
    fn extra_prefixes(&self) -> Vec<PathPrefix> {
        Vec::new()
    }

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
