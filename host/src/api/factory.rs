//! A backend kind's registration: the const factory descriptor `inventory` collects, the
//! typed-settings trait it is derived from, the console family a kind declares and the
//! zero-config instances it proposes.

use serde::de::DeserializeOwned;

use super::backend::{Backend, BackendContext, BuildError, parse_settings};
pub use super::console::{ConsoleFamily, GENERIC_CONSOLE_KEYS, OptionSpec, OptionValue};
use super::frontend::Frontend;
use super::instance::InstanceSpec;
use super::names::{PathPrefix, ValueError};

/// Checks an instance's settings table strictly and returns the extra path prefixes it claims.
pub type CheckFn = fn(&toml::Table) -> Result<Vec<PathPrefix>, BuildError>;

/// Builds one instance from its context and kind-specific settings table.
pub type BuildFn = fn(BackendContext, &toml::Table) -> Result<Box<dyn Backend>, BuildError>;

/// A backend kind as its crate implements it: typed settings, their validation, the extra
/// prefixes they claim and the build. [`BackendFactory::of`] turns it into the plain function
/// pointers a registration carries, so `check` and `build` can never parse a table
/// differently.
pub trait BackendKind: 'static {
    /// The instance settings, deserialised strictly from the instance's settings table (use
    /// `#[serde(deny_unknown_fields)]`).
    type Settings: DeserializeOwned;

    /// The frontend that carries the kind's traffic; the host checks after every build that
    /// the instance's [`Service`](super::Service) is of this frontend.
    const FRONTEND: Frontend;

    /// Checks what the types cannot (ranges, combinations); runs before every build and in
    /// `everlock config check`.
    fn validate(settings: &Self::Settings) -> Result<(), BuildError> {
        let _ = settings;
        Ok(())
    }

    /// Path prefixes an instance with these settings serves besides its mount, on the same
    /// vhosts (the OCI registry's web UI at `/ui` next to its `/v2`). Declared by the settings
    /// rather than the built instance, so validation finds a conflict before anything is
    /// built: the host refuses a prefix another instance already has on one of the vhosts,
    /// exactly as for the mount, and routes such requests with their full original path.
    fn extra_prefixes(settings: &Self::Settings) -> Vec<PathPrefix> {
        let _ = settings;
        Vec::new()
    }

    /// Builds one instance from valid settings. An `Err` aborts startup (for instances from
    /// configuration) or rejects the live change that asked for the instance.
    fn build(ctx: BackendContext, settings: Self::Settings)
    -> Result<Box<dyn Backend>, BuildError>;
}

/// Parses and validates `table` as `K`'s settings.
fn parse_valid<K: BackendKind>(table: &toml::Table) -> Result<K::Settings, BuildError> {
    let settings = parse_settings::<K::Settings>(table)?;
    K::validate(&settings)?;
    Ok(settings)
}

/// The `check` of [`BackendFactory::of`].
fn check_settings<K: BackendKind>(table: &toml::Table) -> Result<Vec<PathPrefix>, BuildError> {
    parse_valid::<K>(table).map(|settings| K::extra_prefixes(&settings))
}

/// The `build` of [`BackendFactory::of`].
fn build_with<K: BackendKind>(
    ctx: BackendContext,
    table: &toml::Table,
) -> Result<Box<dyn Backend>, BuildError> {
    K::build(ctx, parse_valid::<K>(table)?)
}

/// A backend kind's registration: constant data plus plain function pointers, because
/// `inventory` only accepts `const`, `Sync`, `'static` values.
///
/// All real work (parsing settings, opening stores) happens inside `build`, never at
/// registration time. A kind normally starts from [`BackendFactory::of`], which derives
/// `frontend`, `check` and `build` from its [`BackendKind`] implementation, and fills in the
/// rest with struct update syntax.
#[derive(Debug)]
pub struct BackendFactory {
    /// Short kind name such as `oci-http`; lowercase letters, digits and `-`, unique.
    pub kind: &'static str,
    /// The frontend that carries this kind's traffic.
    pub frontend: Frontend,
    /// One line shown by `everlock backends`.
    pub summary: &'static str,
    /// Parses an instance's kind-specific settings table strictly, without side effects, and
    /// returns the extra path prefixes those settings claim (see [`BackendKind::extra_prefixes`]).
    /// `everlock config check` and every validation before a build call it; `build` must
    /// accept whatever it accepts. [`BackendFactory::of`] derives it from the kind's typed
    /// settings, together with `build`.
    pub check: CheckFn,
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

impl BackendFactory {
    /// The registration of kind `K` named `kind`: its frontend, `check` and `build` derived
    /// from `K`'s typed settings, so the settings are parsed by one declaration; no default
    /// instances, example settings, access root or console family until the kind names them.
    pub const fn of<K: BackendKind>(kind: &'static str, summary: &'static str) -> BackendFactory {
        BackendFactory {
            kind,
            frontend: K::FRONTEND,
            summary,
            check: check_settings::<K>,
            build: build_with::<K>,
            default_instances: Vec::new,
            example_settings: "",
            access_root: None,
            console: None,
        }
    }

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
                .map(drop)
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

impl DefaultInstance {
    /// The instance this declaration proposes for `kind`, in the one shape every instance
    /// has. A declaration whose names do not parse is an error the host reports at startup,
    /// never an instance silently left out.
    pub fn spec(&self, kind: &str) -> Result<InstanceSpec, ValueError> {
        Ok(InstanceSpec {
            store: Some(self.store.parse()?),
            ..InstanceSpec::parse(kind, self.name, self.vhosts, self.prefix)?
        })
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
