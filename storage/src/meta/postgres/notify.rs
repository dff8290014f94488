//! Change propagation between nodes: every commit transaction issues
//! `NOTIFY everlock_commits, '<store>'` (PostgreSQL delivers it only if, and when, the
//! transaction commits), and each manager keeps one `LISTEN` connection that moves the watch of
//! the named store ([`crate::changes::Hub`]) to the store's newest seq.
//!
//! When the listener connection is down (the server restarted, a proxy dropped it, an operator
//! terminated it), the task polls the newest seq of every store it watches every 500 ms while
//! it tries to reconnect, and once `LISTEN` is active again it polls once more, so a commit is
//! never missed, only seen up to half a second later.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use super::pool::Db;
use crate::changes::Hub;
use crate::error::Result;

/// The channel every node listens on; the payload is the store name.
pub(crate) const CHANNEL: &str = "everlock_commits";

/// How often the fallback polls while no listener is up.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long one connection attempt of the listener may take, so a hanging network never stops
/// the fallback polls for long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Announces a commit of store `schema`, inside the caller's transaction.
pub(super) async fn announce(c: &Db, schema: &str) -> Result<()> {
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &schema])
        .await?;
    Ok(())
}

/// What the listener task shares with its manager (and tests).
#[derive(Debug, Default)]
pub(crate) struct ListenerState {
    /// The backend pid of the live `LISTEN` connection, 0 while none is up.
    pid: AtomicI32,
    /// Tests set it to keep the listener from reconnecting, so the fallback has to work.
    hold_reconnect: AtomicBool,
}

impl ListenerState {
    /// The backend pid of the live listener connection, if one is up.
    #[cfg(test)]
    pub(crate) fn listener_pid(&self) -> Option<i32> {
        Some(self.pid.load(Ordering::Acquire)).filter(|p| *p != 0)
    }

    /// Keeps the listener down (after the next disconnection) while `hold` is true.
    #[cfg(test)]
    pub(crate) fn hold_reconnect(&self, hold: bool) {
        self.hold_reconnect.store(hold, Ordering::Release);
    }
}

/// Starts the listener of a manager on `handle`. It stops once `hub` is gone (the manager
/// dropped) or its runtime shuts down.
pub(crate) fn spawn(
    handle: &tokio::runtime::Handle,
    config: Config,
    hub: Weak<Hub>,
) -> Arc<ListenerState> {
    let state = Arc::new(ListenerState::default());
    handle.spawn(run(config, hub, state.clone()));
    state
}

async fn run(mut config: Config, hub: Weak<Hub>, state: Arc<ListenerState>) {
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("everlock-listener");
    let mut poller: Option<Client> = None;
    loop {
        if !state.hold_reconnect.load(Ordering::Acquire) {
            match listen(&config, &hub, &state, &mut poller).await {
                Ok(()) => {}
                Err(e) => tracing::debug!(error = %e, "change listener down; polling"),
            }
            state.pid.store(0, Ordering::Release);
        }
        let Some(strong) = hub.upgrade() else { return };
        if let Err(e) = poll_with(&config, &mut poller, &strong).await {
            tracing::debug!(error = %e, "change poll failed");
            poller = None;
        }
        drop(strong);
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Connects, `LISTEN`s, catches up once and then follows notifications until the connection
/// ends (or the hub goes).
async fn listen(
    config: &Config,
    hub: &Weak<Hub>,
    state: &ListenerState,
    poller: &mut Option<Client>,
) -> Result<()> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let pending = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let woken = Arc::new(Notify::new());
    let (pending2, woken2, hub2) = (pending.clone(), woken.clone(), hub.clone());
    // Drives the connection: answers to our queries and the notifications both arrive here.
    let mut driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            let AsyncMessage::Notification(n) = message else {
                continue;
            };
            // Only stores this manager watches are remembered, so the set stays bounded
            // whatever other nodes commit.
            if hub2.upgrade().is_some_and(|h| h.contains(n.payload())) {
                pending2
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(n.payload().to_owned());
                woken2.notify_one();
            }
        }
    });
    let result = follow(&client, hub, state, &pending, &woken, &mut driver, poller).await;
    driver.abort();
    result
}

async fn follow(
    client: &Client,
    hub: &Weak<Hub>,
    state: &ListenerState,
    pending: &Mutex<BTreeSet<String>>,
    woken: &Notify,
    driver: &mut tokio::task::JoinHandle<()>,
    poller: &mut Option<Client>,
) -> Result<()> {
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .try_get(0)?;
    state.pid.store(pid, Ordering::Release);
    // The fallback's connection goes once the listener is up, so the two never count twice
    // against the node's connection budget.
    *poller = None;
    // Whatever was committed before LISTEN took effect is caught up here.
    let Some(strong) = hub.upgrade() else {
        return Ok(());
    };
    poll(client, &strong, &strong.names()).await?;
    drop(strong);
    loop {
        tokio::select! {
            _ = &mut *driver => return Ok(()),
            () = woken.notified() => {}
        }
        let names: Vec<String> =
            std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        let Some(strong) = hub.upgrade() else {
            return Ok(());
        };
        poll(client, &strong, &names).await?;
    }
}

/// One fallback poll of every watched store, on a connection of its own (made on demand).
async fn poll_with(config: &Config, poller: &mut Option<Client>, hub: &Hub) -> Result<()> {
    if poller.as_ref().is_none_or(Client::is_closed) {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        *poller = Some(client);
    }
    if let Some(client) = poller.as_ref() {
        poll(client, hub, &hub.names()).await?;
    }
    Ok(())
}

/// Moves the watch of each of `names` to its store's newest seq.
async fn poll(client: &Client, hub: &Hub, names: &[String]) -> Result<()> {
    for name in names {
        let sql = format!(
            "SELECT coalesce(max(seq), 0) FROM {}.commits",
            super::quote_ident(name)
        );
        match client.query_one(&sql, &[]).await {
            Ok(row) => {
                let seq: i64 = row.try_get(0)?;
                hub.advance(name, super::super::to_u64(seq));
            }
            // A store opened by this manager always has its schema; a failure other than the
            // connection's is logged and the others are still polled.
            Err(e) if e.code().is_some() => {
                tracing::debug!(store = %name, error = %e, "change poll of a store failed");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
