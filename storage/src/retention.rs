//! Retention policies: which content of superseded versions a store keeps.
//!
//! The policy lives in the store's `settings` table (canonical text under `retention.policy`),
//! so it travels with the store and survives restarts. Stores written before policies existed
//! kept only an age under `retention.purge-after-secs`; that key is still read (as
//! `purge-after`) until a policy is set, which replaces it.
//!
//! A policy never touches history: purging marks versions' content as gone in one commit by
//! `system`, while every version row stays as the audit trail (`gc.rs` does the purge, then the
//! object GC that frees the bytes).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::digest::CommitId;
use crate::error::Result;
use crate::store::Store;
use crate::store::inner::Inner;

/// The settings key holding the canonical policy.
pub(crate) const POLICY_KEY: &str = "retention.policy";
/// The key stores used before policies existed: an age in seconds.
pub(crate) const LEGACY_KEY: &str = "retention.purge-after-secs";

/// How long a store keeps the content of versions that are no longer at HEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetentionPolicy {
    /// `keep-all`: the content of every version is kept forever (the default of a store).
    #[default]
    KeepAll,
    /// `purge-after=<N>s|m|h|d`: content superseded longer ago than this is purged.
    PurgeAfter(Duration),
    /// `keep-commits=<N>`: content that the trees of the last N commits reference is kept, and
    /// older content purged. Commits that change no path (retention's own purges) do not
    /// count, because their tree is their parent's.
    KeepCommits(u64),
}

/// Why a policy text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid retention policy {input:?}: {reason} (use keep-all, purge-after=<N>s|m|h|d or keep-commits=<N>)"
)]
pub struct PolicyParseError {
    input: String,
    reason: &'static str,
}

impl FromStr for RetentionPolicy {
    type Err = PolicyParseError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let fail = |reason| PolicyParseError {
            input: s.to_owned(),
            reason,
        };
        let text = s.trim();
        if text == "keep-all" {
            return Ok(RetentionPolicy::KeepAll);
        }
        if let Some(n) = text.strip_prefix("keep-commits=") {
            let n: u64 = n.parse().map_err(|_| fail("N is not a whole number"))?;
            if n == 0 {
                // Keeping no commit would purge HEAD itself, which nobody means.
                return Err(fail("keep-commits must be at least 1"));
            }
            return Ok(RetentionPolicy::KeepCommits(n));
        }
        if let Some(age) = text.strip_prefix("purge-after=") {
            return parse_age(age)
                .map(RetentionPolicy::PurgeAfter)
                .ok_or_else(|| fail("the age must be a whole number followed by s, m, h or d"));
        }
        Err(fail("unknown policy"))
    }
}

/// `<N>s|m|h|d` as a duration; `None` when malformed or absurdly large.
fn parse_age(text: &str) -> Option<Duration> {
    let unit_at = text.len().checked_sub(1)?;
    let (number, unit) = (text.get(..unit_at)?, text.get(unit_at..)?);
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = number.parse::<u64>().ok()?.checked_mul(factor)?;
    Some(Duration::from_secs(secs))
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionPolicy::KeepAll => f.write_str("keep-all"),
            RetentionPolicy::PurgeAfter(d) => write!(f, "purge-after={}s", d.as_secs()),
            RetentionPolicy::KeepCommits(n) => write!(f, "keep-commits={n}"),
        }
    }
}

impl Store {
    /// The store's retention policy (`keep-all` when none was ever set).
    pub async fn retention_policy(&self) -> Result<RetentionPolicy> {
        self.blocking(|inner| Ok(policy(inner)?.unwrap_or_default()))
            .await
    }

    /// Sets the retention policy; it applies from the next [`Store::gc`].
    pub async fn set_retention_policy(&self, policy: RetentionPolicy) -> Result<()> {
        self.blocking(move |inner| {
            inner
                .meta
                .replace_setting(POLICY_KEY, &policy.to_string(), &[LEGACY_KEY])
        })
        .await
    }

    /// Sets `default` as the policy unless one was ever set (an operator's choice, or a
    /// policy written before policies had their own key), atomically. Returns the policy in
    /// force afterwards. Backends call this when they first open their store, so their
    /// defaults never override what an operator chose.
    pub async fn init_retention_policy(&self, default: RetentionPolicy) -> Result<RetentionPolicy> {
        self.blocking(move |inner| {
            let wrote = inner
                .meta
                .init_setting(POLICY_KEY, &default.to_string(), &[LEGACY_KEY])?;
            if wrote {
                return Ok(default);
            }
            Ok(policy(inner)?.unwrap_or_default())
        })
        .await
    }

    /// How many paths of the tree at `commit` had their content purged by retention: 0 means
    /// the whole state of that commit is still readable (and can be restored).
    pub async fn purged_paths_at(&self, commit: CommitId) -> Result<u64> {
        self.blocking(move |inner| {
            inner.read(|r| {
                let seq = r.commit_by_id(&commit)?.seq;
                r.purged_paths_at(seq)
            })
        })
        .await
    }
}

/// The stored policy, `None` when none was ever set. A value this build cannot parse (written
/// by a newer one) reads as `keep-all`: keeping content is the safe misreading.
pub(crate) fn policy(inner: &Inner) -> Result<Option<RetentionPolicy>> {
    let (current, legacy) = inner.read(|r| Ok((r.setting(POLICY_KEY)?, r.setting(LEGACY_KEY)?)))?;
    if let Some(text) = current {
        return Ok(Some(text.parse().unwrap_or_else(|e| {
            tracing::warn!(dir = %inner.dir.display(), "{e}; keeping all content");
            RetentionPolicy::KeepAll
        })));
    }
    Ok(legacy.map(|secs| match secs.parse::<u64>() {
        Ok(secs) => RetentionPolicy::PurgeAfter(Duration::from_secs(secs)),
        Err(_) => RetentionPolicy::KeepAll,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommitMeta, GcOptions, INLINE_MAX, StorageError};
    use proptest::prelude::*;

    fn no_grace() -> GcOptions {
        GcOptions {
            grace: Duration::ZERO,
            dry_run: false,
        }
    }

    fn who() -> CommitMeta {
        CommitMeta::new("alice", "deploy")
    }

    #[test]
    fn parse_and_display_round_trip() {
        for (text, policy) in [
            ("keep-all", RetentionPolicy::KeepAll),
            (
                "purge-after=3600s",
                RetentionPolicy::PurgeAfter(Duration::from_secs(3600)),
            ),
            ("keep-commits=20", RetentionPolicy::KeepCommits(20)),
        ] {
            assert_eq!(text.parse::<RetentionPolicy>().unwrap(), policy);
            assert_eq!(policy.to_string(), text);
        }
        assert_eq!(
            "purge-after=2d".parse::<RetentionPolicy>().unwrap(),
            RetentionPolicy::PurgeAfter(Duration::from_secs(172_800))
        );
        assert_eq!(
            "purge-after=1h"
                .parse::<RetentionPolicy>()
                .unwrap()
                .to_string(),
            "purge-after=3600s"
        );
        assert_eq!(
            "purge-after=5m".parse::<RetentionPolicy>().unwrap(),
            RetentionPolicy::PurgeAfter(Duration::from_secs(300))
        );
        for bad in [
            "",
            "keep",
            "keep-commits=0",
            "keep-commits=-1",
            "keep-commits=x",
            "purge-after=",
            "purge-after=10",
            "purge-after=h",
            "purge-after=+1h",
            "purge-after=1w",
            "purge-after=99999999999999999999d",
        ] {
            let err = bad.parse::<RetentionPolicy>().unwrap_err();
            assert!(err.to_string().contains("keep-commits=<N>"), "{bad}: {err}");
        }
    }

    proptest! {
        #[test]
        fn every_policy_round_trips(secs in 0u64..u64::MAX / 86_400, n in 1u64..u64::MAX) {
            for p in [
                RetentionPolicy::KeepAll,
                RetentionPolicy::PurgeAfter(Duration::from_secs(secs)),
                RetentionPolicy::KeepCommits(n),
            ] {
                prop_assert_eq!(p.to_string().parse::<RetentionPolicy>().unwrap(), p);
            }
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<RetentionPolicy>();
        }
    }

    #[tokio::test]
    async fn policy_persists_and_the_legacy_key_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_dir(dir.path()).await.unwrap();
        assert_eq!(
            s.retention_policy().await.unwrap(),
            RetentionPolicy::KeepAll
        );
        // The pre-policy API writes the legacy key, as stores written before did.
        s.set_retention(Some(Duration::from_secs(60)))
            .await
            .unwrap();
        let minute = RetentionPolicy::PurgeAfter(Duration::from_secs(60));
        assert_eq!(s.retention_policy().await.unwrap(), minute);
        // A legacy policy counts as the operator's choice: a default does not replace it.
        assert_eq!(
            s.init_retention_policy(RetentionPolicy::KeepCommits(3))
                .await
                .unwrap(),
            minute
        );
        s.set_retention_policy(RetentionPolicy::KeepCommits(5))
            .await
            .unwrap();
        assert_eq!(s.retention().await.unwrap(), None);
        drop(s);
        let s = Store::open_dir(dir.path()).await.unwrap();
        assert_eq!(
            s.retention_policy().await.unwrap(),
            RetentionPolicy::KeepCommits(5)
        );
        s.set_retention(None).await.unwrap();
        assert_eq!(
            s.retention_policy().await.unwrap(),
            RetentionPolicy::KeepAll
        );
        // An explicit keep-all is a choice too.
        assert_eq!(
            s.init_retention_policy(RetentionPolicy::KeepCommits(3))
                .await
                .unwrap(),
            RetentionPolicy::KeepAll
        );
        let fresh = tempfile::tempdir().unwrap();
        let f = Store::open_dir(fresh.path()).await.unwrap();
        assert_eq!(
            f.init_retention_policy(RetentionPolicy::KeepCommits(3))
                .await
                .unwrap(),
            RetentionPolicy::KeepCommits(3)
        );
        assert_eq!(
            f.retention_policy().await.unwrap(),
            RetentionPolicy::KeepCommits(3)
        );
    }

    /// Writes `deploys` versions of one big file (and, each time, a fresh small one), like
    /// site deploys; returns each commit's id and the big content.
    async fn deploy_n(s: &Store, deploys: u8) -> Vec<(CommitId, Vec<u8>)> {
        let mut out = Vec::new();
        for i in 0..deploys {
            let big = vec![i; INLINE_MAX * 2];
            s.write("index.html", big.clone(), who()).await.unwrap();
            let c = s
                .write(&format!("page-{i}.html"), vec![i; 10], who())
                .await
                .unwrap();
            out.push((c.id, big));
        }
        out
    }

    #[tokio::test]
    async fn keep_commits_keeps_exactly_the_last_n_trees() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_dir(dir.path()).await.unwrap();
        // Every deploy is two commits here (seqs 2i+1 and 2i+2), so keeping 4 commits keeps
        // the trees of seqs 17 to 20: index.html of deploys 8 and 9. Deploy 7's index.html
        // (seq 15) is last seen in tree 16, which falls outside the window.
        let deploys = deploy_n(&s, 10).await;
        s.set_retention_policy(RetentionPolicy::KeepCommits(4))
            .await
            .unwrap();
        let dry = s
            .gc(GcOptions {
                dry_run: true,
                ..no_grace()
            })
            .await
            .unwrap();
        assert!(dry.purge_commit.is_none());
        tokio::time::sleep(Duration::from_millis(5)).await;
        let report = s.gc(no_grace()).await.unwrap();
        assert_eq!(report.purged_versions, dry.purged_versions);
        // index.html versions of deploys 0..=7 (8 big files) are gone from disk.
        assert_eq!(report.purged_versions, 8);
        assert_eq!(report.objects_removed, 8);
        assert_eq!(report.file_bytes_freed, 8 * (INLINE_MAX as u64) * 2);
        let purge = report.purge_commit.unwrap();
        assert_eq!(purge.principal, "system");
        for (i, (id, big)) in deploys.iter().enumerate() {
            let read = s.read_at("index.html", *id).await;
            if i >= 8 {
                assert_eq!(&read.unwrap(), big, "deploy {i}");
                assert_eq!(s.purged_paths_at(*id).await.unwrap(), 0, "deploy {i}");
            } else {
                assert!(
                    matches!(read, Err(StorageError::Purged { .. })),
                    "deploy {i}: {read:?}"
                );
                assert_eq!(s.purged_paths_at(*id).await.unwrap(), 1, "deploy {i}");
            }
        }
        // The small pages are never superseded, so every tree still has them.
        assert_eq!(s.read("page-0.html").await.unwrap(), vec![0u8; 10]);
        // The purge commit changed no path, so it does not push one more deploy out: a second
        // run purges nothing.
        let again = s.gc(no_grace()).await.unwrap();
        assert_eq!((again.purged_versions, again.objects_removed), (0, 0));
        // One more deploy moves the window by exactly one deploy.
        deploy_n(&s, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let next = s.gc(no_grace()).await.unwrap();
        assert_eq!(next.purged_versions, 1);
        assert!(s.verify().await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn keep_commits_with_fewer_commits_purges_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_dir(dir.path()).await.unwrap();
        deploy_n(&s, 3).await;
        s.set_retention_policy(RetentionPolicy::KeepCommits(6))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.gc(no_grace()).await.unwrap().purged_versions, 0);
        s.set_retention_policy(RetentionPolicy::KeepCommits(5))
            .await
            .unwrap();
        // The last five commits (seqs 2 to 6) still include tree 2, which holds index.html
        // version 1; only keeping the last commit alone purges versions 1 and 3.
        assert_eq!(s.gc(no_grace()).await.unwrap().purged_versions, 0);
        s.set_retention_policy(RetentionPolicy::KeepCommits(1))
            .await
            .unwrap();
        assert_eq!(s.gc(no_grace()).await.unwrap().purged_versions, 2);
    }

    #[tokio::test]
    async fn purge_after_behaves_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_dir(dir.path()).await.unwrap();
        deploy_n(&s, 3).await;
        s.set_retention_policy(RetentionPolicy::PurgeAfter(Duration::from_secs(3600)))
            .await
            .unwrap();
        // Superseded moments ago: an hour's policy keeps it.
        assert_eq!(s.gc(no_grace()).await.unwrap().purged_versions, 0);
        // `reclaim` with a zero grace is the operator saying "no one needs it any more".
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = s.reclaim(no_grace()).await.unwrap();
        assert_eq!((now.purged_versions, now.objects_removed), (2, 2));
        s.set_retention_policy(RetentionPolicy::PurgeAfter(Duration::ZERO))
            .await
            .unwrap();
        // The next deploy supersedes index.html and rewrites page-0.html: both old versions go.
        deploy_n(&s, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.gc(no_grace()).await.unwrap().purged_versions, 2);
        // keep-all never purges, not even through `reclaim`.
        s.set_retention_policy(RetentionPolicy::KeepAll)
            .await
            .unwrap();
        deploy_n(&s, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.reclaim(no_grace()).await.unwrap().purged_versions, 0);
    }
}
