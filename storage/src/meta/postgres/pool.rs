//! A bounded pool of `tokio-postgres` connections, and the runtime that drives them.
//!
//! Every connection has the store's schema as its `search_path` and `synchronous_commit` on,
//! so a COMMIT that returns is durable whatever the server's default. At most `max`
//! connections exist; a caller beyond that waits for one to come back, so a burst of requests
//! cannot exhaust the server's connection slots.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use crate::error::Result;

/// How long opening a connection may take before the caller gets an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle connections and how many exist in all.
#[derive(Default)]
struct State {
    idle: Vec<Arc<Db>>,
    open: usize,
}

/// The pool of one store.
pub(super) struct Pool {
    config: Config,
    /// `SET` statements every new connection runs first.
    session: String,
    max: usize,
    state: Mutex<State>,
    returned: Condvar,
    handle: Handle,
    runtime: Option<Runtime>,
}

impl Pool {
    /// A pool for `url` whose connections work in `schema`; connects nothing yet.
    pub(super) fn new(url: &str, schema: &str, max: usize) -> Result<Pool> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // Two workers keep the connections' I/O going while callers block on their queries.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("everlock-pg")
            .enable_all()
            .build()?;
        Ok(Pool {
            config,
            session: format!(
                "SET search_path TO {}; SET synchronous_commit TO on",
                super::quote_ident(schema)
            ),
            max,
            state: Mutex::new(State::default()),
            returned: Condvar::new(),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// The runtime the connections run on.
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, a new one while fewer than `max` exist, or else the next one
    /// returned.
    pub(super) fn get(&self) -> Result<Pooled<'_>> {
        let mut state = self.state();
        loop {
            if let Some(client) = state.idle.pop() {
                if client.is_closed() {
                    // The server or the network dropped it; its slot is free again.
                    state.open = state.open.saturating_sub(1);
                    continue;
                }
                return Ok(self.pooled(client));
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.handle.block_on(self.connect()) {
                    Ok(client) => Ok(self.pooled(Arc::new(Db::new(client)))),
                    Err(e) => {
                        let mut state = self.state();
                        state.open = state.open.saturating_sub(1);
                        drop(state);
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn pooled(&self, client: Arc<Db>) -> Pooled<'_> {
        Pooled {
            pool: self,
            client,
            broken: std::sync::atomic::AtomicBool::new(false),
        }
    }

    async fn connect(&self) -> Result<Client> {
        let (client, connection) = self.config.connect(NoTls).await?;
        self.handle.spawn(async move {
            // The connection ends when its client is dropped or the server goes away; the
            // client then reports the error on its next query.
            let _ = connection.await;
        });
        client.batch_execute(&self.session).await?;
        Ok(client)
    }
}

impl Drop for Pool {
    /// Shutting down in the background is allowed from async code too, where the last handle
    /// of a store may be dropped; a plain runtime drop would panic there.
    fn drop(&mut self) {
        self.state().idle.clear();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A connection lent out by the pool; it goes back when dropped.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    client: Arc<Db>,
    broken: std::sync::atomic::AtomicBool,
}

impl Pooled<'_> {
    /// The connection.
    pub(super) fn client(&self) -> &Db {
        &self.client
    }

    /// Closes the connection instead of returning it (its session state is unknown).
    pub(super) fn discard(&self) {
        self.broken
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.state();
        // A caller that panicked may have left a transaction open on the connection.
        if self.broken.load(std::sync::atomic::Ordering::Relaxed)
            || self.client.is_closed()
            || std::thread::panicking()
        {
            state.open = state.open.saturating_sub(1);
        } else {
            state.idle.push(Arc::clone(&self.client));
        }
        drop(state);
        self.pool.returned.notify_one();
    }
}

/// A connection with its prepared statements: the queries are a fixed set, so each is parsed
/// once per connection and later runs take one round trip instead of two.
pub(super) struct Db {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

/// Query parameters, as `tokio-postgres` takes them.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Db {
    fn new(client: Client) -> Db {
        Db {
            client,
            statements: Mutex::new(HashMap::new()),
        }
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
