//! Pull-through mirror (issue #15 item 1): an instance with `upstream` set fetches the
//! manifests and blobs it lacks from that registry and keeps them, so later pulls are local.
//!
//! - Manifests are small (bounded by `max-manifest-bytes`): fetched whole, validated, and
//!   committed before the normal read path serves them. A tag is asked upstream again once
//!   `upstream-tag-ttl-secs` have passed since it was last checked (a HEAD first: an unchanged
//!   digest costs no download); if upstream cannot be reached the cached manifest is served.
//! - Blobs are streamed to the client while they are stored (`fetch`), once per digest
//!   however many clients ask at the same time (`flights`); a store that falls behind the
//!   client reads the rest of the blob by one ranged GET after it (`catchup`).
//! - The tag list is the upstream's merged with the local tags, the upstream's cached for
//!   the tag TTL and served from that cache while the upstream is down (`tags`).
//! - Pushes are refused (405 `UNSUPPORTED`) unless `allow-push = true`.
//!
//! Authorization is this registry's own: a caller must be allowed to read the repository
//! here before anything is fetched for it.
//!
//! This file holds the mirror's state (below the registry's, which holds it); the request
//! handling that reads the registry lives in `serve` and `tags`, above it, and the settings
//! values in `config`, below everything.

mod catchup;
mod client;
pub(crate) mod config;
mod fetch;
mod flights;
pub(crate) mod serve;
pub(crate) mod tags;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use client::Upstream;
use config::{MirrorConfig, Secret, password_env};
use flights::Flights;
#[cfg(test)]
pub(crate) use {catchup::LAG, fetch::gate};

/// Tags whose last upstream check is remembered at most; beyond it the memory starts over
/// (every tag is then checked upstream once more).
const MAX_CHECKED: usize = 16 * 1024;

/// The mirror state of an instance.
pub(crate) struct Mirror {
    upstream: Arc<Upstream>,
    tag_ttl: Duration,
    allow_push: bool,
    /// When each `name:tag` was last checked upstream.
    checked: Mutex<HashMap<String, Instant>>,
    /// The upstream's tag list per repository and when it was fetched (`tags`).
    tag_lists: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    flights: Flights,
    slots: Arc<Semaphore>,
}

impl Mirror {
    /// The mirror of an instance, `None` when it has no upstream.
    pub(crate) fn new(instance: &str, s: MirrorConfig<'_>) -> Result<Option<Mirror>, String> {
        let Some(raw) = s.upstream else {
            return Ok(None);
        };
        let base = config::upstream_url(raw)?;
        let password = s.password.cloned().or_else(|| {
            std::env::var(password_env(instance))
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret)
        });
        let upstream = Arc::new(Upstream::new(
            base,
            s.username.map(str::to_owned),
            password,
        )?);
        Ok(Some(Mirror {
            upstream,
            tag_ttl: Duration::from_secs(s.tag_ttl_secs),
            allow_push: s.allow_push,
            checked: Mutex::new(HashMap::new()),
            tag_lists: Mutex::new(HashMap::new()),
            flights: Flights::default(),
            slots: Arc::new(Semaphore::new(flights::MAX_FLIGHTS)),
        }))
    }

    /// The upstream's origin, `scheme://host[:port]`.
    pub(crate) fn origin(&self) -> String {
        self.upstream.origin()
    }

    fn fresh(&self, key: &str) -> bool {
        let checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked.get(key).is_some_and(|t| t.elapsed() < self.tag_ttl)
    }

    fn mark_checked(&self, key: String) {
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked.len() >= MAX_CHECKED {
            checked.clear();
        }
        checked.insert(key, Instant::now());
    }
}

/// Reads an upstream answer of at most `limit` bytes.
pub(crate) async fn read_limited(answer: reqwest::Response, limit: u64) -> Result<Vec<u8>, String> {
    use futures_util::StreamExt as _;
    let mut out = Vec::new();
    let mut body = answer.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("upstream: {e}"))?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(format!("upstream manifest larger than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
