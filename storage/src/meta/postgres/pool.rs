//! A bounded pool of `tokio-postgres` connections shared by every store of a manager, and the
//! runtime that drives them.
//!
//! Every connection has `synchronous_commit` on, so a COMMIT that returns is durable whatever
//! the server's default, and the schema of the store it is lent to as its `search_path`. At
//! most `max` connections exist per manager (not per store): a caller beyond that waits for
//! one to come back, so neither a burst of requests nor many stores on many nodes can exhaust
//! the server's connection slots. Connections idle for longer than [`IDLE_TIMEOUT`] are
//! closed, so a quiet node gives its slots back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use crate::error::{Result, StorageError};

/// How long opening a connection may take before the caller gets an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a caller waits for a connection when all `max` are lent out; past it the request
/// fails as `Unavailable` (a 503 the client retries) instead of piling up threads.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// An idle connection older than this is closed on the next checkout or return.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An idle connection and since when it is idle.
struct Idle {
    db: Arc<Db>,
    since: Instant,
}

/// Idle connections and how many exist in all.
#[derive(Default)]
struct State {
    idle: Vec<Idle>,
    open: usize,
}

impl State {
    /// Closes the idle connections the server dropped or that idled too long.
    fn drop_stale(&mut self, now: Instant) {
        let before = self.idle.len();
        self.idle
            .retain(|i| !i.db.is_closed() && now.duration_since(i.since) < IDLE_TIMEOUT);
        self.open = self.open.saturating_sub(before - self.idle.len());
    }
}

/// The runtime that drives the connections of every store of one manager (one per manager,
/// not per store, so a node with many stores does not run two threads for each).
pub(crate) struct PgRuntime {
    handle: Handle,
    runtime: Mutex<Option<Runtime>>,
}

impl PgRuntime {
    /// A runtime with two workers: they keep the connections' I/O going while callers block
    /// on their queries.
    pub(crate) fn new() -> Result<Arc<PgRuntime>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("everlock-pg")
            .enable_all()
            .build()?;
        Ok(Arc::new(PgRuntime {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        }))
    }

    /// The runtime's handle.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for PgRuntime {
    /// Shutting down in the background is allowed from async code too, where the last handle
    /// of a store may be dropped; a plain runtime drop would panic there.
    fn drop(&mut self) {
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            rt.shutdown_background();
        }
    }
}

/// Parses a connection URL (a malformed one is the operator's mistake, `Invalid`) and gives it
/// the connect timeout unless it names one.
pub(crate) fn parse_url(url: &str) -> Result<Config> {
    let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
        crate::error::StorageError::invalid("PostgreSQL URL", e.to_string())
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// The connections of every store of one manager: at most `max` exist on this node whatever
/// the number of stores, so many stores on many nodes stay within the server's
/// `max_connections`. A connection serves any store: it is switched to the store's schema
/// (`SET search_path`) when lent to another store than the last one (checkout prefers an idle
/// connection already in the right schema). PostgreSQL re-parses a prepared statement whose
/// `search_path` changed since its last use, so the statement cache stays valid across
/// switches (`few_connections_serve_many_stores_without_mixing_them` checks it).
pub(crate) struct SharedPool {
    config: Config,
    max: usize,
    state: Mutex<State>,
    returned: Condvar,
    handle: Handle,
    /// Keeps the runtime alive while this pool's connections run on it.
    _runtime: Arc<PgRuntime>,
}

impl SharedPool {
    /// A pool of at most `max` (at least one) connections to `config`, run on `runtime`;
    /// connects nothing yet.
    pub(crate) fn new(config: Config, runtime: Arc<PgRuntime>, max: usize) -> Arc<SharedPool> {
        Arc::new(SharedPool {
            config,
            max: max.max(1),
            state: Mutex::new(State::default()),
            returned: Condvar::new(),
            handle: runtime.handle().clone(),
            _runtime: runtime,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection working in `schema`: an idle one (preferably already in `schema`), a new
    /// one while fewer than `max` exist, or else the next one returned. Waiting is bounded:
    /// a node whose connections all stay busy answers `Unavailable` rather than hanging.
    fn get(&self, schema: &str) -> Result<Pooled<'_>> {
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut state = self.state();
        loop {
            state.drop_stale(Instant::now());
            let same = state.idle.iter().rposition(|i| i.db.in_schema(schema));
            if let Some(at) = same.or_else(|| state.idle.len().checked_sub(1)) {
                let idle = state.idle.swap_remove(at);
                drop(state);
                return self.enter(self.pooled(idle.db), schema);
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.handle.block_on(self.connect()) {
                    Ok(client) => self.enter(self.pooled(Arc::new(Db::new(client))), schema),
                    Err(e) => {
                        self.release_slot();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StorageError::Unavailable(format!(
                    "all {} PostgreSQL connections of this node stayed busy for {}s ([storage.postgres] max-connections)",
                    self.max,
                    WAIT_LIMIT.as_secs()
                )));
            }
            state = self
                .returned
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Forgets a connection that will not come back and wakes a waiter for its slot.
    fn release_slot(&self) {
        let mut state = self.state();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.returned.notify_one();
    }

    fn pooled(&self, client: Arc<Db>) -> Pooled<'_> {
        Pooled {
            pool: self,
            client,
            broken: AtomicBool::new(false),
        }
    }

    /// Switches `conn` to `schema` unless it works there already; a connection whose switch
    /// failed is closed (dropping `conn` releases its slot).
    fn enter<'a>(&self, conn: Pooled<'a>, schema: &str) -> Result<Pooled<'a>> {
        if conn.client.in_schema(schema) {
            return Ok(conn);
        }
        let sql = format!("SET search_path TO {}", super::quote_ident(schema));
        match self.handle.block_on(conn.client.client.batch_execute(&sql)) {
            Ok(()) => {
                conn.client.set_schema(schema);
                Ok(conn)
            }
            Err(e) => {
                conn.discard();
                Err(e.into())
            }
        }
    }

    async fn connect(&self) -> Result<Client> {
        let (client, connection) = self.config.connect(NoTls).await?;
        self.handle.spawn(async move {
            // The connection ends when its client is dropped or the server goes away; the
            // client then reports the error on its next query.
            let _ = connection.await;
        });
        client.batch_execute("SET synchronous_commit TO on").await?;
        Ok(client)
    }
}

impl Drop for SharedPool {
    /// Closes the idle connections before the runtime (possibly) goes with the last pool.
    fn drop(&mut self) {
        self.state().idle.clear();
    }
}

/// The connections of one store: the manager's [`SharedPool`], switched to the store's schema.
pub(super) struct Pool {
    shared: Arc<SharedPool>,
    schema: String,
}

impl Pool {
    /// The pool of the store whose tables are in `schema`.
    pub(super) fn new(shared: Arc<SharedPool>, schema: &str) -> Pool {
        Pool {
            shared,
            schema: schema.to_owned(),
        }
    }

    /// The runtime the connections run on.
    pub(super) fn handle(&self) -> &Handle {
        &self.shared.handle
    }

    /// A connection whose `search_path` is this store's schema.
    pub(super) fn get(&self) -> Result<Pooled<'_>> {
        self.shared.get(&self.schema)
    }
}

/// A connection lent out by the pool; it goes back when dropped.
pub(super) struct Pooled<'a> {
    pool: &'a SharedPool,
    client: Arc<Db>,
    broken: AtomicBool,
}

impl Pooled<'_> {
    /// The connection.
    pub(super) fn client(&self) -> &Db {
        &self.client
    }

    /// Closes the connection instead of returning it (its session state is unknown).
    pub(super) fn discard(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        // A caller that panicked may have left a transaction open on the connection.
        if self.broken.load(Ordering::Relaxed)
            || self.client.is_closed()
            || std::thread::panicking()
        {
            self.pool.release_slot();
            return;
        }
        let now = Instant::now();
        let mut state = self.pool.state();
        state.drop_stale(now);
        state.idle.push(Idle {
            db: Arc::clone(&self.client),
            since: now,
        });
        drop(state);
        self.pool.returned.notify_one();
    }
}

/// A connection with its prepared statements: the queries are a fixed set, so each is parsed
/// once per connection and later runs take one round trip instead of two.
pub(super) struct Db {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
    /// The schema the connection's `search_path` names now (empty: none set yet).
    schema: Mutex<String>,
}

/// Query parameters, as `tokio-postgres` takes them.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Db {
    fn new(client: Client) -> Db {
        Db {
            client,
            statements: Mutex::new(HashMap::new()),
            schema: Mutex::new(String::new()),
        }
    }

    fn in_schema(&self, schema: &str) -> bool {
        *self.schema.lock().unwrap_or_else(PoisonError::into_inner) == schema
    }

    /// Records the new `search_path`.
    fn set_schema(&self, schema: &str) {
        schema.clone_into(&mut self.schema.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    async fn prepare(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs a statement and returns its rows.
    pub(super) async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.prepare(sql).await?;
        self.client.query(&statement, params).await
    }

    /// Runs a statement that returns exactly one row.
    pub(super) async fn query_one(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, tokio_postgres::Error> {
        let statement = self.prepare(sql).await?;
        self.client.query_one(&statement, params).await
    }

    /// Runs a statement and returns the number of rows it changed.
    pub(super) async fn execute(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.prepare(sql).await?;
        self.client.execute(&statement, params).await
    }

    /// Runs statements without parameters (transaction control, DDL).
    pub(super) async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.client.batch_execute(sql).await
    }
}
