//! [`StoreManager::copy_store`]: moving a store into another manager's storage (a single-node
//! data directory into S3 + PostgreSQL, say) with its complete history.
//!
//! Each source commit is replayed with its record bytes unchanged, so the destination has the
//! same commit ids, the same chain and the same version rows (purges included). Objects are
//! copied before the first commit that references them: inline ones travel inside the replay
//! transaction, the others are streamed through the destination's object backend (re-hashed on
//! the way, so a damaged source object is refused rather than spread) and published like any
//! stage. Content that retention purged and GC removed from the source is not copied; the
//! versions that named it arrive purged.

use crate::digest::ObjectId;
use crate::error::{Result, StorageError};
use crate::hashing::Digests;
use crate::manager::StoreManager;
use crate::meta::{self, MetaRead};
use crate::objects::{ObjectBackend, TempObject};
use crate::record::{Record, RecordOp};
use crate::retention::{LEGACY_KEY, POLICY_KEY};
use crate::store::Store;
use crate::store::inner::Inner;

/// Bytes read from a source object at a time.
const CHUNK: usize = 1024 * 1024;

/// What a store copy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Commits replayed.
    pub commits: u64,
    /// Objects copied (inline or as bytes in the object backend).
    pub objects: u64,
    /// Bytes of content those objects hold.
    pub bytes: u64,
}

impl StoreManager {
    /// Copies every commit of `source` (complete history, identical commit ids, objects
    /// re-published into this manager's object storage) into the store `name` of this
    /// manager, creating it. Refuses with [`StorageError::NotEmpty`] when the destination
    /// already has commits, so a copy never merges two histories. The retention policy comes
    /// along. The source may be a read-only handle next to a running server: the copy reads
    /// one consistent snapshot of it.
    pub async fn copy_store(&self, source: &Store, name: &str) -> Result<CopyReport> {
        let dest = self.open(name).await?;
        if dest.head().await?.is_some() {
            return Err(StorageError::NotEmpty(name.to_owned()));
        }
        let (src, dst) = (source.inner.clone(), dest.inner.clone());
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || copy(&src, &dst, &name))
            .await
            .map_err(|e| StorageError::Worker(e.to_string()))?
    }
}

fn copy(src: &Inner, dst: &Inner, name: &str) -> Result<CopyReport> {
    dst.check_writable()?;
    let mut report = CopyReport::default();
    src.snapshot(|r| {
        r.for_each_commit(&mut |c| {
            if crate::record::id_of(&c.record).as_bytes().as_slice() != c.id.as_slice() {
                return Err(StorageError::Corrupt(format!(
                    "commit {} of the source does not hash to its id",
                    c.seq
                )));
            }
            let record = Record::decode(&c.record)?;
            let mut inline = Vec::new();
            for op in &record.ops {
                if let RecordOp::Put { object, .. } = op {
                    copy_object(r, src, dst, object, &mut inline, &mut report)?;
                }
            }
            // The first replay also refuses a destination another writer filled meanwhile.
            let info = dst
                .meta
                .replay(&c.record, &inline, meta::now_ms())
                .map_err(|e| match e {
                    StorageError::Invalid { .. } if report.commits == 0 => {
                        StorageError::NotEmpty(name.to_owned())
                    }
                    other => other,
                })?;
            dst.note_commit(info.seq);
            report.commits += 1;
            Ok(())
        })?;
        for key in [POLICY_KEY, LEGACY_KEY] {
            if let Some(value) = r.setting(key)? {
                dst.meta.replace_setting(key, &value, &[])?;
            }
        }
        Ok(())
    })?;
    Ok(report)
}

/// Makes object `id` of the source available in the destination: nothing if it is there
/// already or gone from the source (purged content), its bytes into `inline` if the source
/// keeps it inline, else streamed and published.
fn copy_object(
    r: &dyn MetaRead,
    src: &Inner,
    dst: &Inner,
    id: &ObjectId,
    inline: &mut Vec<(Digests, Vec<u8>)>,
    report: &mut CopyReport,
) -> Result<()> {
    if dst.meta.object_row_now(id)?.is_some() || inline.iter().any(|(d, _)| d.blake3 == *id) {
        return Ok(());
    }
    let Some(row) = r.object_row(id)? else {
        return Ok(());
    };
    let digests = Digests {
        blake3: *id,
        sha256: row.sha256,
        sha512: None,
        size: row.size,
    };
    report.objects += 1;
    report.bytes += row.size;
    if let Some(bytes) = r.inline_bytes(id)? {
        inline.push((digests, bytes));
        return Ok(());
    }
    let mut reader = src.objects.open(id).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StorageError::Corrupt(format!("object {id} of the source is missing"))
        } else {
            e.into()
        }
    })?;
    let mut temp = dst.objects.create_temp()?;
    let streamed = stream(&mut reader, &mut temp, id);
    if let Err(e) = streamed {
        temp.discard();
        return Err(e);
    }
    crate::stage::publish(dst, temp, &digests)
}

/// Copies `reader` into `temp`, checking that the bytes hash to `id`, and syncs it.
fn stream(
    reader: &mut impl std::io::Read,
    temp: &mut impl TempObject,
    id: &ObjectId,
) -> Result<()> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        temp.write_all(chunk)?;
    }
    if hasher.finalize().as_bytes() != id.as_bytes() {
        return Err(StorageError::Corrupt(format!(
            "object {id} of the source does not hash to its name"
        )));
    }
    temp.sync()?;
    Ok(())
}
