//! `everlock oci gc <instance> [--untagged] [--dry-run]`: registry garbage collection offline.
//!
//! It opens the instance's store directly, so it fails with "store in use" while a server owns
//! it; on a running server, use the console's `/oci gc <instance>` instead, which runs the same
//! collection online (it is safe next to concurrent pushes).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use everlock_backend_oci_http::{DEFAULT_STORE, GcOptions, KIND, gc};
use everlock_storage::StoreManager;

/// Arguments of `everlock oci`.
#[derive(clap::Args, Debug)]
pub(crate) struct OciArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: OciCommand,
}

/// The `everlock oci` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum OciCommand {
    /// Remove blobs no manifest references (and with --untagged, manifests no tag reaches)
    /// that are older than the grace period. Every removal is a commit by `system`.
    Gc {
        /// The registry instance (`default` is the zero-config registry).
        instance: String,
        /// Also remove manifests that no tag, index or referrer relation reaches.
        #[arg(long)]
        untagged: bool,
        /// Report what would be removed without removing anything.
        #[arg(long)]
        dry_run: bool,
        /// Never remove anything written less than this many seconds ago.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
        /// The instance's store, when it is not the default one (`everlock-oci-local` for
        /// `default`, `oci-http-<instance>` otherwise).
        #[arg(long)]
        store: Option<String>,
    },
}

/// The store an instance uses unless configured otherwise.
fn default_store(instance: &str) -> String {
    if instance == "default" {
        DEFAULT_STORE.to_owned()
    } else {
        format!("{KIND}-{instance}")
    }
}

/// Runs `everlock oci …` against `data_dir`.
pub(crate) fn run(args: OciArgs, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let code = run_with(args, data_dir, &mut out)?;
    out.flush()?;
    Ok(code)
}

fn run_with(args: OciArgs, data_dir: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let OciCommand::Gc {
        instance,
        untagged,
        dry_run,
        grace_secs,
        store,
    } = args.command;
    let name = store.unwrap_or_else(|| default_store(&instance));
    let manager = StoreManager::new(data_dir);
    let store = manager
        .open_blocking(&name, false)
        .with_context(|| format!("cannot open store {name:?} in {}", data_dir.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let opts = GcOptions {
        untagged,
        dry_run,
        grace: Duration::from_secs(grace_secs),
    };
    let report = rt
        .block_on(gc(&store, &opts))
        .with_context(|| format!("gc of registry {instance:?} (store {name:?})"))?;
    if dry_run {
        write!(out, "dry run: would remove ")?;
    }
    writeln!(out, "{report}")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_of_an_empty_registry_and_a_missing_store() {
        let dir = tempfile::tempdir().unwrap();
        let args = |store: Option<&str>| OciArgs {
            command: OciCommand::Gc {
                instance: "default".into(),
                untagged: true,
                dry_run: true,
                grace_secs: 0,
                store: store.map(str::to_owned),
            },
        };
        let mut out = Vec::new();
        assert!(run_with(args(Some("x")), &dir.path().join("nope"), &mut out).is_err());
        StoreManager::new(dir.path())
            .open_blocking("everlock-oci-local", true)
            .unwrap();
        run_with(args(None), dir.path(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("dry run"), "{text}");
        assert!(text.contains("0 manifests, 0 blobs"), "{text}");
        assert_eq!(default_store("ci"), "oci-http-ci");
    }
}
