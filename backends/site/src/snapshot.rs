//! The site as of one store commit: every path with its entry, the directories they imply, and
//! lazily built Markdown state and rendered pages. A new commit means a new snapshot, so caches
//! keyed by the snapshot can never serve stale content.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use everlock_host::storage::{CommitId, CommitInfo, Entry, StorageError, Store};
use tokio::sync::OnceCell;

use crate::markdown::site::MarkdownSite;
use crate::rules::Rules;

/// A rendered response body with its strong ETag.
#[derive(Debug)]
pub struct RenderedPage {
    /// The HTML (or XML) bytes.
    pub body: Bytes,
    /// `"<blake3 prefix>"` of the body.
    pub etag: String,
    /// The body's blake3 hash (the key of its compressed forms).
    pub hash: [u8; 32],
}

impl RenderedPage {
    /// Wraps rendered output, hashing it for the ETag.
    pub fn new(body: String) -> RenderedPage {
        let hash = *blake3::hash(body.as_bytes()).as_bytes();
        RenderedPage {
            body: Bytes::from(body),
            etag: format!("\"r{}\"", hex_prefix(&hash)),
            hash,
        }
    }
}

/// One commit's view of the site.
#[derive(Debug)]
pub struct Snapshot {
    /// The commit, `None` for an empty store.
    pub commit: Option<CommitInfo>,
    /// Every file by store key.
    pub files: HashMap<String, Entry>,
    /// Every directory implied by the files (`""` is the root), by key.
    pub dirs: HashSet<String>,
    /// Markdown-mode state, built on first use.
    pub markdown: OnceCell<Arc<MarkdownSite>>,
    /// `_redirects` and `_headers`, parsed on first use.
    pub rules: OnceCell<Arc<Rules>>,
    /// Rendered pages by store key (plus `sitemap.xml`).
    rendered: Mutex<HashMap<String, Arc<RenderedPage>>>,
}

impl Snapshot {
    /// Lists the store at `commit`.
    pub async fn load(store: &Store, commit: Option<CommitInfo>) -> Result<Snapshot, StorageError> {
        let entries = match &commit {
            Some(c) => store.list_at("", c.id).await?,
            None => Vec::new(),
        };
        let mut files = HashMap::with_capacity(entries.len());
        let mut dirs = HashSet::new();
        dirs.insert(String::new());
        for entry in entries {
            let mut dir = entry.path.as_str();
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if !dirs.insert(parent.to_owned()) {
                    break;
                }
                dir = parent;
            }
            files.insert(entry.path.clone(), entry);
        }
        Ok(Snapshot {
            commit,
            files,
            dirs,
            markdown: OnceCell::new(),
            rules: OnceCell::new(),
            rendered: Mutex::new(HashMap::new()),
        })
    }

    /// The commit's seq, 0 for an empty store (compared with `Store::head_seq`).
    pub fn seq(&self) -> u64 {
        self.commit.as_ref().map_or(0, |c| c.seq)
    }

    /// The commit id, `None` for an empty store.
    pub fn commit_id(&self) -> Option<CommitId> {
        self.commit.as_ref().map(|c| c.id)
    }

    /// `Last-Modified`: the commit time, in whole seconds (HTTP dates have no fractions).
    pub fn last_modified(&self) -> Option<SystemTime> {
        let ms = self.commit.as_ref()?.time_ms;
        let secs = u64::try_from(ms / 1000).ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// A cached rendered page.
    pub fn rendered(&self, key: &str) -> Option<Arc<RenderedPage>> {
        self.rendered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Caches a rendered page.
    pub fn store_rendered(&self, key: &str, page: Arc<RenderedPage>) {
        self.rendered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), page);
    }
}

/// The first 16 bytes of a hash as hex: 128 bits is plenty for a validator.
pub fn hex_prefix(bytes: &[u8]) -> String {
    hex::encode(bytes.get(..16).unwrap_or(bytes))
}
