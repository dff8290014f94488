//! Webhooks (`[[settings.webhooks]]`): JSON notifications of pushes, deletes and pulls.
//!
//! A request never waits for a webhook: it hands its event to a bounded in-memory channel
//! (`try_send`; when the channel is full the event is dropped and logged). The instance's
//! delivery task ([`worker`]) writes each event, once per subscribed webhook, into the
//! instance's store under `_webhooks/queue/` (one commit per batch, so queued deliveries
//! survive a restart) and then POSTs them, retrying failures with exponential backoff
//! (1 s doubling up to 10 min, at most [`MAX_ATTEMPTS`] attempts); a delivered or abandoned
//! entry leaves the queue. The stored queue is bounded too ([`MAX_QUEUED`] entries).
//! Delivery is at least once: a receiver may see an event twice (after a crash between the
//! POST and the commit that removes it) and should use the `X-Everlock-Delivery` id.
//!
//! With a `secret`, each delivery carries `X-Everlock-Signature-256: sha256=<hex>`, the
//! HMAC-SHA256 of the exact body under the secret (GitHub's convention). Secrets never enter
//! the store: a queued entry names its webhook by URL and takes the secret from the current
//! settings when it is sent.

pub(crate) mod worker;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use everlock_host::InstanceStore;
use everlock_host::auth::Principal;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::names::{Name, OciDigest, Tag};

/// Events waiting for the delivery task in memory; more are dropped (and logged).
const CHANNEL: usize = 1024;
/// Deliveries waiting in the store at most; events beyond it are dropped (and logged).
pub(crate) const MAX_QUEUED: usize = 10_000;
/// Attempts per delivery before it is abandoned.
pub(crate) const MAX_ATTEMPTS: u32 = 8;
/// Outcomes remembered for `/oci webhooks`.
const RECENT: usize = 100;

/// One `[[settings.webhooks]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct WebhookConfig {
    /// Where deliveries are POSTed (`http://` or `https://`).
    pub(crate) url: String,
    /// The actions it receives.
    pub(crate) events: Vec<Action>,
    /// Signs every delivery when set.
    #[serde(default)]
    pub(crate) secret: Option<String>,
}

impl WebhookConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let scheme_ok = self.url.starts_with("http://") || self.url.starts_with("https://");
        if !scheme_ok || self.url.parse::<everlock_host::http::Uri>().is_err() {
            return Err(format!(
                "webhooks: url = {:?} must be an http:// or https:// URL",
                self.url
            ));
        }
        if self.events.is_empty() {
            return Err(format!(
                "webhooks: {} needs events (push, delete, pull)",
                self.url
            ));
        }
        if self.secret.as_deref() == Some("") {
            return Err(format!("webhooks: {}: secret must not be empty", self.url));
        }
        Ok(())
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Push,
    Delete,
    Pull,
}

/// The JSON envelope every delivery carries.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub(crate) struct Event {
    pub(crate) action: Action,
    pub(crate) repository: String,
    pub(crate) tag: Option<String>,
    pub(crate) digest: Option<String>,
    pub(crate) media_type: Option<String>,
    pub(crate) size: Option<u64>,
    pub(crate) actor: String,
    /// RFC 3339, UTC.
    pub(crate) timestamp: String,
    pub(crate) instance: String,
}

/// One line of `/oci webhooks`: how a delivery ended (or its latest failure).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Outcome {
    pub(crate) time: String,
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) action: Action,
    pub(crate) repository: String,
    pub(crate) attempts: u32,
    /// `delivered (200)`, `retrying: <error>` or `abandoned: <error>`.
    pub(crate) result: String,
}

/// The instance's webhook state: the channel into the delivery task and recent outcomes.
pub(crate) struct Webhooks {
    hooks: Arc<[WebhookConfig]>,
    tx: Option<mpsc::Sender<Event>>,
    recent: Arc<Mutex<VecDeque<Outcome>>>,
    instance: String,
}

impl Webhooks {
    /// Starts the delivery task when webhooks are configured and a runtime is there (not
    /// during `config check`); it ends when this value is dropped (an instance rebuild).
    pub(crate) fn start(
        instance: &str,
        hooks: Vec<WebhookConfig>,
        store: InstanceStore,
    ) -> Webhooks {
        let hooks: Arc<[WebhookConfig]> = hooks.into();
        let recent = Arc::new(Mutex::new(VecDeque::new()));
        let mut tx = None;
        if !hooks.is_empty()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (sender, rx) = mpsc::channel(CHANNEL);
            tx = Some(sender);
            let w = worker::Worker::new(instance, hooks.clone(), store, recent.clone());
            handle.spawn(w.run(rx));
        }
        Webhooks {
            hooks,
            tx,
            recent,
            instance: instance.to_owned(),
        }
    }

    /// Whether some webhook wants `action` (so callers skip building events nobody reads).
    pub(crate) fn wants(&self, action: Action) -> bool {
        self.tx.is_some() && self.hooks.iter().any(|h| h.events.contains(&action))
    }

    /// Hands an event to the delivery task without waiting.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn emit(
        &self,
        action: Action,
        actor: &str,
        repository: &str,
        tag: Option<String>,
        digest: Option<String>,
        media_type: Option<String>,
        size: Option<u64>,
    ) {
        if !self.wants(action) {
            return;
        }
        let event = Event {
            action,
            repository: repository.to_owned(),
            tag,
            digest,
            media_type,
            size,
            actor: actor.to_owned(),
            timestamp: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            instance: self.instance.clone(),
        };
        if let Some(tx) = &self.tx
            && tx.try_send(event).is_err()
        {
            tracing::warn!(instance = %self.instance, "oci webhooks: event dropped, the delivery queue is full");
        }
    }

    /// The recent outcomes, oldest first.
    pub(crate) fn recent(&self) -> Vec<Outcome> {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The configured webhooks.
    pub(crate) fn hooks(&self) -> &[WebhookConfig] {
        &self.hooks
    }
}

/// A manifest push: one event per tag it set (one without a tag for a push by digest).
pub(crate) fn pushed(
    w: &Webhooks,
    actor: &Principal,
    name: &Name,
    tags: &[Tag],
    digest: &OciDigest,
    media_type: &str,
    size: usize,
) {
    if !w.wants(Action::Push) {
        return;
    }
    let tags: Vec<Option<String>> = if tags.is_empty() {
        vec![None]
    } else {
        tags.iter().map(|t| Some(t.to_string())).collect()
    };
    for tag in tags {
        w.emit(
            Action::Push,
            actor.name(),
            name.as_str(),
            tag,
            Some(digest.to_string()),
            Some(media_type.to_owned()),
            Some(size as u64),
        );
    }
}

/// A tag or manifest delete.
pub(crate) fn deleted(
    w: &Webhooks,
    actor: &Principal,
    name: &Name,
    tag: Option<&Tag>,
    digest: Option<&OciDigest>,
) {
    w.emit(
        Action::Delete,
        actor.name(),
        name.as_str(),
        tag.map(ToString::to_string),
        digest.map(ToString::to_string),
        None,
        None,
    );
}

/// A manifest GET that succeeded (HEAD requests and blob reads send no event, so a pull is
/// one event, not one per layer).
pub(crate) fn pulled(
    w: &Webhooks,
    actor: &Principal,
    name: &Name,
    reference: &str,
    response: &everlock_host::axum::response::Response,
) {
    if !w.wants(Action::Pull) || !response.status().is_success() {
        return;
    }
    let h = response.headers();
    let text = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let tag = Tag::parse(reference).map(|t| t.to_string());
    w.emit(
        Action::Pull,
        actor.name(),
        name.as_str(),
        tag,
        text("docker-content-digest"),
        text("content-type"),
        text("content-length").and_then(|v| v.parse().ok()),
    );
}

/// Remembers an outcome, forgetting the oldest beyond [`RECENT`].
pub(crate) fn remember(recent: &Mutex<VecDeque<Outcome>>, outcome: Outcome) {
    let mut r = recent.lock().unwrap_or_else(PoisonError::into_inner);
    if r.len() >= RECENT {
        r.pop_front();
    }
    r.push_back(outcome);
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this never fails; the fallback only satisfies the
    // type and would produce a signature no receiver accepts.
    match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::from("sha256="),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature GitHub documents for its example secret and payload.
    #[test]
    fn signature_matches_githubs_published_example() {
        assert_eq!(
            signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn bad_webhooks_are_refused() {
        for bad in [
            "[[webhooks]]\nurl = \"ftp://x\"\nevents = [\"push\"]\n",
            "[[webhooks]]\nurl = \"http://x\"\nevents = []\n",
            "[[webhooks]]\nurl = \"http://x\"\nevents = [\"poke\"]\n",
            "[[webhooks]]\nurl = \"http://x\"\nevents = [\"push\"]\nsecret = \"\"\n",
        ] {
            let t: everlock_host::toml::Table = bad.parse().unwrap();
            assert!(crate::check(&t).is_err(), "{bad}");
        }
        let ok: everlock_host::toml::Table =
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/x\"\nevents = [\"push\", \"delete\"]\nsecret = \"s\"\n"
                .parse()
                .unwrap();
        crate::check(&ok).unwrap();
    }
}
