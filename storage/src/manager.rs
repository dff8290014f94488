//! [`StoreManager`]: named stores under one data directory, or, in shared mode
//! ([`MetaConfig::Postgres`]), registered in one PostgreSQL database that several nodes use at
//! once (the data directory then holds only each node's spool files and upload sessions).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::changes::Hub;
use crate::error::{Result, StorageError};
use crate::meta::{PgCluster, Registration, notify};
use crate::objects::{ObjectsRoot, S3Config, S3Objects};
use crate::path::validate_store_name;
/// One redaction for every message about the database, shared with the host's config errors.
pub(crate) use crate::redact::redact_url;
use crate::store::inner::Inner;
use crate::store::{FORMAT, Store, is_store};

/// How long an open waits for this process's own previous handle to finish closing.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

/// Opens stores by name as `<data_dir>/<name>/`. Cloning is cheap and clones share the map of
/// open stores, so one process always gets one shared handle per store.
#[derive(Clone, Debug)]
pub struct StoreManager {
    shared: Arc<Shared>,
}

/// Where a manager's stores keep their object bytes. Metadata, spool files and upload
/// sessions always stay in `<data_dir>/<store>/`.
#[derive(Clone, Debug, Default)]
pub enum ObjectsConfig {
    /// `<data_dir>/<store>/objects/` (the default).
    #[default]
    File,
    /// `<prefix><store>/objects/` in an S3-compatible bucket.
    S3(S3Config),
}

/// Where a manager's stores keep their metadata.
#[derive(Clone, Debug, Default)]
pub enum MetaConfig {
    /// `<data_dir>/<store>/meta.sqlite` (the default): one process owns each store.
    #[default]
    Sqlite,
    /// One schema per store in one PostgreSQL database, shared by every node.
    Postgres(PostgresConfig),
}

/// The PostgreSQL database of shared mode.
#[derive(Clone)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host[:port]/database[?options]`, the password already
    /// merged in by the caller. `Debug` shows it redacted.
    pub url: String,
    /// The most connections this manager (one node) opens to the database, for every store
    /// together: one for the change listener, the rest shared by the stores. At least 3 (a
    /// store's maintenance holds one for its lock while it queries on another);
    /// [`PostgresConfig::DEFAULT_MAX_CONNECTIONS`] unless configured.
    pub max_connections: u32,
}

/// The smallest budget that works: the listener's connection, and two for the stores, since a
/// store's maintenance keeps its advisory lock on one connection while it queries on another.
const MIN_CONNECTIONS: u32 = 3;

impl PostgresConfig {
    /// The default connection budget of a node: small, so that several nodes stay well within
    /// PostgreSQL's default `max_connections = 100`.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

    /// The database at `url` with the default connection budget.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[derive(Debug)]
struct Shared {
    data_dir: PathBuf,
    /// The object backend every store of this manager is opened on.
    objects: ObjectsRoot,
    /// Weak, so that a store closes (and releases its `LOCK`) when its last handle is dropped.
    open: Mutex<HashMap<String, Weak<Inner>>>,
    /// The HEAD watches of the stores this manager opened.
    hub: Arc<Hub>,
    /// The shared metadata database (shared mode), with its change listener.
    cluster: Option<(PgCluster, Arc<notify::ListenerState>)>,
}

impl StoreManager {
    /// A manager for `data_dir` (created on the first open).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self::with_root(data_dir.into(), ObjectsRoot::File)
    }

    /// A manager for `data_dir` whose stores keep their objects as `objects` says. For S3 it
    /// checks the bucket once (one listing under the prefix), so that a wrong endpoint,
    /// bucket or credentials fail here with one clear error instead of at the first push.
    /// Blocks on that request: call it before entering async code or on the blocking pool.
    pub fn new_with(data_dir: impl Into<PathBuf>, objects: ObjectsConfig) -> Result<Self> {
        let data_dir = data_dir.into();
        let root = objects_root(objects, &data_dir)?;
        Ok(Self::with_root(data_dir, root))
    }

    /// A manager whose stores keep their objects as `objects` and their metadata as `meta`
    /// say. It checks the bucket and the database once each, so that a wrong endpoint, URL or
    /// credentials, or a server that is down, fail here with one clear error. With PostgreSQL
    /// it also starts the listener that follows other nodes' commits ([`Store::changes`]).
    /// Blocks: call it before entering async code or on the blocking pool.
    pub fn new_with_meta(
        data_dir: impl Into<PathBuf>,
        objects: ObjectsConfig,
        meta: MetaConfig,
    ) -> Result<Self> {
        let data_dir = data_dir.into();
        let root = objects_root(objects, &data_dir)?;
        let MetaConfig::Postgres(pg) = meta else {
            return Ok(Self::with_root(data_dir, root));
        };
        let budget = usize::try_from(pg.max_connections.max(MIN_CONNECTIONS)).unwrap_or(usize::MAX);
        let cluster = PgCluster::connect(&pg.url, budget).map_err(|e| {
            let at = redact_url(&pg.url);
            match e {
                StorageError::Unavailable(m) => {
                    StorageError::Unavailable(format!("PostgreSQL at {at}: {m}"))
                }
                StorageError::Database(m) => {
                    StorageError::Database(format!("PostgreSQL at {at}: {m}"))
                }
                other => other,
            }
        })?;
        let hub = Arc::new(Hub::default());
        let listener = notify::spawn(
            cluster.runtime().handle(),
            cluster.config().clone(),
            Arc::downgrade(&hub),
        );
        Ok(Self {
            shared: Arc::new(Shared {
                data_dir,
                objects: root,
                open: Mutex::new(HashMap::new()),
                hub,
                cluster: Some((cluster, listener)),
            }),
        })
    }

    /// True when the metadata is in PostgreSQL: several nodes share these stores (no local
    /// `LOCK` file; stores are listed from the database; the data directory holds only spool
    /// files and upload sessions).
    pub fn is_shared(&self) -> bool {
        self.shared.cluster.is_some()
    }

    /// The change listener of shared mode (tests stop it to exercise the fallback).
    #[cfg(test)]
    pub(crate) fn listener(&self) -> Option<&notify::ListenerState> {
        self.shared.cluster.as_ref().map(|(_, l)| &**l)
    }

    fn with_root(data_dir: PathBuf, objects: ObjectsRoot) -> Self {
        Self {
            shared: Arc::new(Shared {
                data_dir,
                objects,
                open: Mutex::new(HashMap::new()),
                hub: Arc::new(Hub::default()),
                cluster: None,
            }),
        }
    }

    /// How a shared store of this manager is registered.
    fn registration(&self) -> Registration<'static> {
        Registration {
            format: FORMAT,
            objects: if self.objects_are_remote() {
                "s3"
            } else {
                "file"
            },
        }
    }

    /// Opens store `name` in the shared database; `NoSuchStore` unless `create`.
    fn open_shared(
        &self,
        cluster: &PgCluster,
        name: &str,
        create: bool,
        writable: bool,
    ) -> Result<Inner> {
        let meta = cluster
            .open_store(name, create, self.registration())?
            .ok_or_else(|| StorageError::NoSuchStore(name.to_owned()))?;
        crate::perms::create_dir_all(&self.shared.data_dir)?;
        crate::perms::tighten(&self.shared.data_dir)?;
        Inner::open_shared(
            &self.shared.data_dir.join(name),
            &self.shared.objects,
            Box::new(meta),
            writable,
            self.shared.hub.sender(name),
        )
    }

    /// Whether the stores keep their objects in a bucket (a backup of such a store would hold
    /// only its metadata, so the backup commands refuse it).
    pub fn objects_are_remote(&self) -> bool {
        matches!(self.shared.objects, ObjectsRoot::S3(_))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    /// Opens the store `name`, creating it if needed. A second open in this process returns
    /// the same shared handle; a store held by another process fails with `InUse`.
    pub async fn open(&self, name: &str) -> Result<Store> {
        let (this, name) = (self.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || this.open_blocking(&name, true))
            .await
            .map_err(|e| StorageError::Worker(e.to_string()))?
    }

    /// Opens an existing store; fails with `NoSuchStore` instead of creating one.
    pub async fn open_existing(&self, name: &str) -> Result<Store> {
        let (this, name) = (self.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || this.open_blocking(&name, false))
            .await
            .map_err(|e| StorageError::Worker(e.to_string()))?
    }

    /// Blocking version of [`StoreManager::open`] (`create`) and
    /// [`StoreManager::open_existing`] (`!create`).
    pub fn open_blocking(&self, name: &str, create: bool) -> Result<Store> {
        validate_store_name(name)?;
        let dir = self.shared.data_dir.join(name);
        let mut open = self
            .shared
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = open.get(name).cloned();
        if let Some(inner) = previous.as_ref().and_then(Weak::upgrade) {
            return Ok(Store { inner });
        }
        if let Some((cluster, _)) = &self.shared.cluster {
            let inner = Arc::new(self.open_shared(cluster, name, create, true)?);
            open.insert(name.to_owned(), Arc::downgrade(&inner));
            return Ok(Store { inner });
        }
        if !create && !is_store(&dir) {
            return Err(StorageError::NoSuchStore(name.to_owned()));
        }
        crate::perms::create_dir_all(&self.shared.data_dir)?;
        // The data directory is Everlock's alone (stores and `_host/`): closing it to other
        // users also covers whatever the host writes there with looser modes.
        crate::perms::tighten(&self.shared.data_dir)?;
        // A dead weak entry means our own last handle is being dropped right now, possibly on
        // another thread that has not released the LOCK yet: wait for it briefly.
        let wait = if previous.is_some() {
            REOPEN_WAIT
        } else {
            Duration::ZERO
        };
        let inner = Arc::new(Inner::open(
            &dir,
            wait,
            &self.shared.objects,
            self.shared.hub.sender(name),
        )?);
        open.insert(name.to_owned(), Arc::downgrade(&inner));
        Ok(Store { inner })
    }

    /// Opens an existing store for reading only. It takes no `LOCK`, so it works while another
    /// process (a running server) owns the store: SQLite's WAL lets readers see consistent
    /// snapshots next to the owner's writes, and published objects never change. Every write
    /// through the handle fails with [`StorageError::ReadOnly`]. Each call opens a new,
    /// unshared handle; it blocks, so call it from a blocking context (the CLI).
    ///
    /// In shared mode there is no `LOCK` to avoid: the handle is an ordinary one (it follows
    /// other nodes' commits) whose writes fail with [`StorageError::ReadOnly`].
    pub fn open_read_only(&self, name: &str) -> Result<Store> {
        validate_store_name(name)?;
        if let Some((cluster, _)) = &self.shared.cluster {
            return Ok(Store {
                inner: Arc::new(self.open_shared(cluster, name, false, false)?),
            });
        }
        let dir = self.shared.data_dir.join(name);
        if !is_store(&dir) {
            return Err(StorageError::NoSuchStore(name.to_owned()));
        }
        // Its own watch: a local store's reader does not follow the owner's commits.
        let changes = tokio::sync::watch::Sender::new(0);
        Ok(Store {
            inner: Arc::new(Inner::open_read_only(&dir, &self.shared.objects, changes)?),
        })
    }

    /// The names of the stores in the data directory, sorted. Directories that are not valid
    /// store names (such as `_host/`) or hold no store are skipped. In shared mode, the
    /// stores registered in the database.
    pub fn list(&self) -> Result<Vec<String>> {
        if let Some((cluster, _)) = &self.shared.cluster {
            // Callers treat `list` as a quick local read and call it from async code too,
            // where waiting on the database's runtime would panic: a scoped thread waits.
            if tokio::runtime::Handle::try_current().is_err() {
                return cluster.list();
            }
            return std::thread::scope(|s| {
                s.spawn(|| cluster.list())
                    .join()
                    .map_err(|_| StorageError::Worker("listing the stores failed".into()))?
            });
        }
        let entries = match fs::read_dir(&self.shared.data_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_store_name(&name).is_ok()
                && entry.file_type()?.is_dir()
                && is_store(&entry.path())
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// The object backend `objects` describes. For S3 it checks the bucket once (one listing
/// under the prefix), so that a wrong endpoint, bucket or credentials fail here.
fn objects_root(objects: ObjectsConfig, data_dir: &Path) -> Result<ObjectsRoot> {
    Ok(match objects {
        ObjectsConfig::File => ObjectsRoot::File,
        ObjectsConfig::S3(config) => {
            let s3 = S3Objects::check_once(&config, data_dir)
                .and_then(|()| S3Objects::connect(&config, data_dir))
                .map_err(|e| StorageError::Invalid {
                    what: "object storage",
                    reason: format!(
                        "bucket {} at {} is unusable: {e}",
                        config.bucket, config.endpoint
                    ),
                })?;
            ObjectsRoot::S3(s3)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CommitMeta;

    #[tokio::test]
    async fn open_shares_handles_and_lists_only_stores() {
        let dir = tempfile::tempdir().unwrap();
        let m = StoreManager::new(dir.path().join("data"));
        assert!(m.list().unwrap().is_empty());
        let a = m.open("alpha").await.unwrap();
        let a2 = m.clone().open("alpha").await.unwrap();
        assert!(Arc::ptr_eq(&a.inner, &a2.inner));
        a.write("x", b"1".to_vec(), CommitMeta::new("t", "m"))
            .await
            .unwrap();
        assert_eq!(a2.read("x").await.unwrap(), b"1");
        m.open("everlock-users").await.unwrap();
        fs::create_dir_all(dir.path().join("data/_host")).unwrap();
        fs::create_dir_all(dir.path().join("data/empty")).unwrap();
        fs::write(dir.path().join("data/file"), b"").unwrap();
        assert_eq!(
            m.list().unwrap(),
            vec!["alpha".to_owned(), "everlock-users".to_owned()]
        );
        for bad in ["_host", "Alpha", "a/b", "..", ""] {
            let err = m.open(bad).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    StorageError::Invalid {
                        what: "store name",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
        let err = m.open_existing("nothing").await.unwrap_err();
        assert!(matches!(err, StorageError::NoSuchStore(_)), "{err}");
    }

    /// A second manager stands for a second process (the CLI next to a running server).
    #[tokio::test]
    async fn read_only_reads_next_to_the_owner_and_refuses_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let owner = StoreManager::new(dir.path());
        let s = owner.open("s").await.unwrap();
        let big = vec![7u8; crate::INLINE_MAX + 10];
        s.write("a", b"1".to_vec(), CommitMeta::new("t", "one"))
            .await
            .unwrap();
        s.write("big", big.clone(), CommitMeta::new("t", "two"))
            .await
            .unwrap();
        let cli = StoreManager::new(dir.path());
        let ro = cli.open_read_only("s").unwrap();
        assert!(ro.is_read_only() && !s.is_read_only());
        assert_eq!(ro.read("a").await.unwrap(), b"1");
        assert_eq!(ro.read("big").await.unwrap(), big);
        assert_eq!(ro.log(10).await.unwrap().len(), 2);
        assert!(ro.verify().await.unwrap().is_ok());
        let export = ro
            .export(Vec::new(), crate::ExportOptions::default())
            .await
            .unwrap();
        assert!(!export.is_empty());
        // The owner keeps committing; the reader sees each new HEAD.
        let c3 = s
            .write("a", b"2".to_vec(), CommitMeta::new("t", "three"))
            .await
            .unwrap();
        assert_eq!(ro.head().await.unwrap().unwrap().id, c3.id);
        assert_eq!(ro.read("a").await.unwrap(), b"2");

        let meta = || CommitMeta::new("t", "w");
        let refused = [
            ro.write("x", b"1".to_vec(), meta()).await.unwrap_err(),
            ro.delete("a", meta()).await.unwrap_err(),
            ro.stage(&b"data"[..], None).await.unwrap_err(),
            ro.gc(crate::GcOptions::default()).await.unwrap_err(),
            ro.set_retention(None).await.unwrap_err(),
            ro.purge(Duration::ZERO, meta()).await.unwrap_err(),
            ro.upload_start("u", Duration::from_secs(60))
                .await
                .unwrap_err(),
            ro.upload_cancel(&"a".repeat(32)).await.unwrap_err(),
            ro.expire_uploads().await.unwrap_err(),
        ];
        for err in refused {
            assert!(matches!(err, StorageError::ReadOnly(_)), "{err}");
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("s/tmp")).unwrap().count(),
            0
        );
        assert_eq!(s.log(10).await.unwrap().len(), 3, "nothing was written");

        // The reader holds no lock: the owner can go and another process take over.
        drop(s);
        let next = StoreManager::new(dir.path()).open("s").await.unwrap();
        next.write("b", b"3".to_vec(), meta()).await.unwrap();
        assert_eq!(ro.read("b").await.unwrap(), b"3");
        drop(next);
        assert!(matches!(
            cli.open_read_only("missing").unwrap_err(),
            StorageError::NoSuchStore(_)
        ));
        assert!(matches!(
            cli.open_read_only("../s").unwrap_err(),
            StorageError::Invalid { .. }
        ));
    }

    /// A cleanly closed store has no `-wal` or `-shm` file; reading it must not need them,
    /// and must not stop the next owner from opening it.
    #[tokio::test]
    async fn read_only_opens_a_closed_store() {
        let dir = tempfile::tempdir().unwrap();
        let m = StoreManager::new(dir.path());
        let s = m.open("s").await.unwrap();
        s.write("a", b"1".to_vec(), CommitMeta::new("t", "one"))
            .await
            .unwrap();
        drop(s);
        assert!(!dir.path().join("s/meta.sqlite-wal").exists());
        let ro = StoreManager::new(dir.path()).open_read_only("s").unwrap();
        assert_eq!(ro.read("a").await.unwrap(), b"1");
        let owner = m.open("s").await.unwrap();
        owner
            .write("a", b"2".to_vec(), CommitMeta::new("t", "two"))
            .await
            .unwrap();
        assert_eq!(ro.read("a").await.unwrap(), b"2");
        drop(ro);
        drop(owner);
        let again = m.open("s").await.unwrap();
        assert!(again.verify().await.unwrap().is_ok());
        assert_eq!(again.log(10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn reopen_after_drop_and_second_manager_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let m = StoreManager::new(dir.path());
        let a = m.open("s").await.unwrap();
        // A second manager stands for a second process: it does not share the map, and the
        // flock on a separate open file description conflicts just as across processes.
        let other = StoreManager::new(dir.path());
        let err = other.open("s").await.unwrap_err();
        assert!(err.to_string().contains("store in use"), "{err}");
        drop(a);
        let again = m.open("s").await.unwrap();
        drop(again);
        other.open("s").await.unwrap();
    }
}
