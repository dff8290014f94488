//! The plugin host core of Everlock.
//!
//! The host knows nothing about registries or websites: backend kinds register a
//! [`BackendFactory`] through [`register_backend!`], the host collects them into a
//! [`Registry`], builds configured instances into a live, atomically swapped
//! [`InstanceTable`], and its frontends route traffic to them.
//!
//! # Layout
//! - `backend`: the factory descriptor, build context, `Backend` trait and registration macro.
//! - `registry`: compiled-in kinds, collected once and sorted.
//! - `config`: strict TOML configuration, newtypes and the flag/env override layer.
//! - `vhost`: host-name normalisation shared by configuration and routing.
//! - `instance`, `routes`: live instances and the vhost/prefix routing table.
//! - `runtime`: the running [`Host`] and the live operations on its table.
//! - `admin`: live, persisted administration of instances and backend kinds.
//! - `provision`: the one-time set-up of zero-config default instances.
//! - `store`: the lazily opened store handle each instance receives.
//! - `http_auth`: HTTP Basic authentication of requests for HTTP backends.
//! - `frontend`: HTTP(S) listeners and TLS (the only code that touches sockets).
//! - `server`: binding, serving and graceful shutdown.
//! - `maintenance`: the stores' retention + object GC on a schedule and on demand.
//! - `metrics`: the Prometheus registry, the access log and the metrics listener.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod admin;
pub mod admin_stores;
pub mod admin_tls;
pub mod backend;
pub mod config;
mod follow;
pub mod frontend;
pub mod http_auth;
pub mod instance;
mod maintenance;
pub mod metrics;
mod provision;
pub mod registry;
pub mod routes;
pub mod runtime;
pub mod server;
pub mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod tls;
pub mod vhost;

pub use admin::{AdminError, BackendInfo, InstanceEdit, InstanceInfo, InstanceSpec};
pub use backend::{
    Backend, BackendContext, BackendFactory, BuildError, CommandError, CommandFuture, CommandHelp,
    ConsoleFamily, DefaultInstance, Frontend, InstanceCommands, OptionSpec, OptionValue,
    parse_settings,
};
pub use frontend::ssh::{
    Pty, SessionFuture, SessionInput, SessionKind, SessionOutput, SessionOutputChunk, SessionPipe,
    SshService, SshSession,
};
pub use registry::{Registry, RegistryError};
pub use routes::{InstanceTable, RouteError};
pub use runtime::{Host, HostAdmin, HostError};
pub use store::InstanceStore;

/// Re-exported so backends use the host's exact versions.
pub use axum;
pub use everlock_auth as auth;
pub use everlock_storage as storage;
pub use http;
pub use toml;

#[doc(hidden)]
pub use inventory as __private_inventory;
