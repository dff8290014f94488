//! [`MetaStore`] on PostgreSQL: the metadata of many stores, and of many nodes, in one
//! database. Each store gets a PostgreSQL schema of its own (named after the store, created on
//! open) with the same tables as the SQLite file, so the queries stay a line-by-line port.
//!
//! The interface is blocking and the client is `tokio-postgres`, so the store owns a small
//! runtime that drives the connections, and every query is waited for with
//! [`Handle::block_on`](tokio::runtime::Handle::block_on) from the calling thread (the
//! store's blocking pool). The callbacks of `read`, `snapshot` and the walks always run
//! outside `block_on`, so a callback that queries again never nests one runtime in another.
//!
//! Writes are serialised per store, across every node, by a row lock on the store's single
//! `store_head` row (`SELECT ... FOR UPDATE`) taken first in each write transaction: the
//! compare-and-swap preconditions, the GC's re-check and the upload cap all see the latest
//! committed state under it, exactly like SQLite's one writer.

mod cluster;
pub(crate) mod notify;
mod pool;
mod read;
mod replay;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(super) use tests::{available, fixture};
mod uploads;
mod walk;
mod write;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio_postgres::error::SqlState;

pub(crate) use self::cluster::{PgCluster, Registration};
#[cfg(test)]
use self::pool::PgRuntime;
pub(crate) use self::pool::SharedPool;
use self::pool::{Pool, Pooled};
use self::read::PgRead;
use super::api::{MetaRead, MetaStore};
use super::{CommitRequest, Cutoff, ObjectOutcome, ObjectRow, UploadRow};
use crate::digest::ObjectId;
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::types::{CommitInfo, CommitMeta};

/// Connections a test store (opened without a manager) keeps open at most.
#[cfg(test)]
const TEST_CONNECTIONS: usize = 8;

/// PostgreSQL truncates longer identifiers silently, so two long store names could share a
/// schema; such names are refused instead.
const MAX_SCHEMA_NAME: usize = 63;

/// The tables of one store's schema (the SQLite schema, with PostgreSQL types). Paths compare
/// bytewise (`COLLATE "C"`) whatever the database's locale, as prefix listings require.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS store_head(id INTEGER PRIMARY KEY);
INSERT INTO store_head(id) VALUES (1) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS commits(
    seq BIGINT PRIMARY KEY,
    id BYTEA NOT NULL UNIQUE,
    parent BYTEA,
    ts BIGINT NOT NULL,
    principal TEXT NOT NULL,
    message TEXT NOT NULL,
    record BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS versions(
    path TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    object BYTEA,
    size BIGINT NOT NULL,
    sha256 BYTEA,
    purged BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY(path, seq)
);
CREATE INDEX IF NOT EXISTS versions_by_seq ON versions(seq);
CREATE INDEX IF NOT EXISTS versions_by_object ON versions(object) WHERE object IS NOT NULL;
CREATE TABLE IF NOT EXISTS head(
    path TEXT COLLATE "C" PRIMARY KEY,
    seq BIGINT NOT NULL,
    object BYTEA NOT NULL,
    size BIGINT NOT NULL,
    sha256 BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS objects(
    blake3 BYTEA PRIMARY KEY,
    sha256 BYTEA NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    created BIGINT NOT NULL,
    inline BYTEA
);
CREATE TABLE IF NOT EXISTS settings(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads(
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    started BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL,
    ttl BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_path ON uploads(path);
"#;
// `upload_parts` (uploads.rs) is created with the rest: see `create_schema`.

/// The PostgreSQL metadata of one store: the schema named after it in the configured database.
pub(crate) struct PostgresMeta {
    /// The store's schema, for messages.
    schema: String,
    pool: Pool,
}

impl fmt::Debug for PostgresMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresMeta")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresMeta {
    /// Connects to `url` and opens the store `schema`, creating the schema and its tables if
    /// needed (several nodes may do so at once: an advisory lock orders them). The store gets
    /// a runtime of its own: for tests and benchmarks; a manager opens its stores through
    /// [`PgCluster`], which shares one runtime.
    #[cfg(test)]
    pub(crate) fn open(url: &str, schema: &str) -> Result<PostgresMeta> {
        let shared = SharedPool::new(pool::parse_url(url)?, PgRuntime::new()?, TEST_CONNECTIONS);
        let meta = Self::unopened(shared, schema)?;
        let conn = meta.pool.get()?;
        meta.transaction(&conn, "BEGIN", create_schema(conn.client(), schema))?;
        drop(conn);
        Ok(meta)
    }

    /// The handle of store `schema` without touching the database yet.
    fn unopened(shared: Arc<SharedPool>, schema: &str) -> Result<PostgresMeta> {
        if schema.is_empty() || schema.len() > MAX_SCHEMA_NAME || schema.contains('\0') {
            return Err(StorageError::Invalid {
                what: "store name",
                reason: format!("a PostgreSQL schema name is 1 to {MAX_SCHEMA_NAME} bytes"),
            });
        }
        Ok(PostgresMeta {
            schema: schema.to_owned(),
            pool: Pool::new(shared, schema),
        })
    }

    /// Ends a transaction opened on `conn` that holds the store's write lock: when `decided`
    /// succeeded and `wants` it, runs `remove` first (outside the runtime: it may block on
    /// another one), then commits; on any failure it rolls back.
    fn finish_locked<T>(
        &self,
        conn: &Pooled<'_>,
        decided: Result<T>,
        wants: impl FnOnce(&T) -> bool,
        remove: &mut dyn FnMut() -> Result<()>,
    ) -> Result<T> {
        let outcome = decided.and_then(|v| {
            if wants(&v) {
                remove().map(|()| v)
            } else {
                Ok(v)
            }
        });
        let end = if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        let ended = self.run(async { Ok(conn.client().batch_execute(end).await?) });
        if ended.is_err() {
            conn.discard();
        }
        let v = outcome?;
        ended?;
        Ok(v)
    }

    /// Waits for `fut` on the store's runtime.
    fn run<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        self.pool.handle().block_on(fut)
    }

    /// Runs `body` between `begin` and COMMIT on `conn`, rolling back when it fails. A
    /// connection whose rollback failed is not reused: its session state is unknown.
    fn transaction<T>(
        &self,
        conn: &Pooled<'_>,
        begin: &str,
        body: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.run(async {
            conn.client().batch_execute(begin).await?;
            match body.await {
                Ok(v) => {
                    conn.client().batch_execute("COMMIT").await?;
                    Ok(v)
                }
                Err(e) => {
                    if conn.client().batch_execute("ROLLBACK").await.is_err() {
                        conn.discard();
                    }
                    Err(e)
                }
            }
        })
    }
}

impl MetaStore for PostgresMeta {
    fn read(&self, f: &mut dyn FnMut(&dyn MetaRead) -> Result<()>) -> Result<()> {
        let conn = self.pool.get()?;
        f(&PgRead::new(self.pool.handle(), conn.client()))
    }

    fn snapshot(&self, f: &mut dyn FnMut(&dyn MetaRead) -> Result<()>) -> Result<()> {
        let conn = self.pool.get()?;
        let client = conn.client();
        self.run(async {
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            Ok(())
        })?;
        let out = f(&PgRead::new(self.pool.handle(), client));
        // A read-only transaction has nothing to keep: always end it the same way.
        if self
            .run(async { Ok(client.batch_execute("ROLLBACK").await?) })
            .is_err()
        {
            conn.discard();
        }
        out
    }

    fn commit(&self, request: CommitRequest) -> Result<CommitInfo> {
        let conn = self.pool.get()?;
        let c = conn.client();
        self.transaction(&conn, "BEGIN", async {
            let info = write::commit(c, request, super::now_ms()).await?;
            notify::announce(c, &self.schema).await?;
            Ok(info)
        })
    }

    fn upsert_object(&self, digests: &Digests, now_ms: i64) -> Result<()> {
        let conn = self.pool.get()?;
        self.transaction(
            &conn,
            "BEGIN",
            write::upsert_object(conn.client(), digests, now_ms),
        )
    }

    fn object_row_now(&self, id: &ObjectId) -> Result<Option<ObjectRow>> {
        let conn = self.pool.get()?;
        self.run(read::object_row(conn.client(), id))
    }

    fn purge_superseded(
        &self,
        cutoff: Cutoff,
        meta: &CommitMeta,
        now_ms: i64,
    ) -> Result<Option<(CommitInfo, u64, u64)>> {
        let conn = self.pool.get()?;
        let c = conn.client();
        self.transaction(&conn, "BEGIN", async {
            let out = write::purge_superseded(c, cutoff, meta, now_ms).await?;
            if out.is_some() {
                notify::announce(c, &self.schema).await?;
            }
            Ok(out)
        })
    }

    fn delete_object_if_unreferenced(
        &self,
        id: &ObjectId,
        created_before_ms: i64,
        dry_run: bool,
    ) -> Result<Option<ObjectOutcome>> {
        let conn = self.pool.get()?;
        self.transaction(
            &conn,
            "BEGIN",
            write::delete_object_if_unreferenced(conn.client(), id, created_before_ms, dry_run),
        )
    }

    fn delete_object_with(
        &self,
        id: &ObjectId,
        created_before_ms: i64,
        remove: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Option<ObjectOutcome>> {
        let conn = self.pool.get()?;
        let c = conn.client();
        let outcome = self.run(async {
            c.batch_execute("BEGIN").await?;
            write::delete_object_if_unreferenced(c, id, created_before_ms, false).await
        });
        self.finish_locked(
            &conn,
            outcome,
            |o| o.as_ref().is_some_and(|o| o.is_file),
            remove,
        )
    }

    fn remove_orphan(&self, id: &ObjectId, remove: &mut dyn FnMut() -> Result<()>) -> Result<bool> {
        let conn = self.pool.get()?;
        let c = conn.client();
        let orphan = self.run(async {
            c.batch_execute("BEGIN").await?;
            write::lock_store(c).await?;
            Ok(read::object_row(c, id).await?.is_none())
        });
        self.finish_locked(&conn, orphan, |orphan| *orphan, remove)
    }

    fn replace_setting(&self, key: &str, value: &str, remove: &[&str]) -> Result<()> {
        let conn = self.pool.get()?;
        self.transaction(
            &conn,
            "BEGIN",
            write::replace_setting(conn.client(), key, value, remove),
        )
    }

    fn init_setting(&self, key: &str, value: &str, also: &[&str]) -> Result<bool> {
        let conn = self.pool.get()?;
        self.transaction(
            &conn,
            "BEGIN",
            write::init_setting(conn.client(), key, value, also),
        )
    }

    /// A session-level advisory lock on a connection of its own, held until the guard drops;
    /// the key is a stable hash of the schema, so every node computes the same one.
    fn try_maintenance_lock(&self) -> Result<Option<super::api::MaintenanceGuard<'_>>> {
        let conn = self.pool.get()?;
        let key = maintenance_key(&self.schema);
        let got: bool = self.run(async {
            let row = conn
                .client()
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await?;
            Ok(row.try_get(0)?)
        })?;
        if !got {
            return Ok(None);
        }
        Ok(Some(Box::new(MaintenanceLock {
            meta: self,
            conn,
            key,
        })))
    }

    fn replay(
        &self,
        record: &[u8],
        inline: &[(Digests, Vec<u8>)],
        now_ms: i64,
    ) -> Result<CommitInfo> {
        let conn = self.pool.get()?;
        let c = conn.client();
        self.transaction(&conn, "BEGIN", async {
            let info = replay::replay(c, record, inline, now_ms).await?;
            notify::announce(c, &self.schema).await?;
            Ok(info)
        })
    }

    /// PostgreSQL's autovacuum gives freed space back on its own.
    fn compact(&self) -> Result<()> {
        Ok(())
    }

    fn insert_upload_capped(&self, row: &UploadRow, max_open: u64, now_ms: i64) -> Result<bool> {
        let conn = self.pool.get()?;
        self.transaction(
            &conn,
            "BEGIN",
            uploads::insert_upload_capped(conn.client(), row, max_open, now_ms),
        )
    }

    fn upload_row(&self, id: &str) -> Result<Option<UploadRow>> {
        let conn = self.pool.get()?;
        self.run(uploads::upload_row(conn.client(), id))
    }

    fn advance_upload(&self, id: &str, offset: u64, lease_until_ms: i64) -> Result<()> {
        let conn = self.pool.get()?;
        self.run(uploads::advance_upload(
            conn.client(),
            id,
            offset,
            lease_until_ms,
        ))
    }

    fn delete_upload(&self, id: &str) -> Result<bool> {
        let conn = self.pool.get()?;
        self.transaction(&conn, "BEGIN", uploads::delete_upload(conn.client(), id))
    }

    fn all_uploads(&self) -> Result<Vec<UploadRow>> {
        let conn = self.pool.get()?;
        self.run(uploads::all_uploads(conn.client()))
    }
}

/// The advisory lock key of a store's maintenance: the first 8 bytes of a blake3 hash, so that
/// it is the same on every node and build (PostgreSQL's `hashtext` is not promised stable).
fn maintenance_key(schema: &str) -> i64 {
    let hash = blake3::hash(format!("everlock-maintenance\0{schema}").as_bytes());
    hash.as_bytes()
        .first_chunk::<8>()
        .map_or(0, |b| i64::from_le_bytes(*b))
}

/// A held maintenance lock.
struct MaintenanceLock<'a> {
    meta: &'a PostgresMeta,
    conn: Pooled<'a>,
    key: i64,
}

impl Drop for MaintenanceLock<'_> {
    /// Unlocks explicitly so the connection can be reused; if that fails, closing the
    /// connection releases the lock on the server anyway.
    fn drop(&mut self) {
        let unlocked = self.meta.run(async {
            self.conn
                .client()
                .execute("SELECT pg_advisory_unlock($1)", &[&self.key])
                .await?;
            Ok(())
        });
        if unlocked.is_err() {
            self.conn.discard();
        }
    }
}

/// Creates the schema of store `schema` and its tables unless they exist, inside the caller's
/// transaction. The key of the advisory lock is fixed: creating schemas is rare and short, so
/// one lock for all is fine, and it orders concurrent `CREATE ... IF NOT EXISTS` of two nodes
/// (which PostgreSQL does not make atomic).
async fn create_schema(c: &pool::Db, schema: &str) -> Result<()> {
    let quoted = quote_ident(schema);
    c.execute("SELECT pg_advisory_xact_lock(7262737465)", &[])
        .await?;
    c.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted}; SET LOCAL search_path TO {quoted}; {SCHEMA} {}",
        uploads::UPLOAD_PARTS_SCHEMA
    ))
    .await?;
    Ok(())
}

/// A double-quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl From<tokio_postgres::Error> for StorageError {
    /// A full disk on the database server is the same condition as a full local disk (507);
    /// a server that cannot be reached, is shutting down or has no connection slot left is
    /// `Unavailable` (503: retrying later works); anything else is a database failure.
    fn from(e: tokio_postgres::Error) -> Self {
        let text = e.to_string();
        match e.code() {
            Some(code) if *code == SqlState::DISK_FULL => StorageError::Full(text),
            Some(code) if is_unavailable(code) => StorageError::Unavailable(text),
            Some(code) if *code == SqlState::READ_ONLY_SQL_TRANSACTION => {
                StorageError::ReadOnly(text)
            }
            Some(_) => StorageError::Database(text),
            // Without a server error the failure is the connection's: tokio-postgres keeps
            // its error kinds private, so they are told apart by their fixed messages.
            None if e.is_closed() || CONNECTION_FAILURES.iter().any(|m| text.starts_with(m)) => {
                StorageError::Unavailable(text)
            }
            None => StorageError::Database(text),
        }
    }
}

/// How tokio-postgres words the failures of a connection (not of a statement).
const CONNECTION_FAILURES: [&str; 4] = [
    "error connecting to server",
    "error communicating with the server",
    "connection closed",
    "timeout waiting for server",
];

/// Server states that pass: connection exceptions (class 08), shutdowns, no free slot.
fn is_unavailable(code: &SqlState) -> bool {
    code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
        ]
        .contains(code)
}
