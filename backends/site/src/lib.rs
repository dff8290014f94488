//! `site-http`: static and Markdown websites served from each site's own versioned store.
//!
//! - Instances are sites; each has its vhosts, prefix, store and a `mode` (`html` or
//!   `markdown`). Access is `http/site/<name>`: every request needs read access (a public
//!   site is one where `anon` holds `reader`), so anonymous requests to a private site get 401
//!   with `WWW-Authenticate: Basic realm="site"` and authenticated ones without a grant 403.
//! - HTTP semantics (validators, conditional requests, ranges, redirects, MIME types,
//!   precompressed sidecars, cache and security headers, traversal) live in [`http`].
//! - Markdown rendering (pulldown-cmark, minijinja layouts, syntect, ammonia) lives in [`markdown`].
//! - `PUT <prefix>/.well-known/everlock/deploy` replaces the whole site in one commit
//!   ([`deploy`]); the console gets `history` and `rollback` through [`commands`].
//! - Zero-config: the default instance `welcome` on localhost is declared public with the
//!   built-in welcome page as seed content; the host provisions it once, when it first installs
//!   it, never on the request path.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod commands;
pub mod deploy;
pub mod http;
pub mod markdown;
pub mod rules;
pub mod settings;
pub mod site;
pub mod snapshot;
pub mod welcome;

use std::sync::Arc;

use everlock_host::auth::AccessPath;
use everlock_host::axum::Router;
use everlock_host::{
    Backend, BackendContext, BackendFactory, BackendKind, BuildError, ConsoleFamily,
    DefaultInstance, Frontend, InstanceCommands, OptionSpec, OptionValue, Service,
    register_backend,
};

use crate::settings::{EXAMPLE_SETTINGS, Settings};
use crate::site::SiteInner;

/// The kind name.
pub const KIND: &str = "site-http";

/// The site kind's registration: `check` and `build` derive from [`SiteKind`]'s typed settings.
pub const FACTORY: BackendFactory = BackendFactory {
    default_instances,
    example_settings: EXAMPLE_SETTINGS,
    access_root: Some("http/site"),
    console: Some(ConsoleFamily {
        word: "site",
        noun: "site",
        default_prefix: None,
        create_options: &[
            OptionSpec {
                key: "mode",
                summary: "<mode>",
                required: true,
                allowed: &["markdown", "html"],
                value: OptionValue::Text,
            },
            OptionSpec {
                key: "max-deploy-bytes",
                summary: "<bytes>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "max-deploy-files",
                summary: "<count>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "render-fuel",
                summary: "<fuel>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "static-max-age",
                summary: "<seconds>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
            OptionSpec {
                key: "hsts",
                summary: "<true|false>",
                required: false,
                allowed: &[],
                value: OptionValue::Bool,
            },
            OptionSpec {
                key: "hsts-include-subdomains",
                summary: "<true|false>",
                required: false,
                allowed: &[],
                value: OptionValue::Bool,
            },
            OptionSpec {
                key: "hsts-preload",
                summary: "<true|false>",
                required: false,
                allowed: &[],
                value: OptionValue::Bool,
            },
            OptionSpec {
                key: "keep-deploys",
                summary: "<count>",
                required: false,
                allowed: &[],
                value: OptionValue::Integer,
            },
        ],
        public_by_default: true,
        owner_on_create: true,
        commands: commands::HELP,
    }),
    ..BackendFactory::of::<SiteKind>(
        KIND,
        "static and Markdown websites with atomic deploys and rollback",
    )
};

register_backend!(FACTORY);

/// The site kind: typed settings and the build.
pub struct SiteKind;

impl BackendKind for SiteKind {
    type Settings = Settings;
    const FRONTEND: Frontend = Frontend::Http;

    /// Cheap: the store opens on the first request.
    fn build(ctx: BackendContext, settings: Settings) -> Result<Box<dyn Backend>, BuildError> {
        let resource = AccessPath::from_segments(["http", "site", ctx.instance.as_str()])
            .map_err(|e| BuildError::Failed(e.to_string()))?;
        Ok(Box::new(Site {
            inner: Arc::new(SiteInner::new(
                ctx.instance.to_string(),
                ctx.prefix.to_string(),
                settings,
                ctx.store,
                ctx.auth,
                resource,
            )),
        }))
    }
}

/// The zero-config welcome site on the loopback names.
fn default_instances() -> Vec<DefaultInstance> {
    vec![DefaultInstance {
        name: welcome::NAME,
        vhosts: &["localhost", "127.0.0.1", "::1"],
        prefix: "/",
        store: "site-http-welcome",
        public: true,
        seed: welcome::FILES,
    }]
}

/// Builds a site from its settings table (the factory's `build`).
pub fn build(
    ctx: BackendContext,
    table: &everlock_host::toml::Table,
) -> Result<Box<dyn Backend>, BuildError> {
    (FACTORY.build)(ctx, table)
}

/// One built site.
struct Site {
    inner: Arc<SiteInner>,
}

impl Backend for Site {
    fn service(&self) -> Service {
        // Every path goes through one handler: resolution is data-driven, not route-driven.
        Service::Http(
            Router::new()
                .fallback(http::serve::handle)
                .with_state(self.inner.clone()),
        )
    }

    fn commands(&self) -> Option<Arc<dyn InstanceCommands>> {
        Some(Arc::new(commands::SiteCommands {
            site: self.inner.clone(),
        }))
    }
}

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
