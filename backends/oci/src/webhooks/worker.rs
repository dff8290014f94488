//! The delivery task of one instance: persists events into the store's queue, POSTs them,
//! and retries with backoff. It starts by delivering what a previous run left queued.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use everlock_host::InstanceStore;
use everlock_host::storage::{CommitMeta, Entry, Expected, Op, Precondition, StorageError, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Event, MAX_ATTEMPTS, MAX_QUEUED, Outcome, WebhookConfig, remember, signature};

/// Where queued deliveries live in the store (outside `repos/` and `blobs/`).
pub(crate) const QUEUE: &str = "_webhooks/queue/";
/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long to wait when the store cannot be opened or written, before trying again.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// One queued delivery as stored (JSON).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct Queued {
    pub(crate) url: String,
    pub(crate) attempts: u32,
    /// Not before this time (ms since the epoch).
    pub(crate) next_ms: i64,
    #[serde(default)]
    pub(crate) last_error: Option<String>,
    /// The exact body to send (the serialized [`Event`]).
    pub(crate) body: String,
}

pub(crate) struct Worker {
    instance: String,
    hooks: Arc<[WebhookConfig]>,
    store: InstanceStore,
    recent: Arc<Mutex<VecDeque<Outcome>>>,
    counter: AtomicU64,
}

fn now_ms() -> i64 {
    crate::gc::now_ms()
}

impl Worker {
    pub(crate) fn new(
        instance: &str,
        hooks: Arc<[WebhookConfig]>,
        store: InstanceStore,
        recent: Arc<Mutex<VecDeque<Outcome>>>,
    ) -> Worker {
        Worker {
            instance: instance.to_owned(),
            hooks,
            store,
            recent,
            counter: AtomicU64::new(0),
        }
    }

    /// Runs until `rx` closes (the instance's `Webhooks` was dropped).
    pub(crate) async fn run(self, mut rx: mpsc::Receiver<Event>) {
        let client = match client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(instance = %self.instance, error = %e, "oci webhooks: no HTTP client; deliveries stay queued");
                return;
            }
        };
        let mut wait = Duration::ZERO;
        loop {
            let first = tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => Some(ev),
                    None => return,
                },
                () = tokio::time::sleep(wait) => None,
            };
            let mut batch: Vec<Event> = first.into_iter().collect();
            while let Ok(ev) = rx.try_recv() {
                batch.push(ev);
            }
            wait = match self.store.get().await {
                Ok(store) => self.round(store, &client, batch).await,
                Err(e) => {
                    tracing::warn!(instance = %self.instance, error = %e, "oci webhooks: store unavailable");
                    STORE_RETRY
                }
            };
        }
    }

    /// Persists `batch`, sends what is due, and returns how long to sleep before the next due.
    async fn round(&self, store: &Store, client: &reqwest::Client, batch: Vec<Event>) -> Duration {
        if let Err(e) = self.persist(store, batch).await {
            tracing::warn!(instance = %self.instance, error = %e, "oci webhooks: cannot queue events");
        }
        let entries = match store.list(QUEUE).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(instance = %self.instance, error = %e, "oci webhooks: cannot read the queue");
                return STORE_RETRY;
            }
        };
        let mut next: Option<i64> = None;
        for entry in entries {
            let Ok(bytes) = store.read(&entry.path).await else {
                continue;
            };
            let Ok(q) = serde_json::from_slice::<Queued>(&bytes) else {
                // Not ours to understand: drop it rather than loop on it forever.
                let _ = self.remove(store, &entry).await;
                continue;
            };
            if q.next_ms > now_ms() {
                next = Some(next.map_or(q.next_ms, |n| n.min(q.next_ms)));
                continue;
            }
            if let Some(retry_at) = self.deliver(store, client, &entry, q).await {
                next = Some(next.map_or(retry_at, |n| n.min(retry_at)));
            }
        }
        next.map_or(Duration::from_secs(3600), |t| {
            Duration::from_millis(u64::try_from(t.saturating_sub(now_ms())).unwrap_or(0))
        })
    }

    /// Writes one queue entry per (event, subscribed webhook) in one commit.
    async fn persist(&self, store: &Store, batch: Vec<Event>) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let queued = store.list(QUEUE).await?.len();
        let mut ops = Vec::new();
        for ev in batch {
            let Ok(body) = serde_json::to_string(&ev) else {
                continue;
            };
            for hook in self.hooks.iter().filter(|h| h.events.contains(&ev.action)) {
                if queued + ops.len() >= MAX_QUEUED {
                    tracing::warn!(instance = %self.instance, url = %hook.url, "oci webhooks: queue full, event dropped");
                    continue;
                }
                let q = Queued {
                    url: hook.url.clone(),
                    attempts: 0,
                    next_ms: 0,
                    last_error: None,
                    body: body.clone(),
                };
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                // Sortable: time, then a per-process counter; the pid keeps two processes
                // that share a store across a restart from colliding.
                let id = format!("{:013}-{:08}-{n:06}", now_ms(), std::process::id());
                ops.push(Op::PutBytes {
                    path: format!("{QUEUE}{id}"),
                    bytes: serde_json::to_vec(&q).unwrap_or_default(),
                });
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        store
            .commit(
                ops,
                Vec::new(),
                CommitMeta::new("system", "oci webhooks: queue events"),
            )
            .await
            .map(|_| ())
    }

    /// Sends one delivery; returns when to try again if it failed and may be retried.
    async fn deliver(
        &self,
        store: &Store,
        client: &reqwest::Client,
        entry: &Entry,
        mut q: Queued,
    ) -> Option<i64> {
        let id = entry.path.strip_prefix(QUEUE).unwrap_or("").to_owned();
        let event: Option<Event> = serde_json::from_str(&q.body).ok();
        let Some(hook) = self.hooks.iter().find(|h| h.url == q.url) else {
            // The webhook was removed from the settings: its deliveries go with it.
            let _ = self.remove(store, entry).await;
            return None;
        };
        q.attempts += 1;
        let result = send(client, hook, &id, event.as_ref(), &q.body).await;
        let outcome = |result: String, attempts: u32| Outcome {
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            id: id.clone(),
            url: q.url.clone(),
            action: event.as_ref().map_or(super::Action::Push, |e| e.action),
            repository: event
                .as_ref()
                .map(|e| e.repository.clone())
                .unwrap_or_default(),
            attempts,
            result,
        };
        match result {
            Ok(status) => {
                remember(
                    &self.recent,
                    outcome(format!("delivered ({status})"), q.attempts),
                );
                if let Err(e) = self.remove(store, entry).await {
                    tracing::warn!(instance = %self.instance, error = %e, "oci webhooks: delivered, but cannot dequeue");
                }
                None
            }
            Err(error) if q.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(instance = %self.instance, url = %q.url, %error, "oci webhooks: delivery abandoned");
                remember(
                    &self.recent,
                    outcome(format!("abandoned: {error}"), q.attempts),
                );
                let _ = self.remove(store, entry).await;
                None
            }
            Err(error) => {
                let backoff = Duration::from_secs(1u64 << q.attempts.saturating_sub(1).min(20))
                    .min(MAX_BACKOFF);
                q.next_ms =
                    now_ms().saturating_add(i64::try_from(backoff.as_millis()).unwrap_or(0));
                remember(
                    &self.recent,
                    outcome(format!("retrying: {error}"), q.attempts),
                );
                q.last_error = Some(error);
                let ops = vec![Op::PutBytes {
                    path: entry.path.clone(),
                    bytes: serde_json::to_vec(&q).unwrap_or_default(),
                }];
                let pre = vec![Precondition {
                    path: entry.path.clone(),
                    expected: Expected::Version(entry.version),
                }];
                let meta = CommitMeta::new("system", "oci webhooks: delivery failed, retry later");
                if let Err(e) = store.commit(ops, pre, meta).await {
                    tracing::warn!(instance = %self.instance, error = %e, "oci webhooks: cannot record the failure");
                }
                Some(q.next_ms)
            }
        }
    }

    async fn remove(&self, store: &Store, entry: &Entry) -> Result<(), StorageError> {
        let pre = vec![Precondition {
            path: entry.path.clone(),
            expected: Expected::Version(entry.version),
        }];
        let op = vec![Op::Delete {
            path: entry.path.clone(),
        }];
        match store
            .commit(op, pre, CommitMeta::new("system", "oci webhooks: dequeue"))
            .await
        {
            Ok(_) | Err(StorageError::Conflict { .. } | StorageError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// POSTs a body; the status on a 2xx, else a one-line error.
async fn send(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    id: &str,
    event: Option<&Event>,
    body: &str,
) -> Result<u16, String> {
    let mut req = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-everlock-delivery", id)
        .body(body.to_owned());
    if let Some(e) = event {
        let action = serde_json::to_value(e.action).ok();
        if let Some(a) = action.as_ref().and_then(|v| v.as_str()) {
            req = req.header("x-everlock-event", a);
        }
    }
    if let Some(secret) = &hook.secret {
        req = req.header(
            "x-everlock-signature-256",
            signature(secret, body.as_bytes()),
        );
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Err(format!("{e}")),
    }
}

fn client() -> Result<reqwest::Client, reqwest::Error> {
    // reqwest is built without a bundled crypto provider; ring is the one the whole binary
    // uses. Installing fails only when a provider is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .user_agent(concat!("everlock-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}
