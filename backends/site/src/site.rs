//! One built site instance: its settings, store, access path and caches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use everlock_host::InstanceStore;
use everlock_host::auth::{AccessControl, AccessPath};
use everlock_host::storage::{CommitId, Entry, ObjectId, RetentionPolicy, StorageError, Store};

use crate::http::compress::CompressCache;
use crate::markdown::check::CommitFiles;
use crate::markdown::site::MarkdownSite;
use crate::rules::{self, Rules};
use crate::settings::{DEFAULT_KEEP_DEPLOYS, Settings};
use crate::snapshot::Snapshot;

/// Files up to this size are kept in memory after their first read (content never changes for
/// an object id, so the cache cannot go stale).
const SMALL_FILE: u64 = 1024 * 1024;
/// The memory the small-file cache may hold before it is emptied.
const SMALL_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// State shared by every request to one site instance.
#[derive(Debug)]
pub struct SiteInner {
    /// The instance name.
    pub name: String,
    /// The instance prefix (`/` or `/docs`).
    pub prefix: String,
    /// The strict settings.
    pub settings: Settings,
    /// The instance's own store.
    pub store: InstanceStore,
    /// Authentication and authorization.
    pub auth: AccessControl,
    /// `http/site/<name>`.
    pub resource: AccessPath,
    /// The newest snapshot seen.
    current: Mutex<Option<Arc<Snapshot>>>,
    /// Serialises snapshot rebuilds so a burst of requests after a deploy lists the store once.
    rebuild: tokio::sync::Mutex<()>,
    /// Small file contents by object id.
    small: Mutex<SmallCache>,
    /// Set once the store's retention policy matches `keep-deploys` (see `store`).
    retention: tokio::sync::OnceCell<()>,
    /// Compressed bodies by content hash and coding, bounded by bytes.
    pub compressed: CompressCache,
}

#[derive(Debug, Default)]
struct SmallCache {
    bytes: usize,
    map: HashMap<ObjectId, Bytes>,
}

impl SiteInner {
    /// Builds the instance state (cheap: the store opens on first use).
    pub fn new(
        name: String,
        prefix: String,
        settings: Settings,
        store: InstanceStore,
        auth: AccessControl,
        resource: AccessPath,
    ) -> SiteInner {
        SiteInner {
            name,
            prefix,
            settings,
            store,
            auth,
            resource,
            current: Mutex::new(None),
            rebuild: tokio::sync::Mutex::new(()),
            small: Mutex::new(SmallCache::default()),
            retention: tokio::sync::OnceCell::new(),
            compressed: CompressCache::default(),
        }
    }

    /// The open store. The first call also puts the site's retention in place, so that only
    /// the last `keep-deploys` deploys keep their bytes; if that fails (a full disk), the
    /// request goes on and a later one tries again.
    pub async fn store(&self) -> Result<&Store, StorageError> {
        let store = self.store.get().await?;
        let init = self
            .retention
            .get_or_try_init(|| self.apply_retention(store))
            .await;
        if let Err(e) = init {
            tracing::warn!(site = %self.name, error = %e, "site: cannot set the retention policy");
        }
        Ok(store)
    }

    /// A configured `keep-deploys` is the policy; without one, a store that has no policy yet
    /// gets the default, and an operator's earlier choice stays.
    async fn apply_retention(&self, store: &Store) -> Result<(), StorageError> {
        match self.settings.keep_deploys {
            Some(n) => {
                let wanted = RetentionPolicy::KeepCommits(n.get());
                if store.retention_policy().await? != wanted {
                    store.set_retention_policy(wanted).await?;
                }
            }
            None => {
                store
                    .init_retention_policy(RetentionPolicy::KeepCommits(DEFAULT_KEEP_DEPLOYS))
                    .await?;
            }
        }
        Ok(())
    }

    /// The snapshot for the store's HEAD, rebuilt only when HEAD moved. Checking HEAD on every
    /// request is what makes a deploy, a rollback or a `site.toml` change visible on the very
    /// next request.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, StorageError> {
        let store = self.store().await?;
        // Fast path without a database query: this process is the store's only writer and
        // `head_seq` advances with every durable commit, so an equal seq means HEAD is the
        // snapshot's commit.
        if let Some(s) = self.cached().filter(|s| s.seq() == store.head_seq()) {
            return Ok(s);
        }
        let head = store.head().await?;
        let head_id = head.as_ref().map(|c| c.id);
        if let Some(s) = self.cached().filter(|s| s.commit_id() == head_id) {
            return Ok(s);
        }
        let _guard = self.rebuild.lock().await;
        if let Some(s) = self.cached().filter(|s| s.commit_id() == head_id) {
            return Ok(s);
        }
        let snapshot = Arc::new(Snapshot::load(store, head).await?);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(snapshot.clone());
        Ok(snapshot)
    }

    fn cached(&self) -> Option<Arc<Snapshot>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The Markdown state of `snapshot`, built once per snapshot.
    pub async fn markdown(&self, snapshot: &Snapshot) -> Result<Arc<MarkdownSite>, StorageError> {
        let store = self.store().await?;
        snapshot
            .markdown
            .get_or_try_init(|| async {
                let files = CommitFiles::new(store, snapshot);
                let fuel = self.settings.render_fuel;
                let site = MarkdownSite::load_from(&files, &self.prefix, fuel, false).await;
                Ok::<_, StorageError>(Arc::new(site))
            })
            .await
            .cloned()
    }

    /// The `_redirects` and `_headers` rules of `snapshot`, parsed once per snapshot. Deploys
    /// validate them; a store written some other way (or by an older version) that holds an
    /// invalid file is served without rules, and the log says why.
    pub async fn rules(&self, snapshot: &Snapshot) -> Result<Arc<Rules>, StorageError> {
        let Some(commit) = snapshot.commit_id() else {
            return Ok(Arc::default());
        };
        snapshot
            .rules
            .get_or_try_init(|| async {
                let mut texts = [None, None];
                for (slot, name) in texts.iter_mut().zip([rules::REDIRECTS, rules::HEADERS]) {
                    if snapshot.files.contains_key(name) {
                        let bytes = self.store().await?.read_at(name, commit).await?;
                        *slot = Some(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
                let [redirects, headers] = texts;
                let parsed =
                    Rules::parse(redirects.as_deref(), headers.as_deref()).unwrap_or_else(|e| {
                        tracing::warn!(site = %self.name, "ignoring the site's rules: {e}");
                        Rules::default()
                    });
                Ok::<_, StorageError>(Arc::new(parsed))
            })
            .await
            .cloned()
    }

    /// The bytes of a small file (read once, then cached), or `None` for a large one that the
    /// caller streams.
    pub async fn small_file(
        &self,
        entry: &Entry,
        commit: CommitId,
    ) -> Result<Option<Bytes>, StorageError> {
        if entry.size > SMALL_FILE {
            return Ok(None);
        }
        if let Some(b) = self
            .small
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .get(&entry.object)
        {
            return Ok(Some(b.clone()));
        }
        let bytes = Bytes::from(self.store().await?.read_at(&entry.path, commit).await?);
        let mut cache = self.small.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.bytes + bytes.len() > SMALL_CACHE_BYTES {
            *cache = SmallCache::default();
        }
        cache.bytes += bytes.len();
        cache.map.insert(entry.object, bytes.clone());
        Ok(Some(bytes))
    }
}
