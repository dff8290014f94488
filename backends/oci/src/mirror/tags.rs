//! The tag list of a mirror: the upstream's tags merged with the local ones, so a client
//! can discover what it may pull through the mirror. The upstream's list is kept in memory
//! for `upstream-tag-ttl-secs` per repository and served from there while the upstream
//! cannot be reached; a list never fetched leaves only the local tags.

use std::time::Instant;

use everlock_host::http::{Method, StatusCode};
use serde::Deserialize;

use super::{Mirror, read_limited};
use crate::names::{Name, Tag};
use crate::registry::Registry;

/// The largest upstream tag list read, in bytes (about 100 000 tags); a larger answer is
/// treated like an unreachable upstream rather than buffered.
const MAX_LIST_BYTES: u64 = 4 * 1024 * 1024;
/// Repositories whose upstream list is remembered at most; beyond it the memory starts
/// over, as for the tag checks.
const MAX_LISTS: usize = 1024;

/// The body of `GET /v2/<name>/tags/list` (`tags` is `null` on some registries).
#[derive(Deserialize)]
struct TagList {
    tags: Option<Vec<String>>,
}

/// The upstream's tags of `name` for a mirror instance: fresh from the cache, else asked
/// upstream (an unknown repository there has no tags), else the stale cached list when the
/// upstream fails. `None` when the instance is no mirror or nothing is known.
pub(crate) async fn upstream_tags(reg: &Registry, name: &Name) -> Option<Vec<String>> {
    let mirror = reg.mirror.as_ref()?;
    let key = name.to_string();
    if let Some((at, tags)) = mirror.cached_list(&key)
        && at.elapsed() < mirror.tag_ttl
    {
        return Some(tags);
    }
    match fetch(mirror, name).await {
        Ok(tags) => {
            mirror.remember_list(key, tags.clone());
            Some(tags)
        }
        Err(e) => {
            tracing::warn!(instance = %reg.instance, %name, error = %e, "oci mirror: upstream tag list unavailable; serving the cached one");
            mirror.cached_list(&key).map(|(_, tags)| tags)
        }
    }
}

/// Asks the upstream for its tag list; invalid tag names are dropped, since nothing could
/// pull them through this registry anyway.
async fn fetch(mirror: &Mirror, name: &Name) -> Result<Vec<String>, String> {
    let answer = mirror
        .upstream
        .send(Method::GET, name, "tags/list", &["application/json"])
        .await
        .map_err(|e| e.to_string())?;
    if answer.status() == StatusCode::NOT_FOUND {
        return Ok(Vec::new());
    }
    if !answer.status().is_success() {
        return Err(format!("upstream answered {}", answer.status()));
    }
    if answer.content_length().is_some_and(|n| n > MAX_LIST_BYTES) {
        return Err(format!(
            "upstream tag list larger than {MAX_LIST_BYTES} bytes"
        ));
    }
    let bytes = read_limited(answer, MAX_LIST_BYTES).await?;
    let list: TagList =
        serde_json::from_slice(&bytes).map_err(|e| format!("upstream tag list: {e}"))?;
    Ok(list
        .tags
        .unwrap_or_default()
        .into_iter()
        .filter(|t| Tag::parse(t).is_some())
        .collect())
}

impl Mirror {
    fn cached_list(&self, key: &str) -> Option<(Instant, Vec<String>)> {
        let lists = self
            .tag_lists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lists.get(key).cloned()
    }

    fn remember_list(&self, key: String, tags: Vec<String>) {
        let mut lists = self
            .tag_lists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lists.len() >= MAX_LISTS && !lists.contains_key(&key) {
            lists.clear();
        }
        lists.insert(key, (Instant::now(), tags));
    }
}
