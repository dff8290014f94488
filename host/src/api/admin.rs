//! Host administration as the contract carries it: the [`HostAdmin`] capability the host
//! hands to the one kind the composition root named, and the views administration speaks
//! (instances and kinds as listed, a new instance, a change to one).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use everlock_auth::{Auth, Principal};
use everlock_storage::{CommitInfo, RetentionPolicy, VerifyReport};

use super::admin_error::{AdminError, StoreAdminError, TlsAdminError};
use super::admin_views::{StoreGc, StoreRow, TlsRow};
use super::console::{ConsoleFamily, InstanceCommands};
use super::frontend::Frontend;
use super::instance::{InstanceEdit, InstanceSpec};

/// The future an asynchronous [`HostAdmin`] operation returns.
pub type AdminFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The capability to administer the running host: list, create, change and delete instances,
/// enable kinds, manage stores and TLS, all through the host's validated, persisted API.
///
/// The host hands one to the instances of the one kind the composition root granted it
/// (`Host::grant_administration`, the admin console) in `BackendContext::admin`, and only once
/// the host has started. The object behind it is private to the host, so a backend can neither
/// make one nor reach the host through one; every change is checked against `actor` (system
/// administrators only) and committed as `actor`.
pub trait HostAdmin: Send + Sync {
    /// The shared authentication and authorization service (users, groups, grants).
    fn auth(&self) -> &Auth;

    /// Every compiled-in kind as the console sees it, in kind order.
    fn kinds(&self) -> Vec<KindInfo>;

    /// Every compiled-in kind and whether it is enabled.
    fn backends(&self) -> AdminFuture<'_, Vec<BackendInfo>>;

    /// Every live instance, by kind and name.
    fn instances(&self) -> Vec<InstanceInfo>;

    /// The console commands of instance `kind/name`, if it offers any.
    fn instance_commands(&self, kind: &str, name: &str) -> Option<Arc<dyn InstanceCommands>>;

    /// Creates an instance live.
    fn create_instance<'a>(
        &'a self,
        actor: &'a Principal,
        spec: InstanceSpec,
    ) -> AdminFuture<'a, Result<(), AdminError>>;

    /// Changes an instance live (vhosts, store, settings); requests in flight finish on the
    /// old one.
    fn update_instance<'a>(
        &'a self,
        actor: &'a Principal,
        kind: &'a str,
        name: &'a str,
        edit: InstanceEdit,
    ) -> AdminFuture<'a, Result<(), AdminError>>;

    /// Deletes an instance live; its store is kept.
    fn delete_instance<'a>(
        &'a self,
        actor: &'a Principal,
        kind: &'a str,
        name: &'a str,
    ) -> AdminFuture<'a, Result<(), AdminError>>;

    /// Enables or disables a whole backend kind live.
    fn set_backend_enabled<'a>(
        &'a self,
        actor: &'a Principal,
        kind: &'a str,
        enabled: bool,
    ) -> AdminFuture<'a, Result<(), AdminError>>;

    /// The names of every store in the data directory, sorted (for completion).
    fn store_names(&self) -> Vec<String>;

    /// Every store with who uses it and its figures.
    fn store_list<'a>(
        &'a self,
        actor: &'a Principal,
    ) -> AdminFuture<'a, Result<Vec<StoreRow>, StoreAdminError>>;

    /// The newest `n` commits of store `name`, newest first (bounded by the host).
    fn store_log<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
        n: u64,
    ) -> AdminFuture<'a, Result<Vec<CommitInfo>, StoreAdminError>>;

    /// Re-hashes every object of store `name` and re-checks its hash chain.
    fn store_verify<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
    ) -> AdminFuture<'a, Result<VerifyReport, StoreAdminError>>;

    /// Applies the retention policy of store `name`, then collects garbage older than
    /// `grace`; `dry_run` reports without changing anything.
    fn store_gc<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
        grace: Duration,
        dry_run: bool,
    ) -> AdminFuture<'a, Result<StoreGc, StoreAdminError>>;

    /// Sets the retention policy of store `name`.
    fn store_set_retention<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
        policy: RetentionPolicy,
    ) -> AdminFuture<'a, Result<(), StoreAdminError>>;

    /// Every name with a certificate source, sorted by name.
    fn tls_list<'a>(
        &'a self,
        actor: &'a Principal,
    ) -> AdminFuture<'a, Result<Vec<TlsRow>, TlsAdminError>>;

    /// Orders a new ACME certificate for `name` now (in the background).
    fn tls_renew<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
    ) -> AdminFuture<'a, Result<(), TlsAdminError>>;
}

impl fmt::Debug for dyn HostAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostAdmin")
    }
}

/// An instance as listed: the spec it runs, with its store resolved (always `Some`). The
/// listing needs nothing the spec does not say, so it is the spec.
pub type InstanceInfo = InstanceSpec;

/// A backend kind as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// Kind.
    pub kind: &'static str,
    /// Frontend.
    pub frontend: Frontend,
    /// Whether it is enabled.
    pub enabled: bool,
    /// One line of description.
    pub summary: &'static str,
}

/// A compiled-in backend kind as administration sees it: what the console needs to offer the
/// kind's family, without the kind's build machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// Kind.
    pub kind: &'static str,
    /// The access-path root of the kind's instances (`<root>/<instance>`), if it has one.
    pub access_root: Option<&'static str>,
    /// The console family the kind declares, if any.
    pub console: Option<&'static ConsoleFamily>,
}
