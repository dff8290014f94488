//! `PUT <prefix>/.well-known/everlock/deploy`: an atomic deploy of a tar or tar.gz archive.
//!
//! The body is read as a stream: a blocking thread walks the archive (gzip detected by its
//! magic bytes) and hands each regular file's bytes, chunk by chunk, to `Store::stage` on the
//! async side, so memory use does not depend on the archive size. Only when the whole archive
//! is valid does one commit replace the site: puts for every file, deletes for every path the
//! archive does not contain. Any problem leaves the site untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use bytes::Bytes;
use everlock_host::auth::{Action, Principal};
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use everlock_host::http_auth;
use everlock_host::storage::{CommitMeta, ObjectRef, Op, StorageError};
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::http::serve::REALM;
use crate::markdown::config::SiteConfig;
use crate::markdown::layout;
use crate::settings::Mode;
use crate::site::SiteInner;

/// The longest path accepted inside an archive, in bytes.
const MAX_PATH: usize = 1024;
/// Chunk size for moving file bytes from the archive thread to the store.
const CHUNK: usize = 64 * 1024;
/// Files the deploy keeps in memory for validation (site.toml, layouts), at most this big.
const VALIDATE_MAX: u64 = 1024 * 1024;

/// Why a deploy was refused; each maps to a status and a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The archive is malformed or holds something we refuse (400).
    #[error("{0}")]
    BadArchive(String),
    /// The archive is larger than `max-deploy-bytes` or holds too many files (413).
    #[error("{0}")]
    TooLarge(String),
    /// Another change landed while the deploy ran (409).
    #[error("the site changed during the deploy; retry")]
    Conflict,
    /// A storage failure (500).
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
}

impl DeployError {
    fn status(&self) -> StatusCode {
        match self {
            DeployError::BadArchive(_) => StatusCode::BAD_REQUEST,
            DeployError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            DeployError::Conflict => StatusCode::CONFLICT,
            DeployError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What a deploy committed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployReport {
    /// The commit id (hex).
    pub commit: String,
    /// Files in the site after the deploy.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// Handles the deploy endpoint: `PUT` only, writer on `http/site/<name>`.
pub async fn handle(site: &Arc<SiteInner>, parts: Parts, body: Body) -> Response {
    if parts.method != Method::PUT {
        let mut r = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "use PUT with a tar or tar.gz body"}),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("PUT"));
        return r;
    }
    let principal = match http_auth::authenticate(&site.auth, &parts).await {
        Ok(p) => p,
        Err(e) => return http_auth::reject(&e, REALM),
    };
    if !site
        .auth
        .authorize(&principal, &site.resource, Action::Write)
    {
        return match principal {
            Principal::Anon => http_auth::unauthorized(REALM),
            _ => http_auth::forbidden(),
        };
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let max = site.settings.max_deploy_bytes;
    if declared.is_some_and(|len| len > max) {
        return error(&DeployError::TooLarge(format!(
            "archive larger than the {max}-byte limit"
        )));
    }
    let stream = body.into_data_stream().map_err(io::Error::other).boxed();
    match deploy(site, &principal, StreamReader::new(stream)).await {
        Ok(report) => {
            tracing::info!(site = %site.name, principal = %principal, commit = %report.commit, "deployed");
            json(StatusCode::CREATED, &report)
        }
        Err(e) => error(&e),
    }
}

/// Ingests an archive from `reader` and commits it as the whole new site.
pub async fn deploy<R>(
    site: &SiteInner,
    principal: &Principal,
    reader: R,
) -> Result<DeployReport, DeployError>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let store = site.store().await?.clone();
    let limits = Limits {
        max_bytes: site.settings.max_deploy_bytes,
        max_files: site.settings.max_deploy_files,
    };
    let (files_tx, mut files_rx) = mpsc::channel::<(String, mpsc::Receiver<io::Result<Bytes>>)>(1);
    let walker =
        tokio::task::spawn_blocking(move || walk(SyncIoBridge::new(reader), limits, &files_tx));
    let mut staged: BTreeMap<String, ObjectRef> = BTreeMap::new();
    let mut stage_error = None;
    while let Some((path, rx)) = files_rx.recv().await {
        let chunks =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
            );
        match store.stage(StreamReader::new(Box::pin(chunks)), None).await {
            Ok(object) => {
                staged.insert(path, object);
            }
            Err(e) => {
                stage_error.get_or_insert(e);
            }
        }
    }
    let walked = walker
        .await
        .map_err(|e| DeployError::Storage(StorageError::Worker(e.to_string())))??;
    if let Some(e) = stage_error {
        return Err(match e {
            StorageError::Io(io) => {
                DeployError::BadArchive(format!("cannot read the archive: {io}"))
            }
            other => DeployError::Storage(other),
        });
    }
    if staged.is_empty() {
        return Err(DeployError::BadArchive(
            "the archive holds no files".to_owned(),
        ));
    }
    if site.settings.mode == Mode::Markdown {
        validate_markdown(&walked.validate)?;
    }
    let current = store.list("").await?;
    let mut ops: Vec<Op> = current
        .iter()
        .filter(|e| !staged.contains_key(&e.path))
        .map(|e| Op::Delete {
            path: e.path.clone(),
        })
        .collect();
    let files = staged.len() as u64;
    let bytes = staged.values().map(|o| o.size).sum();
    ops.extend(
        staged
            .into_iter()
            .map(|(path, object)| Op::Put { path, object }),
    );
    let info = store
        .commit(
            ops,
            Vec::new(),
            CommitMeta::new(
                principal.name(),
                format!("site: deploy {files} files, {bytes} bytes"),
            ),
        )
        .await
        .map_err(|e| match e {
            StorageError::NotFound(_) | StorageError::Conflict { .. } => DeployError::Conflict,
            StorageError::Invalid { reason, .. } => DeployError::BadArchive(reason),
            other => DeployError::Storage(other),
        })?;
    Ok(DeployReport {
        commit: info.id.to_hex(),
        files,
        bytes,
    })
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_bytes: u64,
    max_files: u64,
}

/// What the archive walk collected besides the staged files.
struct Walked {
    /// Small files kept for validation (`site.toml`, `layouts/*.html`).
    validate: BTreeMap<String, Vec<u8>>,
}

/// Walks the archive on a blocking thread, sending each regular file's bytes to the stager.
fn walk<R: Read>(
    reader: R,
    limits: Limits,
    files_tx: &mpsc::Sender<(String, mpsc::Receiver<io::Result<Bytes>>)>,
) -> Result<Walked, DeployError> {
    let counted = Counted {
        inner: reader,
        read: 0,
        max: limits.max_bytes,
    };
    let mut buffered = BufReader::with_capacity(CHUNK, counted);
    let gzip = buffered
        .fill_buf()
        .map_err(read_error)?
        .starts_with(&[0x1f, 0x8b]);
    let source: Box<dyn Read> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut archive = tar::Archive::new(source);
    let mut seen_files = BTreeSet::new();
    let mut seen_dirs = BTreeSet::new();
    let mut validate = BTreeMap::new();
    let mut total: u64 = 0;
    let mut count: u64 = 0;
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let raw_path = entry.path_bytes().into_owned();
        let Some(path) = clean_path(&raw_path)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            seen_dirs.insert(path);
            continue;
        }
        if !kind.is_file() {
            let what = match kind {
                tar::EntryType::Symlink => "a symbolic link",
                tar::EntryType::Link => "a hard link",
                tar::EntryType::Char | tar::EntryType::Block => "a device file",
                tar::EntryType::Fifo => "a FIFO",
                _ => "an unsupported entry type",
            };
            return Err(DeployError::BadArchive(format!(
                "{path:?} is {what}; only regular files and directories are accepted"
            )));
        }
        count += 1;
        if count > limits.max_files {
            return Err(DeployError::TooLarge(format!(
                "the archive holds more than {} files",
                limits.max_files
            )));
        }
        let size = entry.header().size().map_err(read_error)?;
        total = total.saturating_add(size);
        if total > limits.max_bytes {
            return Err(DeployError::TooLarge(format!(
                "the archive unpacks to more than the {}-byte limit",
                limits.max_bytes
            )));
        }
        let keep = size <= VALIDATE_MAX
            && (path == "site.toml" || path.starts_with("layouts/") && path.ends_with(".html"));
        let (tx, rx) = mpsc::channel(4);
        files_tx
            .blocking_send((path.clone(), rx))
            .map_err(|_| DeployError::Storage(StorageError::Worker("stager stopped".to_owned())))?;
        let mut kept = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    // The stager only needs to stop; the error returned here says why.
                    let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
                    return Err(read_error(e));
                }
            };
            let chunk = Bytes::copy_from_slice(buf.get(..n).unwrap_or(&[]));
            if keep {
                kept.extend_from_slice(&chunk);
            }
            if tx.blocking_send(Ok(chunk)).is_err() {
                return Err(DeployError::Storage(StorageError::Worker(
                    "stager stopped".to_owned(),
                )));
            }
        }
        if keep {
            validate.insert(path.clone(), kept);
        }
        seen_files.insert(path);
    }
    // A path cannot be both a file and a directory: the site would be ambiguous.
    for file in &seen_files {
        let dir_prefix = format!("{file}/");
        if seen_dirs.contains(file)
            || seen_files
                .range(dir_prefix.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&dir_prefix))
        {
            return Err(DeployError::BadArchive(format!(
                "{file:?} is both a file and a directory"
            )));
        }
    }
    Ok(Walked { validate })
}

/// Turns an archive path into a store key: relative, no `..`, no empty segments; `./` prefixes
/// and the root directory entry are dropped (`None`).
fn clean_path(raw: &[u8]) -> Result<Option<String>, DeployError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| DeployError::BadArchive("an archive path is not UTF-8".to_owned()))?;
    if text.starts_with('/') || text.contains('\\') || text.contains('\0') {
        return Err(DeployError::BadArchive(format!(
            "{text:?} is an absolute or unsafe path"
        )));
    }
    if text.len() > MAX_PATH {
        return Err(DeployError::BadArchive(format!(
            "a path is longer than {MAX_PATH} bytes"
        )));
    }
    let mut segments = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(DeployError::BadArchive(format!("{text:?} contains `..`"))),
            s if s.chars().any(char::is_control) => {
                return Err(DeployError::BadArchive(format!(
                    "{text:?} contains a control character"
                )));
            }
            s => segments.push(s),
        }
    }
    Ok((!segments.is_empty()).then(|| segments.join("/")))
}

/// Rejects a Markdown site whose `site.toml` or layouts would not load.
fn validate_markdown(files: &BTreeMap<String, Vec<u8>>) -> Result<(), DeployError> {
    if let Some(bytes) = files.get("site.toml") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| DeployError::BadArchive("site.toml is not UTF-8".to_owned()))?;
        SiteConfig::parse(text).map_err(DeployError::BadArchive)?;
    }
    let mut layouts = BTreeMap::new();
    for (path, bytes) in files {
        if let Some(name) = path.strip_prefix("layouts/") {
            let text = String::from_utf8(bytes.clone())
                .map_err(|_| DeployError::BadArchive(format!("{path} is not UTF-8")))?;
            layouts.insert(name.to_owned(), text);
        }
    }
    layout::compile(&layouts)
        .map(|_| ())
        .map_err(|e| DeployError::BadArchive(format!("layouts: {e}")))
}

fn read_error(e: io::Error) -> DeployError {
    if e.kind() == io::ErrorKind::FileTooLarge {
        DeployError::TooLarge(e.to_string())
    } else {
        DeployError::BadArchive(format!("cannot read the archive: {e}"))
    }
}

/// Counts request bytes and stops past the limit (the body may have no `Content-Length`).
struct Counted<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("archive larger than the {}-byte limit", self.max),
            ));
        }
        Ok(n)
    }
}

fn error(e: &DeployError) -> Response {
    json(e.status(), &serde_json::json!({ "error": e.to_string() }))
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_paths_are_cleaned_or_rejected() {
        assert_eq!(
            clean_path(b"./a/b.html").unwrap().as_deref(),
            Some("a/b.html")
        );
        assert_eq!(clean_path(b"./").unwrap(), None);
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"a/../../b").is_err());
        assert!(clean_path(b"a\\b").is_err());
        assert!(clean_path(&[0xff]).is_err());
    }
}
