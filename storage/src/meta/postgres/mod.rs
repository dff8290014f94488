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

mod pool;
mod read;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(super) use tests::{available, fixture};
mod walk;
mod write;

use std::fmt;
use std::future::Future;

use tokio_postgres::error::SqlState;

use self::pool::{Pool, Pooled};
use self::read::PgRead;
use super::api::{MetaRead, MetaStore};
use super::{CommitRequest, Cutoff, ObjectOutcome, ObjectRow, UploadRow};
use crate::digest::ObjectId;
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::types::{CommitInfo, CommitMeta};

/// Connections one store keeps open at most; callers beyond wait for one to come back.
const MAX_CONNECTIONS: usize = 8;

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
    /// needed (several nodes may do so at once: an advisory lock orders them).
    pub(crate) fn open(url: &str, schema: &str) -> Result<PostgresMeta> {
        if schema.is_empty() || schema.len() > MAX_SCHEMA_NAME || schema.contains('\0') {
            return Err(StorageError::Invalid {
                what: "store name",
                reason: format!("a PostgreSQL schema name is 1 to {MAX_SCHEMA_NAME} bytes"),
            });
        }
        let pool = Pool::new(url, schema, MAX_CONNECTIONS)?;
        let meta = PostgresMeta {
            schema: schema.to_owned(),
            pool,
        };
        let quoted = quote_ident(schema);
        let conn = meta.pool.get()?;
        meta.transaction(&conn, "BEGIN", async {
            // The key is fixed: creating schemas is rare and short, so one lock for all is fine.
            conn.client()
                .execute("SELECT pg_advisory_xact_lock(7262737465)", &[])
                .await?;
            conn.client()
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {quoted}; SET LOCAL search_path TO {quoted}; {SCHEMA}"
                ))
                .await?;
            Ok(())
        })?;
        drop(conn);
        Ok(meta)
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
        self.transaction(
            &conn,
            "BEGIN",
            write::commit(conn.client(), request, super::now_ms()),
        )
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
        self.transaction(
            &conn,
            "BEGIN",
            write::purge_superseded(conn.client(), cutoff, meta, now_ms),
        )
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

    /// PostgreSQL's autovacuum gives freed space back on its own.
    fn compact(&self) -> Result<()> {
        Ok(())
    }

    fn insert_upload_capped(&self, row: &UploadRow, max_open: u64, now_ms: i64) -> Result<bool> {
        let conn = self.pool.get()?;
        self.transaction(
            &conn,
            "BEGIN",
            write::insert_upload_capped(conn.client(), row, max_open, now_ms),
        )
    }

    fn upload_row(&self, id: &str) -> Result<Option<UploadRow>> {
        let conn = self.pool.get()?;
        self.run(write::upload_row(conn.client(), id))
    }

    fn advance_upload(&self, id: &str, offset: u64, lease_until_ms: i64) -> Result<()> {
        let conn = self.pool.get()?;
        self.run(write::advance_upload(
            conn.client(),
            id,
            offset,
            lease_until_ms,
        ))
    }

    fn delete_upload(&self, id: &str) -> Result<bool> {
        let conn = self.pool.get()?;
        self.run(write::delete_upload(conn.client(), id))
    }

    fn all_uploads(&self) -> Result<Vec<UploadRow>> {
        let conn = self.pool.get()?;
        self.run(write::all_uploads(conn.client()))
    }
}

/// A double-quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl From<tokio_postgres::Error> for StorageError {
    /// A full disk on the database server is the same condition as a full local disk (507);
    /// anything else is a database failure.
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::DISK_FULL) {
            return StorageError::Full(e.to_string());
        }
        StorageError::Io(std::io::Error::other(e))
    }
}
