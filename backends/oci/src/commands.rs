//! Console commands of a registry instance: `/oci gc <instance> [--untagged] [--dry-run]`.

use std::sync::Arc;

use everlock_host::auth::{AccessPath, Action, Principal};
use everlock_host::{CommandError, CommandFuture, CommandHelp, InstanceCommands};

use crate::gc::{GcOptions, gc};
use crate::registry::Registry;

const HELP: &[CommandHelp] = &[CommandHelp {
    name: "gc",
    args: "[--untagged] [--dry-run]",
    summary: "remove unreferenced blobs (and untagged manifests) older than the grace period",
}];

pub(crate) struct Commands {
    pub(crate) registry: Arc<Registry>,
}

/// Parses the words after `gc`.
pub(crate) fn parse_gc_args(args: &[String]) -> Result<(bool, bool), CommandError> {
    let (mut untagged, mut dry_run) = (false, false);
    for a in args {
        match a.as_str() {
            "--untagged" => untagged = true,
            "--dry-run" => dry_run = true,
            other => {
                return Err(CommandError::Usage(format!(
                    "unknown argument {other:?}; usage: gc <instance> [--untagged] [--dry-run]"
                )));
            }
        }
    }
    Ok((untagged, dry_run))
}

impl InstanceCommands for Commands {
    fn help(&self) -> &'static [CommandHelp] {
        HELP
    }

    fn run(&self, actor: Principal, command: &str, args: Vec<String>) -> CommandFuture {
        let registry = self.registry.clone();
        let command = command.to_owned();
        Box::pin(async move {
            if command != "gc" {
                return Err(CommandError::Usage(format!(
                    "unknown command {command:?}; available: gc"
                )));
            }
            let (untagged, dry_run) = parse_gc_args(&args)?;
            // Collecting deletes content, so it needs the delete right on the whole registry.
            let path = AccessPath::from_segments(["http", "oci", registry.instance.as_str()])
                .map_err(|e| CommandError::Failed(e.to_string()))?;
            if !registry.auth.authorize(&actor, &path, Action::Delete) {
                return Err(CommandError::Denied(format!(
                    "{actor} needs owner on {path} to collect garbage"
                )));
            }
            let store = registry
                .store
                .get()
                .await
                .map_err(|e| CommandError::Failed(e.to_string()))?;
            let opts = GcOptions {
                untagged,
                dry_run,
                grace: registry.settings.gc_grace(),
            };
            let report = gc(store, &opts)
                .await
                .map_err(|e| CommandError::Failed(e.to_string()))?;
            let prefix = if dry_run {
                "dry run: would remove "
            } else {
                ""
            };
            Ok(format!("{prefix}{report}\n"))
        })
    }
}
