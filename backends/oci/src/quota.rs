//! Quotas (`[[settings.quota]]`): the bytes a group of repositories may hold.
//!
//! A repository uses the bytes of the distinct blobs its manifests reference plus the bytes
//! of its manifests; a quota's usage is the same over every repository its `repositories`
//! pattern matches, each blob counted once however many of them share it. Blobs uploaded
//! but not referenced by any manifest do not count (`gc` removes them after the grace).
//!
//! The check runs at manifest PUT, the moment a push makes its blobs part of a repository:
//! a push whose manifest would take any matching quota past its `bytes` gets 403 `DENIED`
//! "quota exceeded for <pattern>: used X of Y bytes", and its blobs stay unreferenced until
//! `gc`. Two pushes racing can both pass the check, so a quota can be overshot by at most
//! the pushes in flight at the same moment.
//!
//! Usage is cached: the index is rebuilt only when the store's HEAD has moved since it was
//! built, from two metadata listings (`repos/`, `blobs/`); manifests are immutable per digest,
//! so each one is read and parsed once per process (a bounded cache), not once per rebuild.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use everlock_host::http::StatusCode;
use everlock_host::storage::{StorageError, Store};
use serde::{Deserialize, Serialize};

use crate::error::{Code, OciError, OciResult};
use crate::layout;
use crate::manifests;
use crate::names::{Name, OciDigest};
use crate::retention::glob;

/// Parsed manifests remembered at most (each holds its blob digests); beyond it the cache
/// starts over, which costs re-reading manifests, never a wrong answer.
const PARSED_CACHE: usize = 100_000;

/// One `[[settings.quota]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct QuotaRule {
    /// Pattern of the repositories sharing the quota.
    pub(crate) repositories: String,
    /// The bytes they may hold together.
    pub(crate) bytes: u64,
}

impl QuotaRule {
    pub(crate) fn validate(&self) -> Result<(), String> {
        glob::validate(&self.repositories, "quota")
    }
}

/// One repository's usage.
#[derive(Clone, Debug, Default)]
pub(crate) struct RepoUsage {
    blobs: BTreeSet<OciDigest>,
    manifest_bytes: u64,
    manifests: u64,
}

/// The usage index at one HEAD.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    seq: u64,
    repos: BTreeMap<Name, RepoUsage>,
    blob_sizes: HashMap<OciDigest, u64>,
}

/// One line of `/oci usage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct RepoLine {
    pub(crate) repository: String,
    pub(crate) bytes: u64,
    pub(crate) manifests: u64,
}

/// One quota's usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct QuotaLine {
    pub(crate) repositories: String,
    pub(crate) used: u64,
    pub(crate) limit: u64,
}

impl Usage {
    fn blob_bytes<'a>(
        &self,
        blobs: impl Iterator<Item = &'a OciDigest>,
        more: Option<&HashMap<OciDigest, u64>>,
    ) -> u64 {
        blobs
            .map(|d| {
                self.blob_sizes
                    .get(d)
                    .or_else(|| more.and_then(|m| m.get(d)))
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// Bytes per repository, in name order.
    pub(crate) fn repositories(&self) -> Vec<RepoLine> {
        self.repos
            .iter()
            .map(|(name, r)| RepoLine {
                repository: name.to_string(),
                bytes: self.blob_bytes(r.blobs.iter(), None) + r.manifest_bytes,
                manifests: r.manifests,
            })
            .collect()
    }

    /// A quota's usage, optionally with one more manifest.
    fn quota_used(&self, pattern: &str, extra: Option<&Extra<'_>>) -> u64 {
        let mut blobs: BTreeSet<&OciDigest> = BTreeSet::new();
        let mut manifest_bytes = 0u64;
        for (name, r) in &self.repos {
            if glob::matches(pattern, name.as_str()) {
                blobs.extend(r.blobs.iter());
                manifest_bytes += r.manifest_bytes;
            }
        }
        if let Some(x) = extra
            && glob::matches(pattern, x.name.as_str())
        {
            blobs.extend(x.blobs.iter());
            manifest_bytes += x.manifest_bytes;
        }
        self.blob_bytes(blobs.into_iter(), extra.map(|x| x.sizes)) + manifest_bytes
    }

    /// Every quota's usage.
    pub(crate) fn quotas(&self, rules: &[QuotaRule]) -> Vec<QuotaLine> {
        rules
            .iter()
            .map(|q| QuotaLine {
                repositories: q.repositories.clone(),
                used: self.quota_used(&q.repositories, None),
                limit: q.bytes,
            })
            .collect()
    }
}

/// A manifest being pushed, added to the usage for the check.
struct Extra<'a> {
    name: &'a Name,
    /// Zero when the repository already holds the manifest.
    manifest_bytes: u64,
    blobs: &'a BTreeSet<OciDigest>,
    /// Sizes of blobs newer than the index.
    sizes: &'a HashMap<OciDigest, u64>,
}

/// The blob digests of each parsed manifest, by repository and digest.
type ParsedCache = HashMap<(Name, OciDigest), Arc<BTreeSet<OciDigest>>>;

/// The per-instance cache.
#[derive(Default)]
pub(crate) struct QuotaState {
    /// The last index; the async mutex makes concurrent rebuilds share one.
    index: tokio::sync::Mutex<Option<Arc<Usage>>>,
    /// Blob digests of each manifest ever parsed (manifests never change under a digest).
    parsed: Mutex<ParsedCache>,
}

impl QuotaState {
    /// The usage at the current HEAD, rebuilt only if HEAD moved.
    pub(crate) async fn usage(&self, store: &Store) -> Result<Arc<Usage>, StorageError> {
        let mut guard = self.index.lock().await;
        let seq = store.head_seq();
        if let Some(u) = guard.as_ref()
            && u.seq == seq
        {
            return Ok(u.clone());
        }
        let built = Arc::new(self.build(store, seq).await?);
        *guard = Some(built.clone());
        Ok(built)
    }

    async fn build(&self, store: &Store, seq: u64) -> Result<Usage, StorageError> {
        let mut usage = Usage {
            seq,
            ..Usage::default()
        };
        for e in store.list(layout::BLOBS).await? {
            if let Some(d) = e
                .path
                .strip_prefix(layout::BLOBS)
                .and_then(layout::digest_from_path)
            {
                usage.blob_sizes.insert(d, e.size);
            }
        }
        for e in store.list(layout::REPOS).await? {
            let Some(rest) = e.path.strip_prefix(layout::REPOS) else {
                continue;
            };
            let Some((name, tail)) = rest.split_once(layout::MANIFESTS_DIR) else {
                continue;
            };
            let (Some(name), Some(d)) = (Name::parse(name), layout::digest_from_path(tail)) else {
                continue;
            };
            let blobs = self.manifest_blobs(store, &name, &d).await?;
            let r = usage.repos.entry(name).or_default();
            r.blobs.extend(blobs.iter().cloned());
            r.manifest_bytes += e.size;
            r.manifests += 1;
        }
        Ok(usage)
    }

    async fn manifest_blobs(
        &self,
        store: &Store,
        name: &Name,
        d: &OciDigest,
    ) -> Result<Arc<BTreeSet<OciDigest>>, StorageError> {
        let key = (name.clone(), d.clone());
        if let Some(b) = self.cache().get(&key) {
            return Ok(b.clone());
        }
        let blobs = match store.read(&layout::manifest(name, d)).await {
            Ok(bytes) => manifests::parse(&bytes, None)
                .map(|p| p.blobs)
                .unwrap_or_default(),
            Err(StorageError::NotFound(_)) => BTreeSet::new(),
            Err(e) => return Err(e),
        };
        let blobs = Arc::new(blobs);
        let mut cache = self.cache();
        if cache.len() >= PARSED_CACHE {
            cache.clear();
        }
        cache.insert(key, blobs.clone());
        Ok(blobs)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ParsedCache> {
        self.parsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Refuses a manifest push that would take a quota past its limit.
pub(crate) async fn check(
    state: &QuotaState,
    rules: &[QuotaRule],
    store: &Store,
    name: &Name,
    digest: &OciDigest,
    parsed: &manifests::Parsed,
    len: u64,
) -> OciResult<()> {
    let matching: Vec<&QuotaRule> = rules
        .iter()
        .filter(|q| glob::matches(&q.repositories, name.as_str()))
        .collect();
    if matching.is_empty() {
        return Ok(());
    }
    let usage = state
        .usage(store)
        .await
        .map_err(|e| OciError::internal(&e))?;
    // Blobs uploaded since the index was built are missing from its sizes: stat them.
    let mut sizes = HashMap::new();
    for d in parsed
        .blobs
        .iter()
        .filter(|d| !usage.blob_sizes.contains_key(*d))
    {
        if let Some(e) = store
            .stat(&layout::blob(d))
            .await
            .map_err(|e| OciError::internal(&e))?
        {
            sizes.insert(d.clone(), e.size);
        }
    }
    // A manifest already in the repository (a re-tag) adds no bytes.
    let exists = store
        .stat(&layout::manifest(name, digest))
        .await
        .map_err(|e| OciError::internal(&e))?
        .is_some();
    let extra = Extra {
        name,
        manifest_bytes: if exists { 0 } else { len },
        blobs: &parsed.blobs,
        sizes: &sizes,
    };
    for q in matching {
        let used = usage.quota_used(&q.repositories, Some(&extra));
        if used > q.bytes {
            return Err(OciError::new(
                StatusCode::FORBIDDEN,
                Code::Denied,
                format!(
                    "quota exceeded for {}: used {used} of {} bytes",
                    q.repositories, q.bytes
                ),
            ));
        }
    }
    Ok(())
}
