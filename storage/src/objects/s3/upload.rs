//! Publishing a spooled object: the spool file itself, and the multipart upload of objects
//! too large for one conditional `PutObject`.

use std::fs::{self, File};
use std::io::{self, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;

use super::super::TempObject;
use super::S3Error;
use super::error::request;

/// Size of each multipart part (S3 needs at least 5 MiB for all but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded at the same time by one publish; with the part being filled this bounds a
/// publish to about `(PARTS_IN_FLIGHT + 1) * PART_SIZE` bytes of memory.
const PARTS_IN_FLIGHT: usize = 2;
/// Uploads `file` from its start as `key`, aborting the upload on any error so that no parts
/// linger (a crash still can: the bucket should expire incomplete uploads, see README).
pub(super) async fn upload_multipart(
    store: Arc<dyn ObjectStore>,
    key: Key,
    mut file: tokio::fs::File,
    expected: u64,
) -> Result<(), S3Error> {
    use tokio::io::AsyncSeekExt;
    let upload = store
        .put_multipart(&key)
        .await
        .map_err(request("create multipart", &key))?;
    let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut sent = 0u64;
    let streamed: Result<(), S3Error> = async {
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(S3Error::Spool)?;
        loop {
            let n = file.read(&mut buf).await.map_err(S3Error::Spool)?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            parts
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(request("upload part", &key))?;
            parts.write(chunk);
            sent += n as u64;
        }
        check_len(&key, expected, sent)
    }
    .await;
    match streamed {
        Ok(()) => {
            parts
                .finish()
                .await
                .map_err(request("complete multipart", &key))?;
            Ok(())
        }
        Err(e) => {
            if let Err(abort) = parts.abort().await {
                tracing::warn!(key = %key, error = %abort, "cannot abort multipart upload");
            }
            Err(e)
        }
    }
}

/// Refuses an upload whose byte count is not the spool's.
pub(super) fn check_len(key: &Key, expected: u64, got: u64) -> Result<(), S3Error> {
    if expected == got {
        Ok(())
    } else {
        Err(S3Error::Length {
            key: key.to_string(),
            expected,
            got,
        })
    }
}

/// A spool file, deleted when dropped.
#[derive(Debug)]
pub(crate) struct S3Temp {
    pub(super) file: File,
    pub(super) path: PathBuf,
    pub(super) written: u64,
}

impl TempObject for S3Temp {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }

    /// Nothing to do: the spool is read back by `publish`, and durability comes from S3
    /// acknowledging the upload. A crash before that loses only an unacknowledged upload.
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn discard(self) {
        drop(self);
    }
}

impl Drop for S3Temp {
    fn drop(&mut self) {
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove spool file")
            }
        }
    }
}
