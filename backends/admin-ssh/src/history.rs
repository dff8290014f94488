//! Command history kept per user across sessions, in the console's own store
//! (`admin-ssh-console`, path `history/<login>`): loaded when a terminal session starts,
//! saved once when it ends. Lines with passwords never enter the history, so none is stored.
//!
//! Bounded: at most [`MAX_SAVED`] lines of at most [`MAX_LINE`] characters per user, and the
//! store keeps the content of its last [`KEEP_COMMITS`] commits only (set when the store is
//! first written, so an operator's later `/store retention` choice stands).

use everlock_host::InstanceStore;
use everlock_host::auth::Principal;
use everlock_host::storage::{CommitMeta, RetentionPolicy, StorageError};

use crate::editor::MAX_LINE;

/// Lines kept per user.
pub const MAX_SAVED: usize = 500;

/// The retention the console's store gets when it is first written: older histories are
/// superseded copies, worth nothing once a newer one is saved.
const KEEP_COMMITS: u64 = 20;

/// Where sessions load and save their history; without a store (tests building a bare
/// console) history lives for one session only.
#[derive(Debug, Clone, Default)]
pub struct HistoryStore {
    store: Option<InstanceStore>,
}

impl HistoryStore {
    /// History kept in `store`.
    pub fn new(store: InstanceStore) -> HistoryStore {
        HistoryStore { store: Some(store) }
    }

    /// The history of `actor` (oldest first); empty for `anon`, `system` or on any error.
    pub async fn load(&self, actor: &Principal) -> Vec<String> {
        let (Some(store), Some(path)) = (&self.store, path(actor)) else {
            return Vec::new();
        };
        let bytes = match store.get().await {
            Ok(store) => match store.read(&path).await {
                Ok(bytes) => bytes,
                Err(StorageError::NotFound(_)) => return Vec::new(),
                Err(e) => {
                    tracing::warn!(error = %e, "console history not loaded");
                    return Vec::new();
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "console history not loaded");
                return Vec::new();
            }
        };
        bound(String::from_utf8_lossy(&bytes).lines().map(str::to_owned))
    }

    /// Saves `lines` as `actor`'s history when they differ from `loaded`; a failure (a full
    /// disk, say) costs only the history and is logged.
    pub async fn save(&self, actor: &Principal, loaded: &[String], lines: &[String]) {
        let (Some(store), Some(path)) = (&self.store, path(actor)) else {
            return;
        };
        let lines = bound(lines.iter().cloned());
        if lines == loaded {
            return;
        }
        let mut text = lines.join("\n");
        text.push('\n');
        if let Err(e) = write(store, &path, actor, text.into_bytes()).await {
            tracing::warn!(error = %e, "console history not saved");
        }
    }
}

async fn write(
    store: &InstanceStore,
    path: &str,
    actor: &Principal,
    bytes: Vec<u8>,
) -> Result<(), StorageError> {
    let store = store.get().await?;
    if store.head_seq() == 0 {
        store
            .set_retention_policy(RetentionPolicy::KeepCommits(KEEP_COMMITS))
            .await?;
    }
    store
        .write(
            path,
            bytes,
            CommitMeta::new(actor.name(), "console history"),
        )
        .await?;
    Ok(())
}

/// `history/<login>` for a user; logins are lowercase letters, digits and `-`, so the path
/// is always valid.
fn path(actor: &Principal) -> Option<String> {
    actor
        .login()
        .filter(|l| !l.is_anon())
        .map(|l| format!("history/{l}"))
}

/// The newest [`MAX_SAVED`] non-empty lines, each cut to [`MAX_LINE`] characters.
fn bound(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(MAX_LINE).collect())
        .collect();
    let excess = out.len().saturating_sub(MAX_SAVED);
    out.drain(..excess);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_to_the_newest_lines() {
        let lines = (0..MAX_SAVED + 5).map(|i| format!("/users grants u{i}"));
        let kept = bound(lines.chain([String::new(), "x".repeat(MAX_LINE + 9)]));
        assert_eq!(kept.len(), MAX_SAVED);
        assert_eq!(kept[0], "/users grants u6");
        assert_eq!(kept[MAX_SAVED - 1].len(), MAX_LINE);
        assert_eq!(path(&Principal::anon()), None);
        assert_eq!(
            path(&Principal::test_user("ann")).as_deref(),
            Some("history/ann")
        );
    }
}
