//! `PUT <prefix>/.well-known/everlock/deploy`: an atomic deploy of a tar or tar.gz archive.
//!
//! The body is read as a stream: a blocking thread walks the archive (gzip detected by its
//! magic bytes) and hands each regular file's bytes, chunk by chunk, to `Store::stage` on the
//! async side, so memory use does not depend on the archive size. Only when the whole archive
//! is valid does one commit replace the site: puts for every file, deletes for every path the
//! archive does not contain. Any problem leaves the site untouched.

mod archive;
mod links;
pub mod manifest;
mod render;
mod validate;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use everlock_host::auth::{Action, Principal};
use everlock_host::axum::body::Body;
use everlock_host::axum::response::Response;
use everlock_host::http::{HeaderValue, Method, StatusCode, header, request::Parts};
use everlock_host::http_auth;
use everlock_host::storage::{CommitMeta, ObjectRef, Op, StorageError};
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyExt as _;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use archive::{Limits, Sink};
use manifest::{Known, Manifest};
use validate::{kept_for_validation, validate_links, validate_markdown, validate_rules};

use crate::http::reply::REALM;
use crate::settings::Mode;
use crate::site::SiteInner;

/// One file on its way from the archive thread to the stager: its path and its chunks.
type FileStream = (String, mpsc::Receiver<io::Result<Bytes>>);

/// Why a deploy was refused; each maps to a status and a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The archive is malformed or holds something we refuse (400).
    #[error("{0}")]
    BadArchive(String),
    /// The site's content is not valid: `file:line: message` (422).
    #[error("{0}")]
    Invalid(String),
    /// The archive is larger than `max-deploy-bytes` or holds too many files (413).
    #[error("{0}")]
    TooLarge(String),
    /// Another change landed while the deploy ran (409).
    #[error("the site changed during the deploy; retry")]
    Conflict,
    /// A storage failure (500; 507 when storage is full).
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
}

impl DeployError {
    fn status(&self) -> StatusCode {
        match self {
            DeployError::BadArchive(_) => StatusCode::BAD_REQUEST,
            DeployError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            DeployError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            DeployError::Conflict => StatusCode::CONFLICT,
            // A full disk is the operator's to fix, not a server bug: 507, as for pushes.
            DeployError::Storage(StorageError::Full(_)) => StatusCode::INSUFFICIENT_STORAGE,
            // The shared database is unreachable for now: a retry a moment later may work.
            DeployError::Storage(StorageError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            DeployError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What a deploy committed, with the server's own accounting of what travelled.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeployReport {
    /// The commit id (hex): the new one, or HEAD's when nothing changed.
    pub commit: String,
    /// Files in the site after the deploy.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Request body bytes the server received for this deploy (as sent, compressed or not).
    pub received_bytes: u64,
    /// Files whose content came in this request.
    pub uploaded_files: u64,
    /// Files whose content the site already had (incremental deploys).
    pub reused_files: u64,
    /// The deploy matched the current site: no commit was made.
    pub unchanged: bool,
}

/// Handles the deploy endpoint: writer on `http/site/<name>`; `PUT` uploads an archive,
/// `POST` asks which contents of a manifest the server lacks.
pub async fn handle(site: &Arc<SiteInner>, parts: Parts, body: Body) -> Response {
    if parts.method != Method::PUT && parts.method != Method::POST {
        let mut r = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "use PUT with a tar or tar.gz body, or POST a manifest"}),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("PUT, POST"));
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
        return if principal.is_anon() {
            http_auth::unauthorized(REALM)
        } else {
            http_auth::forbidden()
        };
    }
    if parts.method == Method::POST {
        return match missing(site, body).await {
            Ok(answer) => json(StatusCode::OK, &answer),
            Err(e) => error(&e),
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
    let incremental = parts.headers.contains_key(manifest::MANIFEST_HEADER);
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let stream = body
        .into_data_stream()
        .map_ok(move |chunk| {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            chunk
        })
        .map_err(io::Error::other)
        .boxed();
    let result = deploy(site, &principal, StreamReader::new(stream), incremental).await;
    let received_bytes = received.load(Ordering::Relaxed);
    match result {
        Ok(mut report) => {
            report.received_bytes = received_bytes;
            tracing::info!(
                site = %site.name, principal = %principal, commit = %report.commit,
                received_bytes, uploaded_files = report.uploaded_files,
                reused_files = report.reused_files, unchanged = report.unchanged,
                "deployed"
            );
            let status = if report.unchanged {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            json(status, &report)
        }
        Err(e) => {
            tracing::info!(site = %site.name, principal = %principal, received_bytes, "deploy refused: {e}");
            error(&e)
        }
    }
}

/// Answers a manifest (`POST`): the contents the site's HEAD does not have.
async fn missing(site: &SiteInner, body: Body) -> Result<manifest::Missing, DeployError> {
    let limit = usize::try_from(manifest::MAX_MANIFEST).unwrap_or(usize::MAX);
    let bytes = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| DeployError::TooLarge(format!("manifest: {e}")))?
        .to_bytes();
    let checked = Manifest::parse(&bytes, site.settings.max_deploy_files)?;
    let known = Known::load(site.store().await?).await?;
    Ok(known.missing(&checked))
}

/// A site version's files by path.
type Files = BTreeMap<String, ObjectRef>;
/// Small files kept in memory for validation, by path.
type Kept = BTreeMap<String, Vec<u8>>;

/// What the archive walk and the stager produced.
struct Ingested {
    /// Uploaded files by path.
    staged: BTreeMap<String, ObjectRef>,
    /// Small files kept for validation.
    walked: archive::Walked,
    /// The manifest, for an incremental upload.
    manifest: Option<Vec<u8>>,
}

/// Ingests an archive from `reader` and commits it as the whole new site. With `incremental`,
/// the archive's first entry is the manifest and the files it holds are only those the
/// server lacked.
pub async fn deploy<R>(
    site: &SiteInner,
    principal: &Principal,
    reader: R,
    incremental: bool,
) -> Result<DeployReport, DeployError>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let store = site.store().await?.clone();
    let mut ingested = ingest(site, &store, reader, incremental).await?;
    let known = Known::load(&store).await?;
    let uploaded_files = ingested.staged.len() as u64;
    let heads = std::mem::take(&mut ingested.walked.heads);
    let mut links = std::mem::take(&mut ingested.walked.links);
    let link_room = ingested.walked.link_room;
    let (files, mut validate) = new_version(site, ingested, &known)?;
    let markdown = site.settings.mode == Mode::Markdown;
    reused_for_validation(&store, &known, &files, &mut validate, markdown).await?;
    validate_rules(&validate)?;
    if markdown {
        validate_markdown(&validate, &heads)?;
        let limit = site.settings.max_deploy_bytes;
        reused_links(&store, &known, &files, &mut links, link_room, limit).await?;
        validate_links(&files, &validate, &links, &site.prefix)?;
    }
    let count = files.len() as u64;
    let bytes = files.values().map(|o| o.size).sum();
    let mut report = DeployReport {
        commit: String::new(),
        files: count,
        bytes,
        received_bytes: 0,
        uploaded_files,
        reused_files: count.saturating_sub(uploaded_files),
        unchanged: false,
    };
    if let Some(head) = known.head
        && known.is_current(files.iter().map(|(p, o)| (p, &o.id)))
    {
        report.commit = head.to_hex();
        report.unchanged = true;
        return Ok(report);
    }
    if markdown {
        // Last, as the costliest check: every page renders with the new layouts first.
        render::check(site, &store, &files, &validate).await?;
    }
    let message = format!("site: deploy {count} files, {bytes} bytes");
    report.commit = commit_version(&store, &known, files, principal, message).await?;
    Ok(report)
}

/// The new version's files by path and the small files kept for validation: for an
/// incremental upload, the manifest resolved against what was uploaded and what the store
/// already holds; otherwise exactly what the archive held, which may not be nothing.
fn new_version(
    site: &SiteInner,
    ingested: Ingested,
    known: &Known,
) -> Result<(Files, Kept), DeployError> {
    match &ingested.manifest {
        Some(bytes) => {
            let checked = Manifest::parse(bytes, site.settings.max_deploy_files)?;
            let files = manifest::resolve(&checked, ingested.staged, known)?;
            Ok((files, ingested.walked.validate))
        }
        None if ingested.staged.is_empty() => Err(DeployError::BadArchive(
            "the archive holds no files".to_owned(),
        )),
        None => Ok((ingested.staged, ingested.walked.validate)),
    }
}

/// Commits `files` as the whole site: every current path the new version lacks is deleted in
/// the same commit, so readers see the old site or the new one, never a mixture. Returns the
/// commit id in hex.
async fn commit_version(
    store: &everlock_host::storage::Store,
    known: &Known,
    files: Files,
    principal: &Principal,
    message: String,
) -> Result<String, DeployError> {
    let mut ops: Vec<Op> = known
        .current
        .keys()
        .filter(|p| !files.contains_key(*p))
        .map(|p| Op::Delete { path: p.clone() })
        .collect();
    ops.extend(
        files
            .into_iter()
            .map(|(path, object)| Op::Put { path, object }),
    );
    let info = store
        .commit(ops, Vec::new(), CommitMeta::new(principal.name(), message))
        .await
        .map_err(|e| match e {
            StorageError::NotFound(_) | StorageError::Conflict { .. } => DeployError::Conflict,
            StorageError::Invalid { reason, .. } => DeployError::BadArchive(reason),
            other => DeployError::Storage(other),
        })?;
    Ok(info.id.to_hex())
}

/// Walks the archive on a blocking thread and stages each file it holds.
async fn ingest<R>(
    site: &SiteInner,
    store: &everlock_host::storage::Store,
    reader: R,
    incremental: bool,
) -> Result<Ingested, DeployError>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let limits = Limits {
        max_bytes: site.settings.max_deploy_bytes,
        max_files: site.settings.max_deploy_files,
        validate: site.settings.mode == Mode::Markdown,
    };
    let (files_tx, mut files_rx) = mpsc::channel::<FileStream>(1);
    let walker = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink {
            files: files_tx,
            current: None,
            manifest: incremental.then(ManifestSlot::default),
        };
        let walked = archive::walk(SyncIoBridge::new(reader), limits, &mut sink)?;
        Ok::<_, DeployError>((walked, sink.manifest.map(|m| m.bytes)))
    });
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
    let (walked, manifest) = walker
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
    let manifest = match manifest {
        Some(Some(bytes)) => Some(bytes),
        Some(None) => {
            return Err(DeployError::BadArchive(
                "an incremental upload must start with its manifest".to_owned(),
            ));
        }
        None => None,
    };
    Ok(Ingested {
        staged,
        walked,
        manifest,
    })
}

/// An incremental deploy uploads only new contents, so `site.toml` and layouts it did not
/// upload are read from the objects HEAD already has, for validation.
async fn reused_for_validation(
    store: &everlock_host::storage::Store,
    known: &Known,
    files: &BTreeMap<String, ObjectRef>,
    validate: &mut BTreeMap<String, Vec<u8>>,
    markdown: bool,
) -> Result<(), DeployError> {
    let Some(head) = known.head else {
        return Ok(());
    };
    for (path, object) in files {
        if !kept_for_validation(path, markdown) || validate.contains_key(path) {
            continue;
        }
        if let Some(entry) = known.by_id.get(&object.id) {
            validate.insert(path.clone(), store.read_at(&entry.path, head).await?);
        }
    }
    Ok(())
}

/// An incremental deploy does not upload the pages it keeps, yet their links must still be
/// judged against the new file set (a deleted page breaks links from unchanged ones), so their
/// bytes are read back from HEAD, one page at a time, each at most `max_bytes`.
async fn reused_links(
    store: &everlock_host::storage::Store,
    known: &Known,
    files: &BTreeMap<String, ObjectRef>,
    links: &mut BTreeMap<String, Vec<links::Link>>,
    mut room: u64,
    max_bytes: u64,
) -> Result<(), DeployError> {
    let Some(head) = known.head else {
        return Ok(());
    };
    // Links only break when a path goes away or what else answers them changes (redirect
    // rules, taxonomies in `site.toml`): without that, the reused pages, judged when they were
    // deployed, are not read again, so an incremental deploy of a large site stays cheap.
    let same = |p: &str| files.get(p).map(|o| &o.id) == known.current.get(p).map(|e| &e.object);
    let removed = known.current.keys().any(|p| !files.contains_key(p));
    if !removed && same(crate::rules::REDIRECTS) && same("site.toml") {
        return Ok(());
    }
    let limit = max_bytes.min(everlock_host::storage::READ_MAX);
    for (path, object) in files {
        if !path.ends_with(".md") || links.contains_key(path) || object.size > limit {
            continue;
        }
        let Some(entry) = known.by_id.get(&object.id) else {
            continue;
        };
        let bytes = store.read_at(&entry.path, head).await?;
        let (found, used) = links::scan(&bytes, room);
        room = room.saturating_sub(used);
        links.insert(path.clone(), found);
    }
    Ok(())
}

/// Sends each file to the async side as its own chunk channel, which `Store::stage` reads.
/// In an incremental upload, the first archive entry is the manifest, collected in memory
/// (bounded by [`manifest::MAX_MANIFEST`]) instead of staged.
struct ChannelSink {
    files: mpsc::Sender<FileStream>,
    current: Option<mpsc::Sender<io::Result<Bytes>>>,
    manifest: Option<ManifestSlot>,
}

/// The manifest of an incremental upload while it is read.
#[derive(Default)]
struct ManifestSlot {
    /// The manifest's bytes once its entry started.
    bytes: Option<Vec<u8>>,
    /// Whether the entry being read is the manifest.
    reading: bool,
}

impl Sink for ChannelSink {
    fn start(&mut self, path: &str) -> Result<(), DeployError> {
        // Dropping the previous file's sender first ends its stream, so the stager can finish
        // that file and take this one.
        self.current = None;
        if let Some(slot) = &mut self.manifest {
            slot.reading = slot.bytes.is_none();
            if slot.reading {
                slot.bytes = Some(Vec::new());
                return Ok(());
            }
        }
        let (tx, rx) = mpsc::channel(4);
        self.files
            .blocking_send((path.to_owned(), rx))
            .map_err(|_| stager_stopped())?;
        self.current = Some(tx);
        Ok(())
    }

    fn chunk(&mut self, chunk: Bytes) -> Result<(), DeployError> {
        if let Some(ManifestSlot {
            bytes: Some(bytes),
            reading: true,
        }) = &mut self.manifest
        {
            if (bytes.len() + chunk.len()) as u64 > manifest::MAX_MANIFEST {
                return Err(DeployError::TooLarge(format!(
                    "the deploy manifest is larger than {} bytes",
                    manifest::MAX_MANIFEST
                )));
            }
            bytes.extend_from_slice(&chunk);
            return Ok(());
        }
        match &self.current {
            Some(tx) => tx.blocking_send(Ok(chunk)).map_err(|_| stager_stopped()),
            None => Err(stager_stopped()),
        }
    }

    fn abort(&mut self, error: &io::Error) {
        if let Some(tx) = self.current.take() {
            // The stager only needs to stop; the walk's own error says why.
            let _ = tx.blocking_send(Err(io::Error::other(error.to_string())));
        }
    }
}

fn stager_stopped() -> DeployError {
    DeployError::Storage(StorageError::Worker("stager stopped".to_owned()))
}

fn error(e: &DeployError) -> Response {
    let mut r = json(e.status(), &serde_json::json!({ "error": e.to_string() }));
    if r.status() == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
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
    use super::archive::clean_path;
    use super::{DeployError, StatusCode, StorageError, error, header};

    #[test]
    fn storage_failures_map_to_their_statuses() {
        let status = |e: StorageError| {
            let r = error(&DeployError::Storage(e));
            let retry = r.headers().get(header::RETRY_AFTER).cloned();
            (r.status(), retry)
        };
        let (s, retry) = status(StorageError::Unavailable("db down".into()));
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.unwrap(), "1");
        let (s, retry) = status(StorageError::Database("constraint".into()));
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(retry.is_none());
        let (s, _) = status(StorageError::Full("disk".into()));
        assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE);
    }

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
