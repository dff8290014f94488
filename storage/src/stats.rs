//! Store statistics for operators: how many objects and bytes a store holds, how long its
//! history is, and how much space its directory takes on disk.
//!
//! The counts come from one metadata snapshot, so they describe one consistent state and
//! never wait for the writer; their queries live in `meta/` with every other one.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::Result;
use crate::meta::MetaRead;
use crate::store::Store;
use crate::types::CommitInfo;

/// How deep [`Store::disk_bytes`] descends below the store directory. The layout is
/// `objects/<fan>/<id>`, `tmp/<file>` and `uploads/<file>`; the bound only guards against a
/// directory tree someone else planted there.
const MAX_DEPTH: usize = 4;

/// What a store holds, as [`Store::stats`] reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Object rows: distinct contents the store keeps (inline or as files).
    pub objects: u64,
    /// Bytes of those objects as the store accounts them (the sum of their sizes from the
    /// objects table; the metadata database and filesystem overhead are not included). For a
    /// shared store this is also what [`Store::disk_bytes`] reports.
    pub bytes: u64,
    /// Commits in the log.
    pub commits: u64,
    /// The newest commit, `None` for an empty store.
    pub head: Option<CommitInfo>,
}

impl Store {
    /// Counts objects, their bytes and the commits, in one consistent snapshot.
    pub async fn stats(&self) -> Result<StoreStats> {
        self.blocking(|inner| inner.snapshot(stats)).await
    }

    /// The space the store takes: for a local store, what its directory takes on disk
    /// (allocated blocks, as `du` counts them): object files, the metadata database with its
    /// WAL, upload sessions and temporary files; it walks the directory, so it costs one
    /// `stat` per object file.
    ///
    /// A shared store (PostgreSQL metadata) has no directory of its own: this node's data
    /// directory holds only spool files, so walking it would report this node's scratch space
    /// as the store. It reports the bytes of the objects table instead ([`StoreStats::bytes`]),
    /// the same on every node; the database's and the bucket's own overhead are not included.
    pub async fn disk_bytes(&self) -> Result<u64> {
        if self.is_shared() {
            return Ok(self.stats().await?.bytes);
        }
        self.blocking(|inner| Ok(walk(&inner.dir, 0)?)).await
    }
}

fn stats(meta: &dyn MetaRead) -> Result<StoreStats> {
    // One snapshot for both reads, so a commit landing in between cannot make the head
    // disagree with the counts.
    let counts = meta.counts()?;
    Ok(StoreStats {
        objects: counts.objects,
        bytes: counts.bytes,
        commits: counts.commits,
        head: meta.last_commit()?,
    })
}

/// Sums the allocated size of every file below `dir` without following symbolic links. A file
/// that vanishes during the walk (an object collected, a temporary file published) is skipped:
/// the figure is an estimate of a directory that keeps changing.
fn walk(dir: &Path, depth: usize) -> std::io::Result<u64> {
    let mut total = 0u64;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let md = match fs::symlink_metadata(entry.path()) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if md.is_dir() {
            if depth < MAX_DEPTH {
                total = total.saturating_add(walk(&entry.path(), depth + 1)?);
            }
        } else {
            total = total.saturating_add(md.blocks().saturating_mul(512));
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{CommitMeta, GcOptions, INLINE_MAX};

    fn who() -> CommitMeta {
        CommitMeta::new("alice", "t")
    }

    #[tokio::test]
    async fn stats_count_objects_bytes_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_dir(dir.path()).await.unwrap();
        assert_eq!(s.stats().await.unwrap(), StoreStats::default());
        let big = vec![7u8; INLINE_MAX * 64];
        s.write("big", big.clone(), who()).await.unwrap();
        s.write("small", b"hi".to_vec(), who()).await.unwrap();
        // The same content again is one object, but a second commit.
        let last = s.write("copy", b"hi".to_vec(), who()).await.unwrap();
        let st = s.stats().await.unwrap();
        assert_eq!(
            (st.objects, st.bytes, st.commits),
            (2, big.len() as u64 + 2, 3)
        );
        assert_eq!(st.head, Some(last));
        // The file-backed object shows on disk, and the figure follows GC freeing it (less
        // what the later commits add to the WAL, hence the slack).
        let before = s.disk_bytes().await.unwrap();
        assert!(before >= big.len() as u64, "{before}");
        s.delete("big", who()).await.unwrap();
        s.set_retention(Some(Duration::ZERO)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let report = s
            .gc(GcOptions {
                grace: Duration::ZERO,
                dry_run: false,
            })
            .await
            .unwrap();
        assert_eq!(report.objects_removed, 1, "{report:?}");
        let st = s.stats().await.unwrap();
        // Deleting and the retention purge are commits too; the big object is gone.
        assert_eq!((st.objects, st.bytes), (1, 2));
        assert_eq!(st.commits, 5);
        let after = s.disk_bytes().await.unwrap();
        assert!(
            after + big.len() as u64 * 3 / 4 <= before,
            "before {before}, after {after}"
        );
    }

    #[test]
    fn walk_counts_nested_files_and_skips_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(walk(&dir.path().join("absent"), 0).unwrap(), 0);
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/f"), vec![1u8; 10_000]).unwrap();
        fs::write(dir.path().join("g"), vec![1u8; 10_000]).unwrap();
        let total = walk(dir.path(), 0).unwrap();
        assert!(total >= 20_000, "{total}");
    }
}
