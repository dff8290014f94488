//! `everlock site deploy <dir> --url <site url> --user <login>`: uploads a directory as a
//! site's whole new content.
//!
//! An incremental deploy first sends the manifest (every path with the blake3 hash of its
//! content) and the server answers which contents it lacks; only those are packed into a
//! tar.gz, behind the manifest, streamed to `PUT /.well-known/everlock/deploy` while it is being
//! built (memory use does not depend on the site's size), and committed as one atomic deploy.
//! Unchanged content uploads nothing and commits nothing. `--full` sends every file (as an
//! older server needs; a server that does not know manifests gets a full upload anyway). HTTPS
//! trusts the system roots plus an optional `--cacert` (e.g. the server's generated local CA).

mod pack;

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use indicatif::{ProgressBar, ProgressStyle};

use pack::{ChannelWriter, FileToPack};

/// The deploy endpoint below the site URL.
const DEPLOY_PATH: &str = "/.well-known/everlock/deploy";

/// The request header that tells the server the archive starts with the manifest.
const MANIFEST_HEADER: &str = "everlock-deploy-manifest";

/// The largest reply read from the server: a report, an error or the list of missing contents
/// (64 hex digits each, so this fits the missing list of a 100,000-file site).
const MAX_REPLY: usize = 8 * 1024 * 1024;

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
    /// Publish a directory as the site's whole new content, in one atomic commit; only
    /// contents the server does not have yet are uploaded.
    Deploy(DeployArgs),
}

/// Options of `everlock site deploy`.
#[derive(clap::Args, Debug)]
pub(crate) struct DeployArgs {
    /// The directory to publish (its content becomes the site root).
    dir: PathBuf,
    /// The site's URL, e.g. `https://docs.example.com/` (a path prefix is kept).
    #[arg(long)]
    url: String,
    /// The login to deploy as (needs writer on `http/site/<name>`).
    #[arg(long)]
    user: String,
    /// Read the password from the first line of standard input (else `EVERLOCK_PASSWORD`,
    /// else a prompt).
    #[arg(long)]
    password_stdin: bool,
    /// A PEM file of extra CA certificates to trust (e.g. `data/_host/tls/ca.pem`).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Upload every file instead of only the contents the server lacks.
    #[arg(long)]
    full: bool,
}

/// Hides the global `--config` and `--data-dir` (options of the server side) from
/// `everlock site deploy --help`, which talks to a server over HTTP and reads neither: its help
/// lists only what applies. Parsing is unchanged.
pub(crate) fn hide_server_options(mut command: clap::Command) -> clap::Command {
    // Global options reach subcommands only when the command is built.
    command.build();
    command.mut_subcommand("site", |site| {
        site.mut_subcommand("deploy", |deploy| {
            // In place: `mut_arg` would move the argument after `--help`, which clap's
            // parser does not expect of a built command.
            deploy.mut_args(|a| {
                if matches!(a.get_id().as_str(), "config" | "data_dir") {
                    a.hide(true)
                } else {
                    a
                }
            })
        })
    })
}

/// Runs `everlock site ...`.
pub(crate) fn run(args: SiteArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SiteCommand::Deploy(args) => {
            let password = password(&args)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let report = runtime.block_on(deploy(&args, &password))?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The password: from standard input, the environment or a prompt, in that order.
fn password(args: &DeployArgs) -> anyhow::Result<String> {
    if args.password_stdin {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            bail!("--password-stdin: standard input holds no password");
        }
        return Ok(line.to_owned());
    }
    match std::env::var("EVERLOCK_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(p),
        _ => rpassword::prompt_password(format!("Password for {}: ", args.user))
            .context("cannot read the password (use --password-stdin or set EVERLOCK_PASSWORD)"),
    }
}

/// A reply: its status and JSON body (`null` if it was not JSON).
struct Reply {
    status: reqwest::StatusCode,
    json: serde_json::Value,
    text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> anyhow::Result<Reply> {
        let status = response.status();
        let body = Limited::new(reqwest::Body::from(response), MAX_REPLY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the response: {e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            json: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            text: String::from_utf8_lossy(&body).trim().to_owned(),
        })
    }

    fn error(&self) -> anyhow::Error {
        let message = self
            .json
            .get("error")
            .and_then(|e| e.as_str())
            .map_or_else(|| self.text.clone(), str::to_owned);
        anyhow::anyhow!("deploy refused ({}): {message}", self.status)
    }

    fn number(&self, key: &str) -> u64 {
        self.json
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }
}

async fn deploy(args: &DeployArgs, password: &str) -> anyhow::Result<String> {
    let endpoint = deploy_url(&args.url)?;
    let client = client(args.cacert.as_deref(), endpoint.scheme() == "https")?;
    let dir = args.dir.clone();
    let files = tokio::task::spawn_blocking(move || pack::collect(&dir))
        .await
        .context("the file lister stopped")??;
    if files.is_empty() {
        bail!("{} holds no files to deploy", args.dir.display());
    }
    let session = Session {
        client: &client,
        endpoint: &endpoint,
        user: &args.user,
        password,
    };
    if args.full {
        return session.upload(None, files, &args.url).await;
    }
    let (files, hashes) = tokio::task::spawn_blocking(move || {
        let hashes = pack::hash_files(&files);
        (files, hashes)
    })
    .await
    .context("the hasher stopped")?;
    let hashes = hashes?;
    let manifest = manifest_json(&files, &hashes);
    let reply = Reply::read(
        session
            .request(reqwest::Method::POST)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(manifest.clone())
            .send()
            .await
            .map_err(|e| send_error(e, &endpoint))?,
    )
    .await?;
    if matches!(
        reply.status,
        reqwest::StatusCode::METHOD_NOT_ALLOWED | reqwest::StatusCode::NOT_FOUND
    ) {
        // A server from before incremental deploys: send everything, as it expects.
        return session.upload(None, files, &args.url).await;
    }
    if reply.status != reqwest::StatusCode::OK {
        return Err(reply.error());
    }
    if reply
        .json
        .get("unchanged")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        return Ok(format!(
            "{} is already deployed at {}: nothing uploaded, no new commit",
            args.dir.display(),
            args.url
        ));
    }
    let missing: HashSet<&str> = reply
        .json
        .get("missing")
        .and_then(serde_json::Value::as_array)
        .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    // One copy of each missing content travels, under the first path that has it.
    let mut sent = HashSet::new();
    let upload: Vec<FileToPack> = files
        .into_iter()
        .zip(&hashes)
        .filter(|(_, h)| missing.contains(h.as_str()) && sent.insert(h.as_str()))
        .map(|(f, _)| f)
        .collect();
    session.upload(Some(manifest), upload, &args.url).await
}

/// The manifest the server reads: every path with its content's hash and size.
fn manifest_json(files: &[FileToPack], hashes: &[String]) -> Vec<u8> {
    let files: Vec<serde_json::Value> = files
        .iter()
        .zip(hashes)
        .map(|(f, h)| serde_json::json!({"path": f.name, "blake3": h, "size": f.size}))
        .collect();
    serde_json::to_vec(&serde_json::json!({ "files": files })).unwrap_or_default()
}

/// One deploy's connection details.
struct Session<'a> {
    client: &'a reqwest::Client,
    endpoint: &'a reqwest::Url,
    user: &'a str,
    password: &'a str,
}

impl Session<'_> {
    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.endpoint.clone())
            .basic_auth(self.user, Some(self.password))
    }

    /// Streams the archive of `files` (behind `manifest`, for an incremental deploy).
    async fn upload(
        &self,
        manifest: Option<Vec<u8>>,
        files: Vec<FileToPack>,
        url: &str,
    ) -> anyhow::Result<String> {
        let total: u64 = files.iter().map(|f| f.size).sum();
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} uploading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let incremental = manifest.is_some();
        // The archive is built on a blocking thread and handed over in chunks.
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(8);
        let packer_bar = bar.clone();
        let packer = tokio::task::spawn_blocking(move || {
            pack::pack(manifest, files, ChannelWriter { tx }, &packer_bar)
        });
        let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let mut request = self
            .request(reqwest::Method::PUT)
            .header(reqwest::header::CONTENT_TYPE, "application/gzip");
        if incremental {
            request = request.header(MANIFEST_HEADER, "1");
        }
        let response = request
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map_err(|e| send_error(e, self.endpoint))?;
        let packed = packer.await.context("the archive packer stopped")?;
        bar.finish_and_clear();
        let reply = Reply::read(response).await?;
        if !reply.status.is_success() {
            return Err(reply.error());
        }
        packed.context("cannot pack the directory")?;
        let commit = reply
            .json
            .get("commit")
            .and_then(|c| c.as_str())
            .unwrap_or("?");
        if reply
            .json
            .get("unchanged")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
        {
            return Ok(format!(
                "{url} already had this content (commit {commit}): no new commit"
            ));
        }
        Ok(format!(
            "deployed {} files ({} bytes) to {url}; commit {commit}; uploaded {} files \
             ({} bytes sent), {} unchanged",
            reply.number("files"),
            reply.number("bytes"),
            reply.number("uploaded_files"),
            reply.number("received_bytes"),
            reply.number("reused_files"),
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_help_lists_only_what_applies() {
        use clap::CommandFactory as _;
        let mut command = hide_server_options(crate::cli::Cli::command());
        // Asking for help still shows help (a reordered built command once made it an error).
        let e = command
            .clone()
            .try_get_matches_from(["everlock", "site", "deploy", "--help"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{e}");
        let deploy = command
            .find_subcommand_mut("site")
            .and_then(|s| s.find_subcommand_mut("deploy"))
            .unwrap();
        let help = deploy.render_long_help().to_string();
        assert!(help.contains("--password-stdin"), "{help}");
        assert!(!help.contains("--data-dir"), "{help}");
        assert!(!help.contains("--config"), "{help}");
        // Other commands keep them.
        let serve = command.find_subcommand_mut("serve").unwrap();
        assert!(serve.render_long_help().to_string().contains("--data-dir"));
    }

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
        let mut names: Vec<(String, u64)> = pack::collect(dir.path())
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
            pack::collect(dir.path())
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert!(pack::collect(&dir.path().join("index.html")).is_err());
    }
}
