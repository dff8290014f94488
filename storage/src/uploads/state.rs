//! The in-process state of the upload sessions (their directory and live hash states), kept
//! apart from the session logic in `uploads.rs` so that the store's shared state can hold it
//! without the store and the upload code importing each other.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Result;
use crate::hashing::MultiHasher;

/// The running hash of a session's first `offset` bytes.
pub(super) struct Hashed {
    /// The hasher over those bytes.
    pub(super) hasher: MultiHasher,
    /// How many bytes it has seen.
    pub(super) offset: u64,
}

/// The lock and cached hash of one session, shared by the requests that touch it.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<Hashed>>>;

/// The in-process side of the sessions: their directory and the live hash states.
pub(crate) struct Uploads {
    /// `<store>/uploads`, which holds the single-node session files.
    pub(super) dir: PathBuf,
    /// The slots of the sessions this process has touched, by session id.
    pub(super) live: Mutex<HashMap<String, Slot>>,
    /// Keeps sessions as parts in a single-node store too (tests of the shared code path).
    pub(super) parts_forced: AtomicBool,
    /// When this handle last swept orphaned parts (ms since the epoch; 0: never).
    pub(super) last_sweep_ms: AtomicI64,
}

impl fmt::Debug for Uploads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uploads").field("dir", &self.dir).finish()
    }
}

impl Uploads {
    /// Uses `<store>/uploads`, creating it if needed.
    pub(crate) fn open(store_dir: &Path) -> Result<Uploads> {
        let dir = store_dir.join("uploads");
        if !dir.is_dir() {
            crate::perms::create_dir(&dir)?;
            sync_dir(store_dir)?;
        }
        Ok(Uploads {
            dir,
            live: Mutex::new(HashMap::new()),
            parts_forced: AtomicBool::new(false),
            last_sweep_ms: AtomicI64::new(0),
        })
    }

    /// Makes a single-node store keep its sessions as parts, like a shared one.
    #[cfg(test)]
    pub(crate) fn force_parts(&self) {
        self.parts_forced
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn file(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The lock of one session: held while a request appends to or finishes it.
    pub(super) fn slot(&self, id: &str) -> Slot {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    pub(super) fn forget(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Drops the slots of sessions that no longer have a row. In a shared store a session
    /// appended here may be finished or cancelled on another node, which cannot forget this
    /// node's slot; without this the slots of such sessions would pile up. A slot someone
    /// holds right now (its `Arc` is shared) stays.
    pub(super) fn retain_slots(&self, rows: &std::collections::HashSet<&str>) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|id, slot| rows.contains(id.as_str()) || Arc::strong_count(slot) > 1);
    }
}

/// Makes a directory entry change (a new or removed session file) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}
