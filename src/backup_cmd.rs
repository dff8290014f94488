//! `everlock backup <dir>` and `everlock restore <dir>`: a consistent copy of every store and
//! of `_host/` (TLS CA, SSH host key) while the server runs, and the way back into a new data
//! directory.
//!
//! Each store is copied by `everlock_storage::backup` (metadata through SQLite's online backup
//! API, then the objects that snapshot names) and verified before it counts; the manifest
//! `everlock-backup.json` is written last, so a backup without one is incomplete and restore
//! refuses it. Neither command ever writes into a non-empty directory.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use everlock_storage::backup::{self as store_backup, BackupOptions, StoreCopy};
use everlock_storage::{StoreManager, validate_store_name};
use serde_json::{Value, json};

/// The manifest file at the top of a backup.
pub(crate) const MANIFEST: &str = "everlock-backup.json";
/// The manifest format this build writes and reads.
const FORMAT: u64 = 1;
/// The directory of host-wide files (TLS CA and certificates, SSH host key).
const HOST_DIR: &str = "_host";

/// Arguments of `everlock backup`.
#[derive(clap::Args, Debug)]
pub(crate) struct BackupArgs {
    /// A new or empty directory to write the backup to.
    pub(crate) dir: PathBuf,
    /// Copy object files even where they could be hard-linked (same filesystem).
    #[arg(long)]
    pub(crate) copy: bool,
}

/// Arguments of `everlock restore` (the target is `--data-dir`).
#[derive(clap::Args, Debug)]
pub(crate) struct RestoreArgs {
    /// A backup directory written by `everlock backup`.
    pub(crate) dir: PathBuf,
}

/// Backs up every store of `data_dir` and its `_host/` into `args.dir`.
pub(crate) fn backup(args: BackupArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let stores = StoreManager::new(data_dir)
        .list()
        .with_context(|| format!("cannot list the stores in {}", data_dir.display()))?;
    if stores.is_empty() {
        bail!("{} holds no stores", data_dir.display());
    }
    make_empty_dir(&args.dir)?;
    let opts = BackupOptions {
        link: !args.copy,
        ..BackupOptions::default()
    };
    let started = SystemTime::now();
    let mut entries = Vec::new();
    let mut out = io::stdout().lock();
    for name in &stores {
        let copy = store_backup::backup_store(&data_dir.join(name), &args.dir.join(name), &opts)
            .with_context(|| format!("cannot back up store {name}"))?;
        writeln!(out, "{}", store_line("backed up", name, &copy))?;
        entries.push(store_entry(name, &copy));
    }
    let host = data_dir.join(HOST_DIR);
    let with_host = host.is_dir();
    if with_host {
        copy_tree(&host, &args.dir.join(HOST_DIR), EXACT).context("cannot back up _host/")?;
    }
    let manifest = json!({
        "format": FORMAT,
        "everlock-version": env!("CARGO_PKG_VERSION"),
        "created": everlock_storage::rfc3339(i64::try_from(unix_ms(started)).unwrap_or(i64::MAX)),
        "created-unix-ms": unix_ms(started),
        "source-data-dir": data_dir.display().to_string(),
        "host": with_host,
        "stores": entries,
    });
    write_private(
        &args.dir.join(MANIFEST),
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    writeln!(
        out,
        "backup of {} stores{} written to {}; every store verified",
        stores.len(),
        if with_host { " and _host/" } else { "" },
        args.dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Restores the backup in `args.dir` into the new or empty `data_dir`.
pub(crate) fn restore(args: RestoreArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let manifest = read_manifest(&args.dir)?;
    make_empty_dir(data_dir)?;
    let mut out = io::stdout().lock();
    let (mut objects, mut bytes) = (0, 0);
    for (name, seq, id) in &manifest.stores {
        let copy = store_backup::restore_store(&args.dir.join(name), &data_dir.join(name))
            .with_context(|| format!("cannot restore store {name}"))?;
        let restored_id = copy.head.as_ref().map(|c| c.id.to_hex());
        let restored_seq = copy.head.as_ref().map_or(0, |c| c.seq);
        if restored_id != *id || restored_seq != *seq {
            bail!("store {name}: the restored HEAD differs from the manifest's");
        }
        writeln!(out, "{}", store_line("restored", name, &copy))?;
        objects += copy.objects;
        bytes += copy.bytes;
    }
    if manifest.host {
        copy_tree(&args.dir.join(HOST_DIR), &data_dir.join(HOST_DIR), PRIVATE)
            .context("cannot restore _host/")?;
    }
    writeln!(
        out,
        "restored {} stores ({objects} object files, {bytes} bytes){} from the backup of {} \
         into {}; every store verified",
        manifest.stores.len(),
        if manifest.host { " and _host/" } else { "" },
        manifest.created,
        data_dir.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What restore needs from a manifest: every store with its HEAD seq and id.
struct Manifest {
    created: String,
    host: bool,
    stores: Vec<(String, u64, Option<String>)>,
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            bail!(
                "{} is not a complete backup: it has no {MANIFEST}",
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value: Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let format = value.get("format").and_then(Value::as_u64);
    if format != Some(FORMAT) {
        bail!(
            "{} has format {format:?}, this build reads {FORMAT}",
            path.display()
        );
    }
    let mut stores = Vec::new();
    let entries = value.get("stores").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let name = entry.get("name").and_then(Value::as_str);
        let seq = entry.get("head-seq").and_then(Value::as_u64);
        let (Some(name), Some(seq)) = (name, seq) else {
            bail!(
                "{} lists a store without a name or head-seq",
                path.display()
            );
        };
        // The names become paths: only valid store names, never `..` or `_host`.
        validate_store_name(name).with_context(|| format!("{} is damaged", path.display()))?;
        let id = entry.get("head-id").and_then(Value::as_str);
        stores.push((name.to_owned(), seq, id.map(str::to_owned)));
    }
    Ok(Manifest {
        created: value
            .get("created")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned(),
        host: value.get("host").and_then(Value::as_bool).unwrap_or(false),
        stores,
    })
}

fn store_entry(name: &str, copy: &StoreCopy) -> Value {
    json!({
        "name": name,
        "head-seq": copy.head.as_ref().map_or(0, |c| c.seq),
        "head-id": copy.head.as_ref().map(|c| c.id.to_hex()),
        "head-time-ms": copy.head.as_ref().map(|c| c.time_ms),
        "object-files": copy.objects,
        "object-bytes": copy.bytes,
    })
}

fn store_line(done: &str, name: &str, copy: &StoreCopy) -> String {
    let head = match &copy.head {
        Some(c) => format!("commit {} {}", c.seq, c.id),
        None => "no commits".to_owned(),
    };
    format!(
        "{done} {name}: {head}, {} object files ({} bytes, {} hard-linked), verified {} commits",
        copy.objects, copy.bytes, copy.linked, copy.verify.commits
    )
}

/// Creates `dir` (0700) or accepts it empty; anything in it is refused, so nothing is ever
/// overwritten or mixed with an older copy.
fn make_empty_dir(dir: &Path) -> anyhow::Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} is not empty; refusing to write into it", dir.display());
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
    // The copy holds private content (password hashes, keys), whatever the directory was.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))
}

/// A backup keeps the modes of `_host/` exactly.
const EXACT: u32 = 0o7777;
/// A restore keeps only the owner's bits: a backup that travelled through object storage comes
/// back with whatever modes the download gave it, and `_host/` holds private keys.
const PRIVATE: u32 = 0o700;

/// Copies a directory tree of regular files, keeping each mode's bits within `mask`.
fn copy_tree(from: &Path, to: &Path, mask: u32) -> anyhow::Result<()> {
    let mode = fs::metadata(from)
        .with_context(|| format!("cannot read {}", from.display()))?
        .permissions()
        .mode()
        & mask;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&src, &dst, mask)?;
        } else if kind.is_file() {
            // `fs::copy` gives the copy the source's permission bits; then the mask applies.
            let bits = fs::copy(&src, &dst)
                .and_then(|_| fs::metadata(&src))
                .with_context(|| format!("cannot copy {}", src.display()))?
                .permissions()
                .mode();
            fs::set_permissions(&dst, fs::Permissions::from_mode(bits & mask))
                .with_context(|| format!("cannot set the mode of {}", dst.display()))?;
            fs::File::open(&dst)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot sync {}", dst.display()))?;
        } else {
            bail!("{} is neither a file nor a directory", src.display());
        }
    }
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", to.display()))?;
    sync(to)
}

/// Writes a new 0600 file durably: a temporary name, fsync, rename, fsync of the directory.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot rename to {}", path.display()))?;
    sync(path.parent().unwrap_or(Path::new(".")))
}

fn sync(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
