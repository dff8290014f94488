//! Where a store's HEAD seq is published: one `tokio::sync::watch` per store name, shared by
//! every handle of that store in the process ([`crate::Store::changes`],
//! [`crate::Store::head_seq`]).
//!
//! A commit made through this process moves the watch at once. In shared mode (PostgreSQL
//! metadata) the manager's listener (`meta/postgres/notify.rs`) also moves it when another
//! node commits, so caches keyed by HEAD (site snapshots, the directory of users) follow
//! within a second. The senders live in the manager's [`Hub`], not in the open store, so a
//! receiver taken before a store was closed and reopened keeps working.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

/// The watches of every store a manager has opened.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    senders: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Hub {
    /// The watch of store `name`, created at 0 on first use.
    pub(crate) fn sender(&self, name: &str) -> watch::Sender<u64> {
        self.senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .clone()
    }

    /// Whether store `name` has a watch (has been opened by this manager).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }

    /// The stores with a watch.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Moves the watch of `name` forward to `seq` (never back); nothing for an unknown store.
    pub(crate) fn advance(&self, name: &str, seq: u64) {
        let sender = self
            .senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        if let Some(sender) = sender {
            advance(&sender, seq);
        }
    }
}

/// Moves `sender` forward to `seq`, waking receivers only when it actually moved. Commits of
/// several threads may report out of order; HEAD only ever grows.
pub(crate) fn advance(sender: &watch::Sender<u64>, seq: u64) {
    sender.send_if_modified(|current| {
        if seq > *current {
            *current = seq;
            true
        } else {
            false
        }
    });
}
