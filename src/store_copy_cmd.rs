//! `everlock store copy --from-data-dir <dir> [store...]`: moves single-node stores (local
//! files and SQLite) into the configured storage, with their complete history: every commit
//! keeps its id, so `everlock store log` prints the same lines before and after.
//!
//! A destination store that already has commits is refused before anything is copied: the
//! copy never merges two histories or overwrites one.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use everlock_storage::{StorageError, StoreManager};

/// Copies `names` (every store of `from` when empty) from the data directory `from` into
/// `destination`, printing one line per store.
pub(crate) fn run(
    rt: &tokio::runtime::Runtime,
    from: &Path,
    names: Vec<String>,
    destination: &StoreManager,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if !from.is_dir() {
        anyhow::bail!("--from-data-dir {}: no such directory", from.display());
    }
    if destination.data_dir() == from {
        anyhow::bail!(
            "--from-data-dir {} is the configured data directory; copy from another one",
            from.display()
        );
    }
    let source = StoreManager::new(from);
    let names = if names.is_empty() {
        source
            .list()
            .with_context(|| format!("cannot list {}", from.display()))?
    } else {
        names
    };
    if names.is_empty() {
        writeln!(err, "no stores in {}", from.display())?;
        return Ok(ExitCode::FAILURE);
    }
    // Every destination is checked before the first copy, so a refusal leaves nothing half
    // done.
    let mut occupied = Vec::new();
    for name in &names {
        if has_commits(rt, destination, name)? {
            occupied.push(name.as_str());
        }
    }
    if !occupied.is_empty() {
        writeln!(
            err,
            "error: the destination already has commits in {}; refusing to overwrite (copy into empty stores only)",
            occupied.join(", ")
        )?;
        return Ok(ExitCode::FAILURE);
    }
    for name in &names {
        // Read-only: no lock is taken, but the copy is only complete for a source that no
        // server writes to meanwhile; stop the old node first.
        let store = source
            .open_read_only(name)
            .with_context(|| format!("cannot open store {name:?} in {}", from.display()))?;
        let report = rt
            .block_on(destination.copy_store(&store, name))
            .with_context(|| format!("cannot copy store {name:?}"))?;
        writeln!(
            out,
            "copied {name}: {} commits, {} objects, {} bytes",
            report.commits, report.objects, report.bytes
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the destination store `name` exists and has at least one commit.
fn has_commits(
    rt: &tokio::runtime::Runtime,
    destination: &StoreManager,
    name: &str,
) -> anyhow::Result<bool> {
    match destination.open_read_only(name) {
        Ok(store) => Ok(rt.block_on(store.head())?.is_some()),
        Err(StorageError::NoSuchStore(_)) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot open destination {name:?}"))),
    }
}
