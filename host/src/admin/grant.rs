//! The [`HostAdmin`] capability as the host implements it: every method delegates to the
//! host's own validated, persisted administration API.
//!
//! The type behind it (`runtime::Administration`) is private to this crate, so outside the
//! host nothing can make one, name it or reach the host inside: a backend that implements
//! `HostAdmin` itself gets a trait object that administers nothing.

use std::sync::Arc;
use std::time::Duration;

use everlock_auth::{Auth, Principal};
use everlock_storage::{CommitInfo, RetentionPolicy, VerifyReport};

use crate::api::{
    AdminError, AdminFuture, BackendInfo, HostAdmin, InstanceCommands, InstanceEdit, InstanceInfo,
    InstanceSpec, KindInfo, StoreAdminError, StoreGc, StoreRow, TlsAdminError, TlsRow,
};
use crate::runtime::Administration;

impl HostAdmin for Administration {
    fn auth(&self) -> &Auth {
        self.host.auth()
    }

    fn kinds(&self) -> Vec<KindInfo> {
        self.host
            .registry()
            .factories()
            .map(|f| KindInfo {
                kind: f.kind,
                access_root: f.access_root,
                console: f.console.as_ref(),
            })
            .collect()
    }

    fn backends(&self) -> AdminFuture<'_, Vec<BackendInfo>> {
        Box::pin(self.host.backends())
    }

    fn instances(&self) -> Vec<InstanceInfo> {
        self.host.instances()
    }

    fn instance_commands(&self, kind: &str, name: &str) -> Option<Arc<dyn InstanceCommands>> {
        self.host.instance_commands(kind, name)
    }

    fn create_instance<'a>(
        &'a self,
        actor: &'a Principal,
        spec: InstanceSpec,
    ) -> AdminFuture<'a, Result<(), AdminError>> {
        Box::pin(self.host.create_instance(actor, spec))
    }

    fn update_instance<'a>(
        &'a self,
        actor: &'a Principal,
        kind: &'a str,
        name: &'a str,
        edit: InstanceEdit,
    ) -> AdminFuture<'a, Result<(), AdminError>> {
        Box::pin(self.host.update_instance(actor, kind, name, edit))
    }

    fn delete_instance<'a>(
        &'a self,
        actor: &'a Principal,
        kind: &'a str,
        name: &'a str,
    ) -> AdminFuture<'a, Result<(), AdminError>> {
        Box::pin(self.host.delete_instance(actor, kind, name))
    }

    fn set_backend_enabled<'a>(
        &'a self,
        actor: &'a Principal,
        kind: &'a str,
        enabled: bool,
    ) -> AdminFuture<'a, Result<(), AdminError>> {
        Box::pin(self.host.set_backend_enabled(actor, kind, enabled))
    }

    fn store_names(&self) -> Vec<String> {
        self.host.store_names()
    }

    fn store_list<'a>(
        &'a self,
        actor: &'a Principal,
    ) -> AdminFuture<'a, Result<Vec<StoreRow>, StoreAdminError>> {
        Box::pin(self.host.store_list(actor))
    }

    fn store_log<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
        n: u64,
    ) -> AdminFuture<'a, Result<Vec<CommitInfo>, StoreAdminError>> {
        Box::pin(self.host.store_log(actor, name, n))
    }

    fn store_verify<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
    ) -> AdminFuture<'a, Result<VerifyReport, StoreAdminError>> {
        Box::pin(self.host.store_verify(actor, name))
    }

    fn store_gc<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
        grace: Duration,
        dry_run: bool,
    ) -> AdminFuture<'a, Result<StoreGc, StoreAdminError>> {
        Box::pin(self.host.store_gc(actor, name, grace, dry_run))
    }

    fn store_set_retention<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
        policy: RetentionPolicy,
    ) -> AdminFuture<'a, Result<(), StoreAdminError>> {
        Box::pin(self.host.store_set_retention(actor, name, policy))
    }

    fn tls_list<'a>(
        &'a self,
        actor: &'a Principal,
    ) -> AdminFuture<'a, Result<Vec<TlsRow>, TlsAdminError>> {
        Box::pin(self.host.tls_list(actor))
    }

    fn tls_renew<'a>(
        &'a self,
        actor: &'a Principal,
        name: &'a str,
    ) -> AdminFuture<'a, Result<(), TlsAdminError>> {
        Box::pin(self.host.tls_renew(actor, name))
    }
}
