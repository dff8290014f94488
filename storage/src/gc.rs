//! Retention (purging old content) and object garbage collection.
//!
//! Retention purges the content of versions that stopped being HEAD long enough ago: the
//! version rows stay as the audit trail and the purge is itself a commit. Object GC then frees
//! objects that no unpurged version references, following reference/storage.md §6:
//! - candidates must be older than a grace period, which covers staged-but-uncommitted objects;
//! - each deletion re-checks "still unreferenced?" inside a write transaction of the metadata
//!   (`MetaStore::delete_object_if_unreferenced`), serialised with every commit, and under the
//!   object's stripe lock, serialised with a stage that would publish the same object again.

use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::meta::{self, Cutoff};
use crate::objects::ObjectBackend;
use crate::retention::{LEGACY_KEY, RetentionPolicy, policy};
use crate::store::Store;
use crate::store::inner::Inner;
use crate::types::{CommitInfo, CommitMeta};

/// The smallest grace period the CLI uses by default (the registries cited in storage.md use 1
/// to 24 hours).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// Options of [`Store::gc`].
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Objects younger than this are never collected, so a staged object survives until its
    /// commit arrives.
    pub grace: Duration,
    /// Report what would be done without changing anything.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            grace: DEFAULT_GRACE,
            dry_run: false,
        }
    }
}

/// What a GC run did (or would do, in a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The retention commit that purged content, if the policy purged anything.
    pub purge_commit: Option<CommitInfo>,
    /// Versions whose content retention purged.
    pub purged_versions: u64,
    /// Object rows (and their files) removed.
    pub objects_removed: u64,
    /// Bytes of content removed.
    pub bytes_freed: u64,
    /// Files without any row removed (debris of a crash between publish and commit).
    pub orphan_files_removed: u64,
    /// Bytes of object files deleted from disk (objects and orphans): what `du` sees go.
    /// Small objects live inside the database, whose freed pages SQLite reuses instead.
    pub file_bytes_freed: u64,
    /// Another node was running GC or retention on this store (shared mode), so this run did
    /// nothing; the next one will.
    pub skipped_locked: bool,
}

impl Store {
    /// Sets the retention policy: purge the content of versions that stopped being HEAD more
    /// than `purge_after` ago (`None` keeps everything forever). Kept for callers from before
    /// [`Store::set_retention_policy`]; it writes the policy where those versions kept it.
    pub async fn set_retention(&self, purge_after: Option<Duration>) -> Result<()> {
        match purge_after {
            Some(d) => {
                self.blocking(move |inner| {
                    inner.meta.replace_setting(
                        LEGACY_KEY,
                        &d.as_secs().to_string(),
                        &["retention.policy"],
                    )
                })
                .await
            }
            None => self.set_retention_policy(RetentionPolicy::KeepAll).await,
        }
    }

    /// The age after which superseded content is purged, when the policy is `purge-after`
    /// (see [`Store::retention_policy`] for every policy).
    pub async fn retention(&self) -> Result<Option<Duration>> {
        Ok(match self.retention_policy().await? {
            RetentionPolicy::PurgeAfter(d) => Some(d),
            RetentionPolicy::KeepAll | RetentionPolicy::KeepCommits(_) => None,
        })
    }

    /// Purges now the content of versions superseded more than `older_than` ago, as one commit
    /// by `meta.principal`. Returns the commit and the number of versions purged.
    pub async fn purge(
        &self,
        older_than: Duration,
        meta: CommitMeta,
    ) -> Result<Option<(CommitInfo, u64)>> {
        self.blocking(move |inner| {
            let now = meta::now_ms();
            purge(inner, Cutoff::Time(before(now, older_than)), &meta, false)
                .map(|o| o.and_then(|(c, n, _)| c.map(|c| (c, n))))
        })
        .await
    }

    /// Applies the retention policy (as principal `system`), then removes unreferenced objects
    /// older than the grace period.
    pub async fn gc(&self, opts: GcOptions) -> Result<GcReport> {
        self.blocking(move |inner| gc(inner, &opts, false)).await
    }

    /// Like [`Store::gc`], but a `purge-after` policy purges content superseded more than
    /// `opts.grace` ago when that is sooner: the caller (an operator collecting now, such as
    /// `/oci gc --grace-secs 0`) vouches that nothing needs it any longer, so the bytes leave
    /// the disk right away. `keep-all` and `keep-commits` apply unchanged.
    pub async fn reclaim(&self, opts: GcOptions) -> Result<GcReport> {
        self.blocking(move |inner| gc(inner, &opts, true)).await
    }
}

/// The time `age` before `now_ms`.
fn before(now_ms: i64, age: Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
}

/// Returns the purge commit (none in a dry run), the number of versions and their bytes.
fn purge(
    inner: &Inner,
    cutoff: Cutoff,
    meta: &CommitMeta,
    dry_run: bool,
) -> Result<Option<(Option<CommitInfo>, u64, u64)>> {
    if dry_run {
        let (n, bytes) = inner.read(|r| r.superseded_before(cutoff))?;
        return Ok((n > 0).then_some((None, n, bytes)));
    }
    let out = inner.meta.purge_superseded(cutoff, meta, meta::now_ms())?;
    if let Some((commit, _, _)) = &out {
        inner.note_commit(commit.seq);
    }
    Ok(out.map(|(commit, n, bytes)| (Some(commit), n, bytes)))
}

/// Which versions the policy purges now, and the purge commit's message; `None` when it
/// purges nothing. With `expedite`, an age policy is capped by the GC's grace.
fn retention_cutoff(
    inner: &Inner,
    opts: &GcOptions,
    expedite: bool,
) -> Result<Option<(Cutoff, String)>> {
    Ok(match policy(inner)?.unwrap_or_default() {
        RetentionPolicy::KeepAll => None,
        RetentionPolicy::PurgeAfter(max_age) => {
            let age = if expedite {
                max_age.min(opts.grace)
            } else {
                max_age
            };
            Some((
                Cutoff::Time(before(meta::now_ms(), age)),
                format!(
                    "gc: retention purges content superseded more than {}s ago",
                    age.as_secs()
                ),
            ))
        }
        RetentionPolicy::KeepCommits(n) => {
            inner.read(|r| r.nth_changing_commit(n.max(1)))?.map(|seq| {
                (
                    Cutoff::Seq(seq),
                    format!("gc: retention keeps the content of the last {n} commits"),
                )
            })
        }
    })
}

pub(crate) fn gc(inner: &Inner, opts: &GcOptions, expedite: bool) -> Result<GcReport> {
    // The orphan sweep deletes files without any SQL write a read-only connection would stop.
    inner.check_writable()?;
    // GC and retention of a shared store run on one node at a time; the others skip rather
    // than wait, since the holder is doing the same work. Held to the end of the run.
    let Some(_maintenance) = inner.meta.try_maintenance_lock()? else {
        return Ok(GcReport {
            skipped_locked: true,
            ..GcReport::default()
        });
    };
    let mut report = GcReport::default();
    if let Some((cutoff, message)) = retention_cutoff(inner, opts, expedite)?
        && let Some((commit, n, _)) = purge(
            inner,
            cutoff,
            &CommitMeta::new("system", message),
            opts.dry_run,
        )?
    {
        report.purge_commit = commit;
        report.purged_versions = n;
    }
    // A backup copying this store holds it: deletions wait for the next run, so the objects
    // its snapshot names stay on disk until they are copied (see backup.rs).
    let Some(_backup_hold) = crate::backup::gc_may_delete(&inner.dir)? else {
        return Ok(report);
    };
    collect_objects(inner, opts, &mut report)?;
    sweep_orphans(inner, opts, &mut report)?;
    if !opts.dry_run
        && report.objects_removed + report.purged_versions > 0
        && let Err(e) = inner.meta.compact()
    {
        // The collection itself is done and durable; a log left long only costs space until
        // the next checkpoint, so it never turns a successful GC into a failure.
        tracing::debug!(dir = %inner.dir.display(), error = %e, "gc: WAL checkpoint skipped");
    }
    Ok(report)
}

/// Removes object rows (and files) that no unpurged version references.
fn collect_objects(inner: &Inner, opts: &GcOptions, report: &mut GcReport) -> Result<()> {
    let cutoff = before(meta::now_ms(), opts.grace);
    let candidates = inner.read(|r| r.gc_candidates(cutoff))?;
    for id in candidates {
        let _stripe = inner.stripes.lock(&id);
        let outcome = if opts.dry_run {
            inner
                .meta
                .delete_object_if_unreferenced(&id, cutoff, true)?
        } else {
            inner.meta.delete_object_with(&id, cutoff, &mut || {
                inner.objects.remove(&id)?;
                Ok(())
            })?
        };
        let Some(outcome) = outcome else { continue };
        if outcome.is_file {
            report.file_bytes_freed += outcome.size;
        }
        report.objects_removed += 1;
        report.bytes_freed += outcome.size;
    }
    Ok(())
}

/// Removes object files that have no row, once past the grace period.
fn sweep_orphans(inner: &Inner, opts: &GcOptions, report: &mut GcReport) -> Result<()> {
    let grace_start = SystemTime::now()
        .checked_sub(opts.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for (id, modified) in inner.objects.list()? {
        if modified >= grace_start {
            continue;
        }
        let _stripe = inner.stripes.lock(&id);
        // Under the stripe lock no stage of this process sits between its publish and its row
        // insert, so "no row" really means orphan; another node's stage is ordered by the
        // metadata's write lock instead (`MetaStore::remove_orphan`).
        if inner.meta.object_row_now(&id)?.is_some() {
            continue;
        }
        let size = inner.objects.open(&id).and_then(|f| f.len()).unwrap_or(0);
        let removed = opts.dry_run
            || inner.meta.remove_orphan(&id, &mut || {
                inner.objects.remove(&id)?;
                Ok(())
            })?;
        if removed {
            report.orphan_files_removed += 1;
            report.file_bytes_freed += size;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{INLINE_MAX, Op, StorageError};

    fn who() -> CommitMeta {
        CommitMeta::new("alice", "t")
    }

    fn no_grace() -> GcOptions {
        GcOptions {
            grace: Duration::ZERO,
            dry_run: false,
        }
    }

    #[tokio::test]
    async fn retention_purges_superseded_content_and_keeps_the_audit_row() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_dir(dir.path()).await.unwrap();
        let old = vec![1u8; INLINE_MAX * 2];
        let c1 = s.write("f", old.clone(), who()).await.unwrap();
        let c2 = s.write("f", b"new".to_vec(), who()).await.unwrap();
        s.write("keep", b"k".to_vec(), who()).await.unwrap();
        assert_eq!(s.retention().await.unwrap(), None);
        // Without a policy, GC frees nothing that history references.
        assert_eq!(s.gc(no_grace()).await.unwrap(), GcReport::default());
        s.set_retention(Some(Duration::ZERO)).await.unwrap();
        assert_eq!(s.retention().await.unwrap(), Some(Duration::ZERO));
        let dry = s
            .gc(GcOptions {
                dry_run: true,
                ..no_grace()
            })
            .await
            .unwrap();
        assert_eq!((dry.purged_versions, dry.purge_commit.is_none()), (1, true));
        assert_eq!(s.read_at("f", c1.id).await.unwrap(), old);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let report = s.gc(no_grace()).await.unwrap();
        assert_eq!(report.purged_versions, 1);
        assert_eq!(
            (report.objects_removed, report.bytes_freed),
            (1, old.len() as u64)
        );
        let purge = report.purge_commit.unwrap();
        assert_eq!(purge.principal, "system");
        assert!(purge.message.starts_with("gc: retention"));
        let err = s.read_at("f", c1.id).await.unwrap_err();
        assert!(
            matches!(err, StorageError::Purged { version: 1, .. }),
            "{err}"
        );
        assert!(matches!(
            s.open_at("f", c1.id).await,
            Err(StorageError::Purged { .. })
        ));
        assert_eq!(s.read_at("f", c2.id).await.unwrap(), b"new");
        let h = s.history("f").await.unwrap();
        let first = h[0].content.as_ref().unwrap();
        assert!(first.purged);
        assert_eq!(
            (first.size, h[0].commit.principal.as_str()),
            (old.len() as u64, "alice")
        );
        assert!(s.inner.objects.list().unwrap().is_empty());
        assert!(s.verify().await.unwrap().is_ok());
        // A second run finds nothing more.
        assert_eq!(s.gc(no_grace()).await.unwrap(), GcReport::default());
    }

    #[tokio::test]
    async fn grace_protects_staged_objects_and_orphan_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_dir(dir.path()).await.unwrap();
        let data = vec![3u8; INLINE_MAX * 2];
        let staged = s.stage(&data[..], None).await.unwrap();
        assert_eq!(
            s.gc(GcOptions::default()).await.unwrap(),
            GcReport::default()
        );
        s.commit(
            vec![Op::Put {
                path: "p".into(),
                object: staged.clone(),
            }],
            vec![],
            who(),
        )
        .await
        .unwrap();
        // An orphan file without a row, as left by a crash between publish and row insert.
        let orphan = crate::hashing::digest_bytes(b"orphan");
        let mut t = s.inner.objects.create_temp().unwrap();
        crate::objects::TempObject::write_all(&mut t, b"orphan").unwrap();
        s.inner.objects.publish(t, &orphan.blake3).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let dry = s
            .gc(GcOptions {
                dry_run: true,
                ..no_grace()
            })
            .await
            .unwrap();
        assert_eq!(dry.orphan_files_removed, 1);
        assert!(s.inner.objects.exists(&orphan.blake3).unwrap());
        let report = s.gc(no_grace()).await.unwrap();
        assert_eq!(
            (report.orphan_files_removed, report.objects_removed),
            (1, 0)
        );
        assert!(!s.inner.objects.exists(&orphan.blake3).unwrap());
        assert_eq!(s.read("p").await.unwrap(), data);
        // Once unreferenced and past the grace period, a staged object is collected, and a late
        // commit of it fails cleanly instead of creating a dangling reference.
        let lonely = s.stage(&b"lonely content"[..], None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.gc(no_grace()).await.unwrap().objects_removed, 1);
        let err = s
            .commit(
                vec![Op::Put {
                    path: "late".into(),
                    object: lonely,
                }],
                vec![],
                who(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::ObjectMissing(_)), "{err}");
    }
}
