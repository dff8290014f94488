//! [`PgCluster`]: the stores of one manager in one PostgreSQL database, shared by every node.
//!
//! The database is the only source of truth in shared mode, so what a store directory's
//! `FORMAT` file and `OBJECTS-S3` marker say for a local store lives in a registry table
//! (`everlock_registry.stores`): which stores exist, their format, and which object backend
//! holds their bytes. `StoreManager::list` and `open_existing` read it; a node never looks at
//! another node's disk. Store names cannot contain `_`, so the registry schema never collides
//! with a store's schema.

use std::future::Future;
use std::sync::Arc;

use tokio_postgres::Config;

use super::pool::{self, Db, PgRuntime, Pool, SharedPool};
use super::{PostgresMeta, create_schema};
use crate::error::{Result, StorageError};

/// The schema of the registry.
const REGISTRY: &str = "everlock_registry";

const REGISTRY_SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS everlock_registry;
CREATE TABLE IF NOT EXISTS everlock_registry.stores(
    name TEXT COLLATE \"C\" PRIMARY KEY,
    format TEXT NOT NULL,
    objects TEXT NOT NULL,
    created BIGINT NOT NULL
);
";

/// One database holding every store of a manager.
pub(crate) struct PgCluster {
    config: Config,
    runtime: Arc<PgRuntime>,
    /// The connections of every store of this manager.
    shared: Arc<SharedPool>,
    /// The shared connections, working in the registry's schema.
    control: Pool,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration may hold a password: only where it points is shown.
        f.debug_struct("PgCluster")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish_non_exhaustive()
    }
}

/// How a store is registered: its format line and its object backend (`file` or `s3`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registration<'a> {
    pub(crate) format: &'a str,
    pub(crate) objects: &'a str,
}

impl PgCluster {
    /// Connects to `url` once and creates the registry if needed, so that a wrong URL, a
    /// database that is down or missing rights fail here with one error. Blocking.
    ///
    /// `max_connections` is this node's whole budget: the change listener keeps one
    /// connection (or its polling fallback, never both), every store shares the rest.
    pub(crate) fn connect(url: &str, max_connections: usize) -> Result<PgCluster> {
        let config = pool::parse_url(url)?;
        let runtime = PgRuntime::new()?;
        let shared = SharedPool::new(
            config.clone(),
            runtime.clone(),
            max_connections.saturating_sub(1),
        );
        let control = Pool::new(shared.clone(), REGISTRY);
        let cluster = PgCluster {
            config,
            runtime,
            shared,
            control,
        };
        let conn = cluster.control.get()?;
        let c = conn.client();
        cluster.run(async {
            c.batch_execute("BEGIN").await?;
            c.execute("SELECT pg_advisory_xact_lock(7262737465)", &[])
                .await?;
            c.batch_execute(REGISTRY_SCHEMA).await?;
            c.batch_execute("COMMIT").await?;
            Ok(())
        })?;
        drop(conn);
        Ok(cluster)
    }

    /// The runtime every connection of this cluster runs on.
    pub(crate) fn runtime(&self) -> &Arc<PgRuntime> {
        &self.runtime
    }

    /// The connection settings (for the listener's own connection).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    fn run<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        self.runtime.handle().block_on(fut)
    }

    /// Opens store `name`: `None` when it is not registered and `create` is false. A new store
    /// gets its schema and its registry row in one transaction, so a crash never leaves a
    /// registered store without tables. An existing one must match `reg`.
    pub(crate) fn open_store(
        &self,
        name: &str,
        create: bool,
        reg: Registration<'_>,
    ) -> Result<Option<PostgresMeta>> {
        let meta = PostgresMeta::unopened(self.shared.clone(), name)?;
        let found = self.registration(name)?;
        match found {
            Some((format, objects)) => {
                check_registration(name, &format, &objects, reg)?;
                Ok(Some(meta))
            }
            None if !create => Ok(None),
            None => {
                let conn = meta.pool.get()?;
                let c = conn.client();
                meta.transaction(&conn, "BEGIN", async {
                    create_schema(c, name).await?;
                    register(c, name, reg).await
                })?;
                drop(conn);
                // Another node may have registered it first with other settings.
                if let Some((format, objects)) = self.registration(name)? {
                    check_registration(name, &format, &objects, reg)?;
                }
                Ok(Some(meta))
            }
        }
    }

    /// The registered format and object backend of store `name`.
    fn registration(&self, name: &str) -> Result<Option<(String, String)>> {
        let conn = self.control.get()?;
        let c = conn.client();
        self.run(async {
            let rows = c
                .query(
                    "SELECT format, objects FROM everlock_registry.stores WHERE name = $1",
                    &[&name],
                )
                .await?;
            match rows.first() {
                Some(row) => Ok(Some((row.try_get(0)?, row.try_get(1)?))),
                None => Ok(None),
            }
        })
    }

    /// Every registered store, sorted.
    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let conn = self.control.get()?;
        let c = conn.client();
        self.run(async {
            let rows = c
                .query(
                    "SELECT name FROM everlock_registry.stores ORDER BY name",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|r| r.try_get(0).map_err(StorageError::from))
                .collect()
        })
    }
}

/// Inserts a store's registry row unless one exists (another node's create won the race).
async fn register(c: &Db, name: &str, reg: Registration<'_>) -> Result<()> {
    c.execute(
        "INSERT INTO everlock_registry.stores(name, format, objects, created)
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        &[&name, &reg.format, &reg.objects, &super::super::now_ms()],
    )
    .await?;
    Ok(())
}

fn check_registration(
    name: &str,
    format: &str,
    objects: &str,
    reg: Registration<'_>,
) -> Result<()> {
    if format != reg.format {
        return Err(StorageError::Corrupt(format!(
            "the registry says store {name} is {:?}, this build reads {:?}",
            format.lines().next().unwrap_or(""),
            reg.format.lines().next().unwrap_or("")
        )));
    }
    if objects != reg.objects {
        return Err(StorageError::invalid(
            "object storage",
            format!(
                "the store {name} keeps its objects with [storage] objects = \"{objects}\"; configure that, moving a store between backends is not supported yet"
            ),
        ));
    }
    Ok(())
}
