//! `oci-http`: the OCI Distribution registry backend (distribution-spec v1.1, see
//! `docs/reference/oci.md` in the shared docs).
//!
//! Each instance is one registry on its vhosts under `/v2`, with its own versioned store:
//! blobs stream in and out of the store (never held in memory), every manifest push, tag move
//! and delete is a commit recording the principal, and upload sessions are the store's
//! resumable uploads, so they survive a restart.
//!
//! # Layout
//! - `registry`: instance state, the request dispatcher and authorization.
//! - `route`: parsing `/v2/...` paths right to left.
//! - `names`: the name, tag and digest grammars.
//! - `blobs`, `uploads`, `manifests`, `listing`: the endpoints.
//! - `layout`: where everything lives in the store.
//! - `gc`: garbage collection, used by `everlock oci gc` and the console.
//! - `commands`: the console commands of an instance (`commands/content.rs`: repos, tags,
//!   rm; `commands/observe.rs`: usage, webhooks).
//! - `retention`: retention rules (and the repository patterns, `retention/glob.rs`).
//! - `quota`: quotas and the cached usage index.
//! - `webhooks`: events, signing, and the durable delivery queue (`webhooks/worker.rs`).
//! - `ui`: the server-rendered web UI under `/ui/`, an extra path prefix of the instance.
//! - `settings`, `error`: settings and spec errors.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod blobs;
mod commands;
mod dispatch;
mod error;
mod gc;
mod layout;
mod listing;
mod manifests;
mod mirror;
mod names;
mod quota;
mod registry;
mod respond;
mod retention;
mod route;
mod settings;
mod token;
mod ui;
mod uploads;
mod webhooks;

use std::sync::Arc;

use everlock_host::api::PathPrefix;
use everlock_host::axum::Router;
use everlock_host::{
    Backend, BackendContext, BackendFactory, BackendKind, BuildError, ConsoleFamily,
    DefaultInstance, Frontend, InstanceCommands, OptionSpec, OptionValue, Service,
    register_backend,
};

pub use gc::{GcError, GcOptions, GcReport, gc};

/// The kind name.
pub const KIND: &str = "oci-http";

/// The zero-config instance's store (product.md §8).
pub const DEFAULT_STORE: &str = "everlock-oci-local";

/// The registry's registration: `check` and `build` derive from [`OciKind`]'s typed settings.
pub const FACTORY: BackendFactory = BackendFactory {
    default_instances,
    example_settings: settings::EXAMPLE_SETTINGS,
    access_root: Some("http/oci"),
    console: Some(ConsoleFamily {
        word: "oci",
        noun: "registry",
        default_prefix: Some("/v2"),
        create_options: &[
            OptionSpec {
                key: "allow-delete",
                summary: "<true|false>",
                required: false,
                allowed: &[],
                value: OptionValue::Bool,
            },
            OptionSpec {
                key: "upload-expiry-secs",
                summary: "<seconds>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "max-open-uploads",
                summary: "<count>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "max-manifest-bytes",
                summary: "<bytes>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "gc-grace-secs",
                summary: "<seconds>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "upstream",
                summary: "<https://upstream-registry>",
                required: false,
                allowed: &[],
                value: OptionValue::Text,
            },
            OptionSpec {
                key: "upstream-username",
                summary: "<login>",
                required: false,
                allowed: &[],
                value: OptionValue::Text,
            },
            OptionSpec {
                key: "upstream-tag-ttl-secs",
                summary: "<seconds>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "allow-push",
                summary: "<true|false>",
                required: false,
                allowed: &[],
                value: OptionValue::Bool,
            },
            // `auth=public|private` stays the console's access word; the registry's own
            // authentication scheme is told apart by its values.
            OptionSpec {
                key: "auth",
                summary: "<basic|token>",
                required: false,
                allowed: &["basic", "token"],
                value: OptionValue::Text,
            },
            // Structured settings are TOML inline values, quoted as one shell word:
            // `'/oci set default quota=[{repositories="team/*", bytes=1000000}]'`.
            OptionSpec {
                key: "retention",
                summary: "<[{repositories=..., keep-last=N, ...}]>",
                required: false,
                allowed: &[],
                value: OptionValue::Toml,
            },
            OptionSpec {
                key: "quota",
                summary: "<[{repositories=..., bytes=N}]>",
                required: false,
                allowed: &[],
                value: OptionValue::Toml,
            },
            OptionSpec {
                key: "webhooks",
                summary: "<[{url=..., events=[...], secret=...}]>",
                required: false,
                allowed: &[],
                value: OptionValue::Toml,
            },
        ],
        public_by_default: false,
        owner_on_create: false,
        commands: commands::HELP,
    }),
    ..BackendFactory::of::<OciKind>(
        KIND,
        "OCI Distribution registry (push, pull, referrers, delete, gc) on the versioned store",
    )
};

register_backend!(FACTORY);

/// The registry kind: its settings, their validation, the `/ui` they claim and the build.
pub(crate) struct OciKind;

impl BackendKind for OciKind {
    type Settings = settings::Settings;
    const FRONTEND: Frontend = Frontend::Http;

    fn validate(settings: &settings::Settings) -> Result<(), BuildError> {
        settings.validate().map_err(BuildError::Settings)
    }

    /// The web UI lives at `/ui` on the registry's vhosts, next to `/v2`.
    fn extra_prefixes(settings: &settings::Settings) -> Vec<PathPrefix> {
        if !settings.ui {
            return Vec::new();
        }
        match ui::BASE.parse() {
            Ok(prefix) => vec![prefix],
            Err(e) => {
                tracing::error!(error = %e, "oci: the UI prefix does not parse");
                Vec::new()
            }
        }
    }

    /// Cheap: wires state; the store opens on first use.
    fn build(
        ctx: BackendContext,
        settings: settings::Settings,
    ) -> Result<Box<dyn Backend>, BuildError> {
        let instance = ctx.instance.to_string();
        let mirror =
            mirror::Mirror::new(&instance, settings.mirror()).map_err(BuildError::Settings)?;
        let registry = Arc::new(
            registry::Registry::new(instance, ctx.store, ctx.auth, settings).with_mirror(mirror),
        );
        Ok(Box::new(Oci { registry }))
    }
}

fn default_instances() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: "default",
        vhosts: &["localhost"],
        prefix: "/v2",
        store: DEFAULT_STORE,
        public: false,
        seed: &[],
    }]
}

/// Builds one registry from its settings table (the factory's `build`), for tests.
#[cfg(test)]
fn build(
    ctx: BackendContext,
    table: &everlock_host::toml::Table,
) -> Result<Box<dyn Backend>, BuildError> {
    (FACTORY.build)(ctx, table)
}

/// Checks a settings table (the factory's `check`) and returns the prefixes it claims.
#[cfg(test)]
fn check(table: &everlock_host::toml::Table) -> Result<Vec<PathPrefix>, BuildError> {
    (FACTORY.check)(table)
}

struct Oci {
    registry: Arc<registry::Registry>,
}

impl Backend for Oci {
    fn service(&self) -> Service {
        Service::Http(
            Router::new()
                .fallback(dispatch::handle)
                .with_state(self.registry.clone()),
        )
    }

    fn commands(&self) -> Option<Arc<dyn InstanceCommands>> {
        Some(Arc::new(commands::Commands {
            registry: self.registry.clone(),
        }))
    }

    /// The maintenance task applies the retention rules before the store's GC.
    fn maintain(&self) -> Option<everlock_host::CommandFuture> {
        if self.registry.settings.retention.is_empty() {
            return None;
        }
        Some(Box::pin(commands::maintain(self.registry.clone())))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod console_declaration {
    /// Every console option the kind declares is a setting its own `check` accepts.
    #[test]
    fn console_options_are_settings_the_kind_accepts() {
        let registry = everlock_host::Registry::collect().unwrap();
        let factory = registry.get(super::KIND).unwrap();
        assert!(factory.console.is_some());
        factory.check_console().unwrap();
    }
}
