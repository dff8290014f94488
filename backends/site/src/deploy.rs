//! `PUT <prefix>/.well-known/everlock/deploy`: an atomic deploy of a tar or tar.gz archive.
//!
//! The body is read as a stream: a blocking thread walks the archive (gzip detected by its
//! magic bytes) and hands each regular file's bytes, chunk by chunk, to `Store::stage` on the
//! async side, so memory use does not depend on the archive size. Only when the whole archive
//! is valid does one commit replace the site: puts for every file, deletes for every path the
//! archive does not contain. Any problem leaves the site untouched.

mod archive;

use std::collections::BTreeMap;
use std::io;
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

use archive::{Limits, Sink};

use crate::http::serve::REALM;
use crate::markdown::config::SiteConfig;
use crate::markdown::layout::Layouts;
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
            DeployError::Conflict => StatusCode::CONFLICT,
            // A full disk is the operator's to fix, not a server bug: 507, as for pushes.
            DeployError::Storage(StorageError::Full(_)) => StatusCode::INSUFFICIENT_STORAGE,
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
        return if principal.is_anon() {
            http_auth::unauthorized(REALM)
        } else {
            http_auth::forbidden()
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
        validate: site.settings.mode == Mode::Markdown,
    };
    let (files_tx, mut files_rx) = mpsc::channel::<FileStream>(1);
    let walker = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink {
            files: files_tx,
            current: None,
        };
        archive::walk(SyncIoBridge::new(reader), limits, &mut sink)
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

/// Sends each file to the async side as its own chunk channel, which `Store::stage` reads.
struct ChannelSink {
    files: mpsc::Sender<FileStream>,
    current: Option<mpsc::Sender<io::Result<Bytes>>>,
}

impl Sink for ChannelSink {
    fn start(&mut self, path: &str) -> Result<(), DeployError> {
        // Dropping the previous file's sender first ends its stream, so the stager can finish
        // that file and take this one.
        self.current = None;
        let (tx, rx) = mpsc::channel(4);
        self.files
            .blocking_send((path.to_owned(), rx))
            .map_err(|_| stager_stopped())?;
        self.current = Some(tx);
        Ok(())
    }

    fn chunk(&mut self, chunk: Bytes) -> Result<(), DeployError> {
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

/// Rejects a Markdown site whose `site.toml` or layouts would not load.
fn validate_markdown(files: &BTreeMap<String, Vec<u8>>) -> Result<(), DeployError> {
    if let Some(bytes) = files.get("site.toml") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| DeployError::BadArchive("site.toml is not UTF-8".to_owned()))?;
        SiteConfig::parse(text).map_err(|e| DeployError::BadArchive(e.to_string()))?;
    }
    let mut layouts = BTreeMap::new();
    for (path, bytes) in files {
        if let Some(name) = path.strip_prefix("layouts/") {
            let text = String::from_utf8(bytes.clone())
                .map_err(|_| DeployError::BadArchive(format!("{path} is not UTF-8")))?;
            layouts.insert(name.to_owned(), text);
        }
    }
    // Only compiling is checked here, so the fuel does not matter.
    Layouts::compile(&layouts, 0)
        .map(|_| ())
        .map_err(|e| DeployError::BadArchive(format!("layouts: {e}")))
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
    use super::archive::clean_path;

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
