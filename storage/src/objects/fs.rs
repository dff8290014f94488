//! Objects as files: `objects/<2 hex>/<64 hex>`, mode 0400, streamed through `tmp/`.
//!
//! The publish order follows reference/storage.md §3: `fdatasync(tmp)`, `link()` to the final
//! name (which fails with `EEXIST` instead of overwriting), then `fsync` the fan-out directory,
//! and its parent too when the fan-out directory was just created.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{ObjectBackend, PartKey, Published, TempObject};
use crate::digest::ObjectId;

/// Objects stored under a store directory.
#[derive(Debug)]
pub(crate) struct FsObjects {
    objects: PathBuf,
    tmp: PathBuf,
    /// `<store>/uploads`: upload session parts, one directory per session.
    uploads: PathBuf,
    /// Makes temporary names unique within this process; the LOCK makes them unique overall.
    counter: AtomicU64,
}

impl FsObjects {
    /// Uses `<store>/objects` and `<store>/tmp`, creating them if needed.
    pub(crate) fn open(store_dir: &Path) -> io::Result<Self> {
        let objects = store_dir.join("objects");
        let tmp = store_dir.join("tmp");
        let mut created = false;
        for dir in [&objects, &tmp] {
            if !dir.is_dir() {
                crate::perms::create_dir(dir)?;
                created = true;
            }
        }
        if created {
            sync_dir(store_dir)?;
        }
        Ok(Self {
            objects,
            tmp,
            uploads: store_dir.join("uploads"),
            counter: AtomicU64::new(0),
        })
    }

    fn part_path(&self, part: &PartKey) -> PathBuf {
        self.uploads.join(&part.session).join(part.name())
    }

    /// The file of an object (also used by tests that tamper with it).
    pub(crate) fn path_of(&self, id: &ObjectId) -> PathBuf {
        let hex = id.to_hex();
        let fan = hex.get(..2).unwrap_or("00");
        self.objects.join(fan).join(hex)
    }
}

impl ObjectBackend for FsObjects {
    type Temp = FsTemp;
    type Reader = File;

    /// Takes over the file itself, without copying: publish links it under the object's name
    /// and then removes the session's name, exactly as for a file staged in `tmp/`.
    fn adopt(&self, path: PathBuf) -> io::Result<FsTemp> {
        let file = File::open(&path)?;
        let len = file.metadata()?.len();
        Ok(FsTemp {
            file,
            path,
            written: len,
            flushed: len,
        })
    }

    fn create_temp(&self) -> io::Result<FsTemp> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self.tmp.join(format!("{}-{nanos}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::perms::FILE_MODE)
            .open(&path)?;
        Ok(FsTemp {
            file,
            path,
            written: 0,
            flushed: 0,
        })
    }

    fn publish(&self, temp: FsTemp, id: &ObjectId) -> io::Result<Published> {
        let target = self.path_of(id);
        let fan_dir = target.parent().unwrap_or(&self.objects).to_path_buf();
        let mut new_fan = false;
        if !fan_dir.is_dir() {
            match crate::perms::create_dir(&fan_dir) {
                Ok(()) => new_fan = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        // Readers must never be able to change an object in place.
        temp.file
            .set_permissions(fs::Permissions::from_mode(crate::perms::OBJECT_MODE))?;
        let outcome = match fs::hard_link(&temp.path, &target) {
            Ok(()) => Published::New,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Published::AlreadyPresent,
            Err(e) => {
                temp.discard();
                return Err(e);
            }
        };
        temp.discard();
        // The link is atomic but only durable once the directory is synced. On a dedupe hit the
        // other writer may not have synced yet, and our commit may land before theirs.
        sync_dir(&fan_dir)?;
        if new_fan {
            sync_dir(&self.objects)?;
        }
        Ok(outcome)
    }

    fn open(&self, id: &ObjectId) -> io::Result<File> {
        File::open(self.path_of(id))
    }

    fn exists(&self, id: &ObjectId) -> io::Result<bool> {
        self.path_of(id).try_exists()
    }

    fn remove(&self, id: &ObjectId) -> io::Result<bool> {
        let path = self.path_of(id);
        match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list(&self) -> io::Result<Vec<(ObjectId, SystemTime)>> {
        let mut out = Vec::new();
        for fan in fs::read_dir(&self.objects)? {
            let fan = fan?;
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(fan.path())? {
                let entry = entry?;
                // A file whose name is not an object id was not written by us; leave it alone.
                let Some(id) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<ObjectId>().ok())
                else {
                    continue;
                };
                out.push((id, entry.metadata()?.modified()?));
            }
        }
        Ok(out)
    }

    fn clean_temp(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.tmp)?;
        }
        Ok(removed)
    }

    fn put_part(&self, part: &PartKey, temp: FsTemp) -> io::Result<()> {
        self.put_part_file(part, temp)
    }

    fn open_part(&self, part: &PartKey) -> io::Result<File> {
        File::open(self.part_path(part))
    }

    fn remove_parts(&self, parts: &[PartKey]) -> io::Result<()> {
        self.remove_part_files(parts)
    }

    fn list_parts(&self) -> io::Result<Vec<(PartKey, SystemTime)>> {
        self.list_part_files()
    }
}

/// Upload session parts: files in `<store>/uploads/<session>/`, moved there from `tmp/`.
impl FsObjects {
    fn put_part_file(&self, part: &PartKey, temp: FsTemp) -> io::Result<()> {
        let dir = self.uploads.join(&part.session);
        let new_dir = !dir.is_dir();
        if new_dir {
            crate::perms::create_dir_all(&dir)?;
        }
        // On an error the temp is dropped, which deletes it.
        fs::rename(&temp.path, dir.join(part.name()))?;
        // The temp's name is gone now; dropping it finds nothing to delete.
        temp.discard();
        sync_dir(&dir)?;
        if new_dir {
            sync_dir(&self.uploads)?;
        }
        Ok(())
    }

    fn remove_part_files(&self, parts: &[PartKey]) -> io::Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for part in parts {
            match fs::remove_file(self.part_path(part)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            dirs.insert(self.uploads.join(&part.session));
        }
        for dir in dirs {
            // A session directory goes once it is empty; one that still holds parts (or is
            // gone already) stays as it is.
            match fs::remove_dir(&dir) {
                Ok(()) => sync_dir(&self.uploads)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => sync_dir(&dir)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn list_part_files(&self) -> io::Result<Vec<(PartKey, SystemTime)>> {
        let mut out = Vec::new();
        let sessions = match fs::read_dir(&self.uploads) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for session in sessions {
            let session = session?;
            // Single-node sessions are plain files here; only directories hold parts.
            if !session.file_type()?.is_dir() {
                continue;
            }
            let Some(id) = session.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            for entry in fs::read_dir(session.path())? {
                let entry = entry?;
                let parsed = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| PartKey::parse(&id, n));
                if let Some(part) = parsed {
                    out.push((part, entry.metadata()?.modified()?));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A file in `tmp/`, deleted when dropped unless published.
#[derive(Debug)]
pub(crate) struct FsTemp {
    file: File,
    path: PathBuf,
    /// Bytes written so far.
    written: u64,
    /// Bytes for which writeback has already been started.
    flushed: u64,
}

/// Writeback of a large object is started every this many bytes, so that the final
/// `fdatasync` only waits for the tail instead of the whole object (reference/storage.md §3).
const WRITEBACK_WINDOW: u64 = 16 * 1024 * 1024;

impl TempObject for FsTemp {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        let pending = self.written - self.flushed;
        if pending >= WRITEBACK_WINDOW {
            // POSIX_FADV_DONTNEED starts asynchronous writeback of the dirty range (Linux's
            // `sync_file_range(SYNC_FILE_RANGE_WRITE)` has no safe binding). It is only a hint:
            // durability still comes from the fdatasync in `sync`.
            let len = std::num::NonZeroU64::new(pending);
            rustix::fs::fadvise(&self.file, self.flushed, len, rustix::fs::Advice::DontNeed)?;
            self.flushed = self.written;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        // A failed fdatasync is final (the kernel may have dropped the pages): the caller
        // discards the object instead of retrying.
        self.file.sync_data()
    }

    fn discard(self) {
        drop(self);
    }
}

impl Drop for FsTemp {
    /// Removes the temporary name, whether the object was published (it then lives on under its
    /// final name) or abandoned half-way by an error or a cancelled upload.
    fn drop(&mut self) {
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove temporary object")
            }
        }
    }
}

/// `fsync` a directory so that the names in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A backend that keeps the trait's default `adopt` (as S3 does), over the filesystem.
    struct Copying(FsObjects);

    impl ObjectBackend for Copying {
        type Temp = FsTemp;
        type Reader = File;
        fn create_temp(&self) -> io::Result<FsTemp> {
            self.0.create_temp()
        }
        fn publish(&self, temp: FsTemp, id: &ObjectId) -> io::Result<Published> {
            self.0.publish(temp, id)
        }
        fn open(&self, id: &ObjectId) -> io::Result<File> {
            self.0.open(id)
        }
        fn exists(&self, id: &ObjectId) -> io::Result<bool> {
            self.0.exists(id)
        }
        fn remove(&self, id: &ObjectId) -> io::Result<bool> {
            self.0.remove(id)
        }
        fn list(&self) -> io::Result<Vec<(ObjectId, SystemTime)>> {
            self.0.list()
        }
        fn clean_temp(&self) -> io::Result<usize> {
            self.0.clean_temp()
        }
        fn put_part(&self, part: &PartKey, temp: FsTemp) -> io::Result<()> {
            self.0.put_part(part, temp)
        }
        fn open_part(&self, part: &PartKey) -> io::Result<File> {
            self.0.open_part(part)
        }
        fn remove_parts(&self, parts: &[PartKey]) -> io::Result<()> {
            self.0.remove_parts(parts)
        }
        fn list_parts(&self) -> io::Result<Vec<(PartKey, SystemTime)>> {
            self.0.list_parts()
        }
    }

    /// Both the copying default and the filesystem's own `adopt` consume the session file and
    /// publish exactly its bytes.
    #[test]
    fn adopted_files_publish_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let id = ObjectId(*blake3::hash(&data).as_bytes());
        for copying in [true, false] {
            let store = dir.path().join(copying.to_string());
            fs::create_dir(&store).unwrap();
            let objs = FsObjects::open(&store).unwrap();
            let session = dir.path().join(format!("session-{copying}"));
            fs::write(&session, &data).unwrap();
            let published = if copying {
                let backend = Copying(objs);
                let temp = backend.adopt(session.clone()).unwrap();
                assert!(!session.exists(), "the default consumes the file");
                let out = backend.publish(temp, &id).unwrap();
                let mut back = Vec::new();
                backend.open(&id).unwrap().read_to_end(&mut back).unwrap();
                assert!(back == data);
                out
            } else {
                let temp = objs.adopt(session.clone()).unwrap();
                let out = objs.publish(temp, &id).unwrap();
                assert!(!session.exists(), "publish removes the session's name");
                let mut back = Vec::new();
                objs.open(&id).unwrap().read_to_end(&mut back).unwrap();
                assert!(back == data);
                out
            };
            assert_eq!(published, Published::New);
        }
    }

    #[test]
    fn publish_dedupes_and_cleans_temp() {
        let dir = tempfile::tempdir().unwrap();
        let objs = FsObjects::open(dir.path()).unwrap();
        let id = ObjectId(*blake3::hash(b"hello").as_bytes());
        for expected in [Published::New, Published::AlreadyPresent] {
            let mut t = objs.create_temp().unwrap();
            t.write_all(b"hello").unwrap();
            t.sync().unwrap();
            assert_eq!(objs.publish(t, &id).unwrap(), expected);
        }
        let mut s = String::new();
        objs.open(&id).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let mode = fs::metadata(objs.path_of(&id))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(objs.list().unwrap().len(), 1);
        let _left = objs.create_temp().unwrap();
        assert_eq!(objs.clean_temp().unwrap(), 1);
        assert!(objs.remove(&id).unwrap());
        assert!(!objs.remove(&id).unwrap());
        assert!(!objs.exists(&id).unwrap());
    }
}
