//! Registry garbage collection: removes blobs that no manifest references and, on request,
//! manifests that no tag or index reaches, after a grace period, safely while pushes run.
//!
//! Safety comes from the store's compare-and-swap commits, not from a lock (reference/oci.md
//! §14 "GC races"). A manifest push rewrites the repository links of every blob it references
//! and the media-type entry of every child manifest, with preconditions that they still exist.
//! Each GC delete requires the versions it scanned to be unchanged. So for any push racing a
//! delete, exactly one of the two commits wins: either the push lands first and the delete
//! fails its precondition (the blob stays), or the delete lands first and the push fails with
//! `MANIFEST_BLOB_UNKNOWN` (the client uploads again). A blob uploaded for a manifest not yet
//! pushed is protected by the grace period.
//!
//! Deleting paths frees no bytes by itself: the versions stay in the store's history until its
//! retention purges them and the store's object GC removes the files. The registry's store
//! purges content HEAD no longer references once the grace period has passed (the default
//! policy set in `Registry::open_store`), the server's maintenance task runs that GC on a
//! schedule, and the console's `gc` runs it right after this collection with the same grace.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use everlock_host::storage::{CommitMeta, Entry, Expected, Op, Precondition, StorageError, Store};

use crate::error::OciError;
use crate::layout;
use crate::manifests::{self, Parsed};
use crate::names::{Name, OciDigest};

/// What `gc` should do.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Also remove manifests that no tag reaches (directly or through an index, or as a
    /// referrer of a reachable manifest).
    pub untagged: bool,
    /// Report without changing anything.
    pub dry_run: bool,
    /// Never remove anything written less than this long ago.
    pub grace: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            untagged: false,
            dry_run: false,
            grace: Duration::from_secs(3600),
        }
    }
}

/// What a run removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// `<repository>@<digest>` of each untagged manifest removed.
    pub manifests: Vec<String>,
    /// Digests of the blobs removed.
    pub blobs: Vec<String>,
    /// Their total size in bytes.
    pub blob_bytes: u64,
    /// Candidates skipped because a concurrent change touched them.
    pub skipped: u64,
}

impl std::fmt::Display for GcReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for m in &self.manifests {
            writeln!(f, "manifest {m}")?;
        }
        for b in &self.blobs {
            writeln!(f, "blob {b}")?;
        }
        write!(
            f,
            "{} manifests, {} blobs ({} bytes), {} skipped because they changed meanwhile",
            self.manifests.len(),
            self.blobs.len(),
            self.blob_bytes,
            self.skipped
        )
    }
}

/// Why a GC run failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The store failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// One repository's state as scanned.
#[derive(Default)]
pub(crate) struct Repo {
    pub(crate) manifests: BTreeMap<OciDigest, Entry>,
    pub(crate) mtypes: HashMap<OciDigest, Entry>,
    pub(crate) tags: Vec<Entry>,
    pub(crate) links: BTreeMap<OciDigest, Entry>,
}

/// Runs a collection over a registry's store.
pub async fn gc(store: &Store, opts: &GcOptions) -> Result<GcReport, GcError> {
    let mut report = GcReport::default();
    let now = now_ms();
    let cutoff = now.saturating_sub(i64::try_from(opts.grace.as_millis()).unwrap_or(i64::MAX));
    let mut repos = scan(store).await?;
    let mut parsed = parse_all(store, &repos).await?;
    let run = Run {
        store,
        opts,
        cutoff,
    };
    if opts.untagged {
        for (name, repo) in &mut repos {
            run.untagged(name, repo, &mut parsed, &mut report).await?;
        }
    }
    // Blobs referenced by any remaining manifest of any repository stay.
    run.blobs(&repos, &parsed, &mut report).await?;
    Ok(report)
}

/// One collection's fixed inputs: the store, the options and the grace cutoff (content
/// written after it is left alone, so uploads for a manifest not yet pushed survive).
struct Run<'a> {
    store: &'a Store,
    opts: &'a GcOptions,
    cutoff: i64,
}

impl Run<'_> {
    /// Removes the manifests of `repo` that no tag or index reaches and that are older than
    /// the cutoff, dropping them from `parsed` so their blobs count as unreferenced.
    async fn untagged(
        &self,
        name: &Name,
        repo: &mut Repo,
        parsed: &mut HashMap<(Name, OciDigest), Parsed>,
        report: &mut GcReport,
    ) -> Result<(), GcError> {
        let reachable = reachable(self.store, name, repo, parsed).await?;
        let doomed: Vec<OciDigest> = repo
            .manifests
            .keys()
            .filter(|d| !reachable.contains(*d))
            .cloned()
            .collect();
        for d in doomed {
            let Some(mtype) = repo.mtypes.get(&d) else {
                continue;
            };
            if last_write_ms(self.store, &mtype.path).await? > self.cutoff {
                continue;
            }
            let removed = if self.opts.dry_run {
                true
            } else {
                remove_manifest(self.store, name, &d, mtype).await?
            };
            if removed {
                report.manifests.push(format!("{name}@{d}"));
                repo.manifests.remove(&d);
                parsed.remove(&(name.clone(), d.clone()));
            } else {
                report.skipped += 1;
            }
        }
        Ok(())
    }

    /// Removes the blobs no remaining manifest of any repository references, with every
    /// repository's link to them.
    async fn blobs(
        &self,
        repos: &BTreeMap<Name, Repo>,
        parsed: &HashMap<(Name, OciDigest), Parsed>,
        report: &mut GcReport,
    ) -> Result<(), GcError> {
        let referenced: BTreeSet<OciDigest> =
            parsed.values().flat_map(|p| p.blobs.clone()).collect();
        for blob in self.store.list(layout::BLOBS).await? {
            let Some(d) = blob
                .path
                .strip_prefix(layout::BLOBS)
                .and_then(layout::digest_from_path)
            else {
                continue;
            };
            if referenced.contains(&d) || last_write_ms(self.store, &blob.path).await? > self.cutoff
            {
                continue;
            }
            let links: Vec<&Entry> = repos.values().filter_map(|r| r.links.get(&d)).collect();
            let removed = self.opts.dry_run || self.remove_blob(&blob, &links, &d).await?;
            if removed {
                report.blobs.push(d.to_string());
                report.blob_bytes += blob.size;
            } else {
                report.skipped += 1;
            }
        }
        Ok(())
    }

    /// Deletes one blob and its links in one commit that requires the versions scanned;
    /// `false` when a concurrent push touched any of them (the blob stays).
    async fn remove_blob(
        &self,
        blob: &Entry,
        links: &[&Entry],
        d: &OciDigest,
    ) -> Result<bool, GcError> {
        let mut ops = vec![Op::Delete {
            path: blob.path.clone(),
        }];
        let mut pre = vec![Precondition {
            path: blob.path.clone(),
            expected: Expected::Version(blob.version),
        }];
        for l in links {
            ops.push(Op::Delete {
                path: l.path.clone(),
            });
            pre.push(Precondition {
                path: l.path.clone(),
                expected: Expected::Version(l.version),
            });
        }
        let meta = CommitMeta::new("system", format!("oci gc: remove unreferenced blob {d}"));
        committed(self.store.commit(ops, pre, meta).await)
    }
}

/// Every manifest of every repository, parsed (unparseable ones are left out).
pub(crate) async fn parse_all(
    store: &Store,
    repos: &BTreeMap<Name, Repo>,
) -> Result<HashMap<(Name, OciDigest), Parsed>, GcError> {
    let mut parsed = HashMap::new();
    for (name, repo) in repos {
        for d in repo.manifests.keys() {
            let bytes = match store.read(&layout::manifest(name, d)).await {
                Ok(b) => b,
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Ok(p) = manifests::parse(&bytes, None) {
                parsed.insert((name.clone(), d.clone()), p);
            }
        }
    }
    Ok(parsed)
}

/// Reads every repository's manifests, media types, tags and blob links.
pub(crate) async fn scan(store: &Store) -> Result<BTreeMap<Name, Repo>, GcError> {
    let mut repos: BTreeMap<Name, Repo> = BTreeMap::new();
    for e in store.list(layout::REPOS).await? {
        let Some(rest) = e.path.strip_prefix(layout::REPOS) else {
            continue;
        };
        let Some((name, kind, tail)) = split_repo_path(rest) else {
            continue;
        };
        let repo = repos.entry(name).or_default();
        match kind {
            "_manifests" => {
                if let Some(d) = layout::digest_from_path(tail) {
                    repo.manifests.insert(d, e);
                }
            }
            "_mtypes" => {
                if let Some(d) = layout::digest_from_path(tail) {
                    repo.mtypes.insert(d, e);
                }
            }
            "_blobs" => {
                if let Some(d) = layout::digest_from_path(tail) {
                    repo.links.insert(d, e);
                }
            }
            "_tags" => repo.tags.push(e),
            _ => {}
        }
    }
    Ok(repos)
}

/// Splits `<name>/_<kind>/<tail>` at the first `/_` component.
fn split_repo_path(rest: &str) -> Option<(Name, &str, &str)> {
    let idx = rest.find("/_")?;
    let name = Name::parse(rest.get(..idx)?)?;
    let after = rest.get(idx + 1..)?;
    let (kind, tail) = after.split_once('/')?;
    Some((name, kind, tail))
}

/// The manifests reachable from the repository's tags through indexes and referrers.
async fn reachable(
    store: &Store,
    name: &Name,
    repo: &Repo,
    parsed: &HashMap<(Name, OciDigest), Parsed>,
) -> Result<BTreeSet<OciDigest>, GcError> {
    reachable_from(store, name, &repo.tags, parsed).await
}

/// The manifests reachable from `tags` (tag entries of repository `name`) through indexes
/// and referrers.
pub(crate) async fn reachable_from(
    store: &Store,
    name: &Name,
    tags: &[Entry],
    parsed: &HashMap<(Name, OciDigest), Parsed>,
) -> Result<BTreeSet<OciDigest>, GcError> {
    let mut seen = BTreeSet::new();
    let mut todo = Vec::new();
    for t in tags {
        let bytes = match store.read(&t.path).await {
            Ok(b) => b,
            Err(StorageError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(d) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| OciDigest::parse(s).ok())
        {
            todo.push(d);
        }
    }
    // Referrers of a reachable manifest (signatures, SBOMs) are reachable too.
    let mut referrers: HashMap<OciDigest, Vec<OciDigest>> = HashMap::new();
    for ((n, d), p) in parsed {
        if n == name
            && let Some(s) = &p.subject
        {
            referrers.entry(s.clone()).or_default().push(d.clone());
        }
    }
    while let Some(d) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        if let Some(p) = parsed.get(&(name.clone(), d.clone())) {
            todo.extend(p.manifests.iter().cloned());
        }
        if let Some(r) = referrers.get(&d) {
            todo.extend(r.iter().cloned());
        }
    }
    Ok(seen)
}

/// Deletes an untagged manifest unless a push touched it since the scan.
pub(crate) async fn remove_manifest(
    store: &Store,
    name: &Name,
    d: &OciDigest,
    mtype: &Entry,
) -> Result<bool, GcError> {
    let ops = match manifests::delete_manifest_ops(store, name, d).await {
        Ok(Some((ops, mut pre))) => {
            // The media type's scanned version is the one that proves nothing re-tagged or
            // re-referenced the manifest since the scan.
            for p in &mut pre {
                if p.path == mtype.path {
                    p.expected = Expected::Version(mtype.version);
                }
            }
            Some((ops, pre))
        }
        Ok(None) => None,
        Err(OciError { message, .. }) => {
            return Err(GcError::Storage(StorageError::Corrupt(message)));
        }
    };
    let Some((ops, pre)) = ops else {
        return Ok(false);
    };
    committed(
        store
            .commit(
                ops,
                pre,
                CommitMeta::new(
                    "system",
                    format!("oci gc: remove untagged manifest {name}@{d}"),
                ),
            )
            .await,
    )
}

/// `Ok(false)` when a precondition lost against a concurrent change.
pub(crate) fn committed<T>(result: Result<T, StorageError>) -> Result<bool, GcError> {
    match result {
        Ok(_) => Ok(true),
        Err(StorageError::Conflict { .. } | StorageError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// When `path` was last written.
pub(crate) async fn last_write_ms(store: &Store, path: &str) -> Result<i64, GcError> {
    let history = store.history(path).await?;
    Ok(history.last().map_or(0, |h| h.commit.time_ms))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
