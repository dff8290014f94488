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
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};

/// The deploy endpoint below the site URL.
const DEPLOY_PATH: &str = "/.well-known/everlock/deploy";

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
    let target = Target::parse(url)?;
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
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk.map(Frame::data), rx))
    }));

    use base64::Engine as _;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let request = hyper::Request::put(target.path.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(hyper::header::AUTHORIZATION, format!("Basic {credentials}"))
        .header(hyper::header::CONTENT_TYPE, "application/gzip")
        .header(
            hyper::header::USER_AGENT,
            concat!("everlock/", env!("CARGO_PKG_VERSION")),
        )
        .body(body)
        .context("cannot build the request")?;

    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("cannot connect to {}:{}", target.host, target.port))?;
    let response = if target.https {
        let tls = tls_connector(cacert)?;
        let name = rustls_pki_types::ServerName::try_from(target.host.clone())
            .with_context(|| format!("{:?} is not a valid TLS server name", target.host))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {} failed", target.host))?;
        send(stream, request).await?
    } else {
        send(tcp, request).await?
    };
    let packed = packer.await.context("the archive packer stopped")?;
    bar.finish_and_clear();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("cannot read the response")?
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if status != hyper::StatusCode::CREATED {
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

/// Sends one HTTP/1.1 request over `io`.
async fn send<S, B>(
    io: S,
    request: hyper::Request<B>,
) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("HTTP handshake failed")?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .context("the upload failed")
}

/// Trusts the system roots plus `cacert`.
fn tls_connector(cacert: Option<&Path>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = cacert {
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            let cert =
                cert.with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("{} holds an unusable certificate", path.display()))?;
            added += 1;
        }
        if added == 0 {
            bail!("{} holds no certificate", path.display());
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS configuration")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Where to send the deploy.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("{url:?} is not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("{url:?}: the site URL must start with https:// or http://"),
        };
        let host = uri
            .host()
            .with_context(|| format!("{url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| host.clone());
        let path = format!("{}{DEPLOY_PATH}", uri.path().trim_end_matches('/'));
        Ok(Target {
            https,
            host,
            port,
            authority,
            path,
        })
    }
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
        let t = Target::parse("https://localhost:8443/").unwrap();
        assert_eq!(
            t,
            Target {
                https: true,
                host: "localhost".into(),
                port: 8443,
                authority: "localhost:8443".into(),
                path: "/.well-known/everlock/deploy".into(),
            }
        );
        let t = Target::parse("http://docs.example/sub/").unwrap();
        assert_eq!(
            (t.port, t.path.as_str()),
            (80, "/sub/.well-known/everlock/deploy")
        );
        let t = Target::parse("https://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 443));
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("localhost").is_err());
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
