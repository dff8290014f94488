//! `everlock store …`: inspect, verify, export and collect the versioned stores.
//!
//! The reading subcommands (`list`, `log`, `cat`, `verify`, `export`) open stores read-only,
//! without their `LOCK`, so they work while a server runs. `gc` writes, so it takes the lock
//! and is refused while a server owns the store: the `LOCK` guarantees one writer process.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use everlock_storage::{
    CommitId, CommitInfo, ExportOptions, GcOptions, StorageError, Store, StoreManager,
};
use tokio::io::AsyncReadExt as _;

/// Arguments of `everlock store`.
#[derive(clap::Args, Debug)]
pub(crate) struct StoreArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: StoreCommand,
}

/// The `everlock store` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum StoreCommand {
    /// List the stores in the data directory.
    List,
    /// Show a store's commit log (newest first), or the history of one path.
    Log {
        /// The store name.
        store: String,
        /// Only this path's changes.
        path: Option<String>,
        /// Show at most this many commits.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Write the content of a path to standard output.
    Cat {
        /// The store name.
        store: String,
        /// The path to print.
        path: String,
        /// A commit id (64 hex digits) to read at instead of HEAD.
        #[arg(long)]
        at: Option<String>,
    },
    /// Re-hash every object and check the hash chain; exits non-zero naming the first problem.
    Verify {
        /// The store name.
        store: String,
    },
    /// Write the store's history as a `git fast-import` stream to standard output.
    Export {
        /// The store name.
        store: String,
        /// Content larger than this many bytes is exported as an LFS-style pointer.
        #[arg(long, default_value_t = 1024 * 1024)]
        max_blob: u64,
        /// The git ref to write; `HEAD` is the importing repository's current branch.
        #[arg(long, default_value = "HEAD")]
        branch: String,
    },
    /// Copy single-node stores (with their complete history and identical commit ids) from
    /// another data directory into the configured storage; refuses a destination store that
    /// already has commits.
    Copy {
        /// The single-node data directory to copy from (stop its server first).
        #[arg(long, value_name = "DIR")]
        from_data_dir: std::path::PathBuf,
        /// The stores to copy; every store of the source when none is named.
        stores: Vec<String>,
    },
    /// Apply the retention policy and remove objects nothing references.
    Gc {
        /// The store name.
        store: String,
        /// Report what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
        /// Never remove objects younger than this many seconds.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
        /// Set the retention policy first: purge content superseded more than this many days
        /// ago (0 purges every superseded version; "off" keeps everything).
        #[arg(long)]
        set_retention_days: Option<String>,
    },
}

/// Runs `everlock store …` against the manager's stores, printing to standard output and error.
/// The manager decides where the objects are (files or a bucket, from `[storage]`).
pub(crate) fn run(args: StoreArgs, manager: StoreManager) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let code = run_on(args, manager, &mut out, &mut io::stderr())?;
    out.flush()?;
    Ok(code)
}

/// [`run`] with explicit output streams, so tests can capture them.
#[cfg(test)]
fn run_with(
    args: StoreArgs,
    data_dir: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    run_on(args, StoreManager::new(data_dir), out, err)
}

/// [`run`] on a given manager with explicit output streams.
fn run_on(
    args: StoreArgs,
    manager: StoreManager,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let data_dir = &manager.data_dir().to_path_buf();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    // Reading needs no lock: these work next to a running server.
    let open = |name: &str| {
        manager
            .open_read_only(name)
            .with_context(|| format!("cannot open store {name:?} in {}", data_dir.display()))
    };
    match args.command {
        StoreCommand::List => {
            for name in manager
                .list()
                .with_context(|| format!("cannot list {}", data_dir.display()))?
            {
                writeln!(out, "{name}")?;
            }
        }
        StoreCommand::Log { store, path, limit } => {
            let store = open(&store)?;
            match path {
                None => {
                    for c in rt.block_on(store.log(limit))? {
                        writeln!(out, "{}", commit_line(&c))?;
                    }
                }
                Some(path) => {
                    let history = rt.block_on(store.history(&path))?;
                    let skip = history
                        .len()
                        .saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
                    for h in history.iter().skip(skip).rev() {
                        let change = match &h.content {
                            None => "delete".to_owned(),
                            Some(c) => format!(
                                "put {} bytes sha256:{}{}",
                                c.size,
                                c.sha256,
                                if c.purged { " (content purged)" } else { "" }
                            ),
                        };
                        writeln!(out, "{}  {change}", commit_line(&h.commit))?;
                    }
                }
            }
        }
        StoreCommand::Cat { store, path, at } => {
            let store = open(&store)?;
            let mut content = match at {
                None => rt.block_on(store.open(&path))?,
                Some(at) => {
                    let id: CommitId = at.parse()?;
                    rt.block_on(store.open_at(&path, id))?
                }
            };
            rt.block_on(async {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = content.read(&mut buf).await?;
                    if n == 0 {
                        return anyhow::Ok(());
                    }
                    out.write_all(buf.get(..n).unwrap_or_default())?;
                }
            })?;
        }
        StoreCommand::Verify { store: name } => {
            let store = open(&name)?;
            let report = rt.block_on(store.verify())?;
            if let Some(first) = report.problems.first() {
                for p in &report.problems {
                    writeln!(err, "{p}")?;
                }
                writeln!(
                    err,
                    "verify failed: {} problem(s) in store {name:?}; first: {first}",
                    report.problems.len()
                )?;
                return Ok(ExitCode::FAILURE);
            }
            writeln!(
                out,
                "ok: {name}: {} commits, {} objects, {} bytes re-hashed",
                report.commits, report.objects, report.bytes
            )?;
        }
        StoreCommand::Export {
            store,
            max_blob,
            branch,
        } => {
            let store = open(&store)?;
            store.export_blocking(out, &ExportOptions { max_blob, branch })?;
        }
        StoreCommand::Copy {
            from_data_dir,
            stores,
        } => {
            return crate::store_copy_cmd::run(&rt, &from_data_dir, stores, &manager, out, err);
        }
        StoreCommand::Gc {
            store: name,
            dry_run,
            grace_secs,
            set_retention_days,
        } => {
            let store = open_for_writing(&manager, &name, data_dir)?;
            if let Some(days) = set_retention_days {
                let policy = parse_retention(&days)?;
                rt.block_on(store.set_retention(policy))?;
            }
            gc(&rt, &store, dry_run, grace_secs, out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a store with its lock, for the subcommands that write. A store that a running server
/// owns gets an answer that says so and what to do instead, not just "in use".
fn open_for_writing(manager: &StoreManager, name: &str, data_dir: &Path) -> anyhow::Result<Store> {
    match manager.open_blocking(name, false) {
        Ok(store) => Ok(store),
        Err(StorageError::InUse(_)) => Err(anyhow::anyhow!(
            "store {name:?} is in use by a running server; stop it or use the console's \
             /store gc {name}"
        )),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot open store {name:?} in {}",
            data_dir.display()
        ))),
    }
}

fn gc(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    dry_run: bool,
    grace_secs: u64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let policy = rt.block_on(store.retention_policy())?;
    let report = rt.block_on(store.gc(GcOptions {
        grace: Duration::from_secs(grace_secs),
        dry_run,
    }))?;
    let verb = if dry_run { "would remove" } else { "removed" };
    writeln!(out, "retention: {policy}")?;
    if let Some(c) = &report.purge_commit {
        writeln!(out, "purge commit: {}", commit_line(c))?;
    }
    writeln!(
        out,
        "{}: purged {} versions; {verb} {} objects ({} bytes) and {} orphan files",
        if dry_run { "dry run" } else { "gc" },
        report.purged_versions,
        report.objects_removed,
        report.bytes_freed,
        report.orphan_files_removed
    )?;
    Ok(())
}

fn parse_retention(days: &str) -> anyhow::Result<Option<Duration>> {
    if days == "off" {
        return Ok(None);
    }
    let days: u64 = days
        .parse()
        .with_context(|| format!("--set-retention-days: {days:?} is not a number or \"off\""))?;
    Ok(Some(Duration::from_secs(days.saturating_mul(86_400))))
}

/// `<seq> <id> <time> <principal>: <first line of message>`.
fn commit_line(c: &CommitInfo) -> String {
    let first = c.message.lines().next().unwrap_or("");
    format!(
        "{:>6} {} {} {}: {first}",
        c.seq,
        c.id,
        everlock_storage::rfc3339(c.time_ms),
        c.principal
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use everlock_storage::CommitMeta;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: StoreCommand,
    }

    fn run_args(data: &Path, args: &[&str]) -> (ExitCode, String, String) {
        let cli =
            Cli::try_parse_from(std::iter::once("store").chain(args.iter().copied())).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(
            StoreArgs {
                command: cli.command,
            },
            data,
            &mut out,
            &mut err,
        )
        .unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn seed(data: &Path) -> (CommitInfo, CommitInfo) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let m = StoreManager::new(data);
            let s = m.open("site").await.unwrap();
            let c1 = s
                .write(
                    "index.md",
                    b"hello\n".to_vec(),
                    CommitMeta::new("alice", "first page\nmore"),
                )
                .await
                .unwrap();
            let c2 = s
                .write(
                    "index.md",
                    b"bye\n".to_vec(),
                    CommitMeta::new("bob", "second"),
                )
                .await
                .unwrap();
            (c1, c2)
        })
    }

    #[test]
    fn list_log_cat_verify_gc() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, c2) = seed(dir.path());
        std::fs::create_dir_all(dir.path().join("_host")).unwrap();
        assert_eq!(run_args(dir.path(), &["list"]).1, "site\n");
        let (_, log, _) = run_args(dir.path(), &["log", "site"]);
        let lines: Vec<_> = log.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].contains(&c2.id.to_hex()) && lines[0].ends_with("bob: second"),
            "{log}"
        );
        assert!(lines[1].ends_with("alice: first page"), "{log}");
        let (_, hist, _) = run_args(dir.path(), &["log", "site", "index.md", "--limit", "1"]);
        assert_eq!(hist.lines().count(), 1);
        assert!(hist.contains("put 4 bytes sha256:"), "{hist}");
        assert_eq!(
            run_args(dir.path(), &["cat", "site", "index.md"]).1,
            "bye\n"
        );
        assert_eq!(
            run_args(
                dir.path(),
                &["cat", "site", "index.md", "--at", &c1.id.to_hex()]
            )
            .1,
            "hello\n"
        );
        let (code, out, _) = run_args(dir.path(), &["verify", "site"]);
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(out.starts_with("ok: site: 2 commits"), "{out}");
        let (_, out, _) = run_args(
            dir.path(),
            &[
                "gc",
                "site",
                "--dry-run",
                "--grace-secs",
                "0",
                "--set-retention-days",
                "0",
            ],
        );
        assert!(out.contains("dry run: purged 1 versions"), "{out}");
        let (_, out, _) = run_args(dir.path(), &["gc", "site", "--grace-secs", "0"]);
        assert!(
            out.contains("purge commit:") && out.contains("system: gc: retention"),
            "{out}"
        );
        let (_, out, _) = run_args(dir.path(), &["log", "site", "index.md"]);
        assert!(out.contains("(content purged)"), "{out}");
    }

    #[test]
    fn errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        let cli = Cli::try_parse_from(["store", "cat", "nope", "x"]).unwrap();
        let e = run_with(
            StoreArgs {
                command: cli.command,
            },
            dir.path(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("no such store"), "{e:#}");
        let cli = Cli::try_parse_from(["store", "cat", "Bad_Name", "x"]).unwrap();
        let e = run_with(
            StoreArgs {
                command: cli.command,
            },
            dir.path(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("invalid store name"), "{e:#}");
        let cli = Cli::try_parse_from(["store", "cat", "site", "missing"]).unwrap();
        let e = run_with(
            StoreArgs {
                command: cli.command,
            },
            dir.path(),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("not found: missing"), "{e:#}");
    }

    #[test]
    fn verify_names_the_bad_commit() {
        let dir = tempfile::tempdir().unwrap();
        seed(dir.path());
        let db = rusqlite_free_tamper(dir.path());
        let (code, _, err) = run_args(dir.path(), &["verify", "site"]);
        assert_eq!(code, ExitCode::FAILURE);
        assert!(err.contains("first: bad commit 1"), "{err} ({db})");
    }

    /// Tampers with the first commit's message without a SQLite dependency in this package:
    /// the message text is stored verbatim in the database file, and flipping one of its
    /// bytes in the page is exactly the kind of silent corruption `verify` must catch.
    fn rusqlite_free_tamper(data: &Path) -> String {
        let db = data.join("site/meta.sqlite");
        // Fold the WAL into the main file first by reopening and closing the store.
        drop(
            StoreManager::new(data)
                .open_blocking("site", false)
                .unwrap(),
        );
        let mut bytes = std::fs::read(&db).unwrap();
        let needle = b"first page\nmore";
        let mut hits = 0;
        let mut i = 0;
        while i + needle.len() <= bytes.len() {
            if &bytes[i..i + needle.len()] == needle {
                bytes[i] = b'F';
                hits += 1;
            }
            i += 1;
        }
        assert!(hits > 0, "message not found in {}", db.display());
        std::fs::write(&db, bytes).unwrap();
        db.display().to_string()
    }

    #[test]
    fn retention_days_parse() {
        assert_eq!(parse_retention("off").unwrap(), None);
        assert_eq!(
            parse_retention("2").unwrap(),
            Some(Duration::from_secs(172_800))
        );
        assert!(parse_retention("x").is_err());
    }
}
