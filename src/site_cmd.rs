//! `everlock site deploy <dir> --url <site url> --user <login>`: uploads a directory as a
//! site's whole new content.
//!
//! The directory is packed into a tar.gz on a blocking thread and streamed to the site's
//! `PUT /.well-known/everlock/deploy` endpoint while it is being built, so memory use does not
//! depend on the site's size; a progress bar counts the file bytes packed. HTTPS trusts the
//! system roots plus an optional `--cacert` (for example the server's generated local CA).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use indicatif::{ProgressBar, ProgressStyle};

/// The deploy endpoint below the site URL.
const DEPLOY_PATH: &str = "/.well-known/everlock/deploy";

/// The largest reply read from the server: a deploy report or an error is a few hundred bytes,
/// so anything bigger is not the deploy endpoint talking and is not buffered whole.
const MAX_REPLY: usize = 64 * 1024;

/// Arguments of `everlock site`.
#[derive(clap::Args, Debug)]
pub(crate) struct SiteArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: SiteCommand,
}

/// The `everlock site` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum SiteCommand {
    /// Upload a directory as the site's whole new content, in one atomic commit.
    Deploy {
        /// The directory to publish (its content becomes the site root).
        dir: PathBuf,
        /// The site's URL, e.g. `https://docs.example.com/` (a path prefix is kept).
        #[arg(long)]
        url: String,
        /// The login to deploy as (needs writer on `http/site/<name>`).
        #[arg(long)]
        user: String,
        /// A PEM file of extra CA certificates to trust (e.g. `data/_host/tls/ca.pem`).
        #[arg(long)]
        cacert: Option<PathBuf>,
    },
}

/// Runs `everlock site ...`.
pub(crate) fn run(args: SiteArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SiteCommand::Deploy {
            dir,
            url,
            user,
            cacert,
        } => {
            let password = match std::env::var("EVERLOCK_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => rpassword::prompt_password(format!("Password for {user}: "))
                    .context("cannot read the password (set EVERLOCK_PASSWORD)")?,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let report =
                runtime.block_on(deploy(&dir, &url, &user, &password, cacert.as_deref()))?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One file to pack: its path on disk and its name in the archive.
#[derive(Debug)]
struct FileToPack {
    disk: PathBuf,
    name: String,
    size: u64,
}

async fn deploy(
    dir: &Path,
    url: &str,
    user: &str,
    password: &str,
    cacert: Option<&Path>,
) -> anyhow::Result<String> {
    let endpoint = deploy_url(url)?;
    let client = client(cacert, endpoint.scheme() == "https")?;
    let files = collect(dir)?;
    if files.is_empty() {
        bail!("{} holds no files to deploy", dir.display());
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );

    // The archive is built on a blocking thread and handed over in chunks.
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
    let packer_bar = bar.clone();
    let packer = tokio::task::spawn_blocking(move || {
        pack(files, ChannelWriter { tx: tx.clone() }, &packer_bar, &tx)
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let response = client
        .put(endpoint.clone())
        .basic_auth(user, Some(password))
        .header(reqwest::header::CONTENT_TYPE, "application/gzip")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .map_err(|e| send_error(e, &endpoint))?;
    let packed = packer.await.context("the archive packer stopped")?;
    bar.finish_and_clear();
    let status = response.status();
    let body = Limited::new(reqwest::Body::from(response), MAX_REPLY)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the response: {e}"))?
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if status != reqwest::StatusCode::CREATED {
        let message = json
            .get("error")
            .and_then(|e| e.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        bail!("deploy refused ({status}): {message}");
    }
    packed.context("cannot pack the directory")?;
    Ok(format!(
        "deployed {} files ({} bytes) to {url}; commit {}",
        json.get("files")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        json.get("bytes")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0),
        json.get("commit").and_then(|c| c.as_str()).unwrap_or("?"),
    ))
}

/// Names what failed the way the hand-written client did: the connection (TCP or TLS) or the
/// upload itself.
fn send_error(e: reqwest::Error, endpoint: &reqwest::Url) -> anyhow::Error {
    let what = if e.is_connect() {
        format!(
            "cannot connect to {}:{}",
            endpoint.host_str().unwrap_or("?"),
            endpoint.port_or_known_default().unwrap_or(0)
        )
    } else {
        "the upload failed".to_owned()
    };
    anyhow::Error::new(e).context(what)
}

/// An HTTP/1.1 client that trusts the system roots plus `cacert`, over rustls with ring.
/// Proxies are not used: the deploy goes straight to the site, as it always has. A plain-HTTP
/// deploy loads no roots at all, so it works on a machine without system certificates.
fn client(cacert: Option<&Path>, https: bool) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a bundled crypto provider; ring is the one the whole binary
    // uses. Installing fails only when a provider is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .user_agent(concat!("everlock/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = cacert {
        let pem = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no certificate", path.display());
        }
        builder = builder.tls_certs_merge(certs);
    } else if !https {
        builder = builder.tls_certs_only(Vec::new());
    }
    builder.build().context("TLS configuration")
}

/// The deploy endpoint of the site at `url`: its path prefix is kept, its query dropped.
fn deploy_url(url: &str) -> anyhow::Result<reqwest::Url> {
    let mut endpoint = reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    if !matches!(endpoint.scheme(), "https" | "http") {
        bail!("{url:?}: the site URL must start with https:// or http://");
    }
    if endpoint.host_str().is_none_or(str::is_empty) {
        bail!("{url:?} has no host");
    }
    let path = format!("{}{DEPLOY_PATH}", endpoint.path().trim_end_matches('/'));
    endpoint.set_path(&path);
    endpoint.set_query(None);
    endpoint.set_fragment(None);
    Ok(endpoint)
}

/// Lists the regular files under `dir` with their archive names; links are refused because the
/// server refuses them too, and it is better to say so before uploading anything.
fn collect(dir: &Path) -> anyhow::Result<Vec<FileToPack>> {
    let meta = fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((disk, name)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&disk)
            .with_context(|| format!("cannot list {}", disk.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot list {}", disk.display()))?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                bail!("{} has a name that is not UTF-8", entry.path().display());
            };
            let archive_name = if name.is_empty() {
                file_name.to_owned()
            } else {
                format!("{name}/{file_name}")
            };
            let kind = entry
                .file_type()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            if kind.is_symlink() {
                bail!(
                    "{} is a symbolic link; sites hold regular files only",
                    entry.path().display()
                );
            } else if kind.is_dir() {
                stack.push((entry.path(), archive_name));
            } else if kind.is_file() {
                let size = entry
                    .metadata()
                    .with_context(|| format!("cannot stat {}", entry.path().display()))?
                    .len();
                out.push(FileToPack {
                    disk: entry.path(),
                    name: archive_name,
                    size,
                });
            } else {
                bail!("{} is not a regular file", entry.path().display());
            }
        }
    }
    Ok(out)
}

/// Writes the tar.gz of `files` into `writer`; on failure the error also goes down the
/// channel, so the upload is cut short instead of looking complete.
fn pack(
    files: Vec<FileToPack>,
    writer: ChannelWriter,
    bar: &ProgressBar,
    tx: &tokio::sync::mpsc::Sender<io::Result<Bytes>>,
) -> anyhow::Result<()> {
    let result = (|| -> anyhow::Result<()> {
        let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::default());
        let mut builder = tar::Builder::new(gz);
        builder.mode(tar::HeaderMode::Deterministic);
        for file in files {
            let handle = fs::File::open(&file.disk)
                .with_context(|| format!("cannot open {}", file.disk.display()))?;
            let mut header = tar::Header::new_gnu();
            header.set_size(file.size);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            let reader = Counting {
                inner: handle.take(file.size),
                bar: bar.clone(),
            };
            builder
                .append_data(&mut header, &file.name, reader)
                .with_context(|| format!("cannot pack {}", file.disk.display()))?;
        }
        let gz = builder.into_inner().context("cannot finish the archive")?;
        gz.finish().context("cannot finish the archive")?.flush()?;
        Ok(())
    })();
    if let Err(e) = &result {
        let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
    }
    result
}

/// Counts bytes read into the progress bar.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A `Write` that sends what it receives to the request body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the server closed the upload")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_map_to_the_deploy_endpoint() {
        let url = |u: &str| deploy_url(u).map(String::from);
        assert_eq!(
            url("https://localhost:8443/").unwrap(),
            "https://localhost:8443/.well-known/everlock/deploy"
        );
        assert_eq!(
            url("http://docs.example/sub/?x=1#top").unwrap(),
            "http://docs.example/sub/.well-known/everlock/deploy"
        );
        let t = deploy_url("https://[::1]/").unwrap();
        assert_eq!(
            (t.host_str(), t.port_or_known_default()),
            (Some("[::1]"), Some(443))
        );
        assert!(deploy_url("ftp://x/").is_err());
        assert!(deploy_url("localhost").is_err());
    }

    #[test]
    fn a_cacert_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "not a certificate\n").unwrap();
        let e = client(Some(&empty), true).unwrap_err().to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        assert!(client(Some(&dir.path().join("missing.pem")), true).is_err());
        // Plain HTTP needs no certificate store, not even the system's.
        assert!(client(None, false).is_ok());
    }

    #[test]
    fn collect_lists_files_and_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("index.html"), "x").unwrap();
        fs::write(dir.path().join("a/b/c.css"), "yy").unwrap();
        let mut names: Vec<(String, u64)> = collect(dir.path())
            .unwrap()
            .into_iter()
            .map(|f| (f.name, f.size))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [("a/b/c.css".to_owned(), 2), ("index.html".to_owned(), 1)]
        );
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert!(
            collect(dir.path())
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert!(collect(&dir.path().join("index.html")).is_err());
    }
}
