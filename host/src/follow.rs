//! Following the instance records of `everlock-system` that other nodes commit.
//!
//! Nodes sharing their stores (PostgreSQL metadata) share the runtime instance records too:
//! `/oci create`, `/site set` or a delete on one node is a commit to `everlock-system`, and
//! every other node re-applies the persisted records within a second of its notification.
//! The re-application is the startup path again (the configuration file overlaid with the
//! records, validated as a whole, instances built by their factories), so there is no second
//! validator; only the instances whose resolved form changed are rebuilt.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use everlock_storage::{Expected, Precondition, StorageError, Store};
use tokio_util::sync::CancellationToken;

use crate::admin::error::AdminError;
use crate::admin::records::overlay;
use crate::api::InstanceSpec;
use crate::config::InstanceName;
use crate::instance::Instance;
use crate::runtime::{AdminState, Host, HostError};

/// Re-applies the instance records every time the system store's HEAD moves, until
/// `shutdown`. A notification of this node's own change finds the state current and does
/// nothing.
pub(crate) fn spawn(host: &Host, system: &Store, shutdown: CancellationToken) {
    let mut changes = system.changes();
    // A change that landed between startup reading the HEAD and this subscription would
    // otherwise wait for the next one: look once at the start.
    changes.mark_changed();
    let weak = host.downgrade();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            let seq = *changes.borrow_and_update();
            // This node's own commits need nothing; only then is the host held, so this
            // task never keeps a stopped server's stores open.
            if seq <= weak.seen.load(Ordering::SeqCst) {
                continue;
            }
            let Some(host) = weak.upgrade() else {
                return;
            };
            let mut state = host.admin_state().lock().await;
            if let Err(e) = catch_up(&host, &mut state).await {
                // The records are another node's validated changes: failing to apply them
                // here (a kind this binary lacks, a store error) must not stop this node
                // serving what it has; the next change tries again.
                tracing::warn!(error = %e, "cannot apply the instance changes of another node");
            }
        }
    });
}

/// Brings the live table and the effective configuration up to the system store's HEAD, when
/// it moved since they were last applied. The caller holds the admin lock, so this never
/// interleaves with a local change.
pub(crate) async fn catch_up(host: &Host, state: &mut AdminState) -> Result<(), AdminError> {
    let Some(system) = state.system.clone() else {
        return Ok(());
    };
    let seq = system.head().await?.map_or(0, |c| c.seq);
    if seq == state.seq {
        return Ok(());
    }
    let mut config = state.base.clone();
    overlay(&mut config, host, &system).await?;
    let plan = config
        .plan(host.registry(), None)
        .map_err(AdminError::from)?;
    let wanted: Vec<_> = plan.instances().collect();
    let snapshot = host.table().snapshot();
    let mut built = Vec::new();
    for &spec in &wanted {
        let unchanged = snapshot
            .get(&spec.kind, &spec.name)
            .is_some_and(|live| same(live, &spec));
        if !unchanged {
            built.push(host.build_instance(spec)?);
        }
    }
    let keep: BTreeSet<(&str, &InstanceName)> =
        wanted.iter().map(|s| (s.kind.as_str(), &s.name)).collect();
    let removed: Vec<(&'static str, InstanceName)> = snapshot
        .instances()
        .filter(|i| !keep.contains(&(i.kind, &i.name)))
        .map(|i| (i.kind, i.name.clone()))
        .collect();
    if !built.is_empty() || !removed.is_empty() {
        tracing::info!(
            changed = built.len(),
            removed = removed.len(),
            "applying instance changes made on another node"
        );
        host.table()
            .apply(built, &removed)
            .map_err(HostError::from)?;
    }
    state.config = config;
    state.seq = seq;
    host.seen().store(seq, Ordering::SeqCst);
    Ok(())
}

/// The precondition that makes a change to the record at `path` fail when another node
/// changed the record after the state this node applied (HEAD seq `seen`) and validated the
/// change against.
pub(crate) async fn record_precondition(
    system: &Store,
    path: &str,
    seen: u64,
) -> Result<Precondition, AdminError> {
    let expected = match system.stat(path).await? {
        None => Expected::Absent,
        Some(entry) if entry.version <= seen => Expected::Version(entry.version),
        Some(_) => return Err(AdminError::ChangedElsewhere),
    };
    Ok(Precondition {
        path: path.to_owned(),
        expected,
    })
}

/// A failed precondition is another node's concurrent change, said so; other errors pass.
pub(crate) fn concurrent(e: StorageError) -> AdminError {
    match e {
        StorageError::Conflict { .. } => AdminError::ChangedElsewhere,
        other => AdminError::Storage(other),
    }
}

/// Whether the live instance is what `spec` asks for (so it need not be rebuilt): it was built
/// from an equal spec, so a field added to the spec can never be forgotten here. Stores are
/// compared resolved, so a derived store equals the same store named explicitly.
fn same(live: &Instance, spec: &InstanceSpec) -> bool {
    live.store == spec.store_name()
        && live.spec
            == InstanceSpec {
                store: live.spec.store.clone(),
                ..spec.clone()
            }
}

#[cfg(test)]
mod tests;
