//! The plugin host core of Everlock.
//!
//! The host knows nothing about registries or websites: backend kinds register a
//! [`BackendFactory`] through [`register_backend!`], the host collects them into a
//! [`Registry`], builds configured instances into a live, atomically swapped
//! [`InstanceTable`], and its frontends route traffic to them.
//!
//! # Layout
//! - `api`: the contract every backend compiles against, a leaf that imports nothing else of
//!   the host: validated names and host-name normalisation, the factory descriptor and its
//!   typed-settings `BackendKind`, the build context, the `Backend` trait and its `Service`,
//!   instance commands, the SSH session, HTTP authentication helpers, `Scheme`, the instance
//!   store and the `HostAdmin` capability. Its items are re-exported at the crate root.
//! - `registry`: compiled-in kinds, collected once and sorted.
//! - `config`: strict TOML configuration, newtypes and the flag/env override layer; `plan`
//!   resolves the effective instances and validates the whole configuration once (routes with
//!   the extra prefixes settings claim, store ownership) before anything is built.
//! - `instance`, `routes`: live instances and the vhost/prefix routing table.
//! - `runtime`: the running [`Host`], building instances through their factories and
//!   checking each built `Service` against the kind's frontend; `runtime/start` is startup.
//! - `admin`: live, persisted administration of instances and backend kinds (`admin/error`
//!   its typed `AdminError`, `admin/records` the records in `everlock-system` and their
//!   overlay); `admin_stores` and `admin_tls` the `/store` and `/tls` operations.
//! - `follow`: with shared storage, re-applies instance records other nodes committed.
//! - `provision`: the one-time set-up of zero-config default instances.
//! - `tls`: certificate choice, the local CA, configured certificates and ACME.
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
pub mod api;
pub mod config;
mod follow;
pub mod frontend;
pub mod instance;
mod maintenance;
pub mod metrics;
mod provision;
pub mod registry;
pub mod routes;
pub mod runtime;
pub mod server;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod tls;

pub use api::http_auth;
pub use api::{AdminError, KindInfo, StoreAdminError, TlsAdminError};
pub use api::{
    AdminFuture, Backend, BackendContext, BackendFactory, BackendInfo, BackendKind, BuildError,
    CommandError, CommandFuture, CommandHelp, ConsoleFamily, DefaultInstance, Frontend, HostAdmin,
    InstanceCommands, InstanceEdit, InstanceInfo, InstanceSpec, InstanceStore, OptionSpec,
    OptionValue, Pty, Scheme, Service, SessionFuture, SessionInput, SessionKind, SessionOutput,
    SessionOutputChunk, SessionPipe, SshService, SshSession, parse_settings,
};
pub use registry::{Registry, RegistryError};
pub use routes::{InstanceTable, RouteError};
pub use runtime::{Host, HostError};

/// Re-exported so backends use the host's exact versions.
pub use axum;
pub use everlock_auth as auth;
pub use everlock_storage as storage;
pub use http;
pub use toml;

#[doc(hidden)]
pub use inventory as __private_inventory;
