//! Console commands of a registry instance: `/oci gc <instance> [--untagged] [--dry-run]
//! [--grace-secs N]`, `retention`, and the content commands of `commands/content.rs`.

mod content;
mod observe;

use std::sync::Arc;
use std::time::Duration;

use everlock_host::auth::{AccessPath, Action, Principal};
use everlock_host::storage::{GcOptions as StoreGcOptions, GcReport as StoreGcReport, Store};
use everlock_host::{CommandError, CommandFuture, CommandHelp, InstanceCommands};

use crate::gc::{GcError, GcOptions, gc};
use crate::registry::Registry;
use crate::retention;

/// The registry's GC and retention fail only when the store does: the console gets the
/// store's error whole, so it (and the log) see its kind (unreachable, full, corrupt).
impl From<GcError> for CommandError {
    fn from(e: GcError) -> CommandError {
        match e {
            GcError::Storage(e) => CommandError::Storage(e),
        }
    }
}

const USAGE: &str = "usage: gc <instance> [--untagged] [--dry-run] [--grace-secs N]";

pub(crate) const HELP: &[CommandHelp] = &[
    CommandHelp {
        name: "gc",
        args: "[--untagged] [--dry-run] [--grace-secs N]",
        summary: "apply the retention rules, remove unreferenced blobs (and untagged \
                  manifests) older than the grace period (default: the instance's \
                  gc-grace-secs; 0 only when no push is in flight) and free their bytes on disk",
    },
    CommandHelp {
        name: "retention",
        args: "[--dry-run] [--json]",
        summary: "apply the retention rules now, or list what they would remove and why",
    },
    CommandHelp {
        name: "repos",
        args: "[--json]",
        summary: "list the repositories you may read, with their tag and manifest counts",
    },
    CommandHelp {
        name: "tags",
        args: "<repository> [--json]",
        summary: "list a repository's tags with their digest and push time",
    },
    CommandHelp {
        name: "usage",
        args: "[--json]",
        summary: "bytes per repository and per quota (blobs shared within a quota counted once)",
    },
    CommandHelp {
        name: "webhooks",
        args: "[--json]",
        summary: "the webhooks, their queued deliveries and recent deliveries and failures",
    },
    CommandHelp {
        name: "rm",
        args: "<repository>:<tag>|<repository>@<digest>",
        summary: "remove a tag, or a manifest with every tag pointing at it (owner)",
    },
];

/// The command words, for the "unknown command" message.
const NAMES: &str = "gc, retention, repos, tags, usage, webhooks, rm";

pub(crate) struct Commands {
    pub(crate) registry: Arc<Registry>,
}

/// The parsed words after `gc <instance>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GcArgs {
    pub(crate) untagged: bool,
    pub(crate) dry_run: bool,
    /// `--grace-secs N`; the instance's `gc-grace-secs` when absent.
    pub(crate) grace: Option<Duration>,
}

/// Parses the words after `gc`.
pub(crate) fn parse_gc_args(args: &[String]) -> Result<GcArgs, CommandError> {
    let mut out = GcArgs::default();
    let mut words = args.iter();
    while let Some(a) = words.next() {
        let grace = match a.as_str() {
            "--untagged" => {
                out.untagged = true;
                continue;
            }
            "--dry-run" => {
                out.dry_run = true;
                continue;
            }
            "--grace-secs" => words.next().map(String::as_str),
            other => match other.strip_prefix("--grace-secs=") {
                Some(v) => Some(v),
                None => {
                    return Err(CommandError::Usage(format!(
                        "unknown argument {other:?}; {USAGE}"
                    )));
                }
            },
        };
        let secs = grace.and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| {
            CommandError::Usage(format!(
                "--grace-secs needs a whole number of seconds; {USAGE}"
            ))
        })?;
        out.grace = Some(Duration::from_secs(secs));
    }
    Ok(out)
}

/// The reply's last line: what the store's retention and object GC did on disk.
fn store_line(r: &StoreGcReport, dry_run: bool) -> String {
    let verb = if dry_run { "would free" } else { "freed" };
    format!(
        "store: {verb} {} bytes on disk ({} objects; retention purged {} versions)",
        r.file_bytes_freed, r.objects_removed, r.purged_versions
    )
}

/// Collects the registry, then applies the store's retention and object GC with the same
/// grace so that the bytes of what was just removed leave the disk now rather than at the
/// next maintenance run.
async fn collect(
    registry: &Registry,
    store: &Store,
    args: GcArgs,
    grace: Duration,
) -> Result<String, CommandError> {
    let rules = &registry.settings.retention;
    let plan = retention::plan(store, rules, grace).await?;
    let retained = if args.dry_run {
        if rules.is_empty() {
            String::new()
        } else {
            retention::render(&plan, true)
        }
    } else {
        let outcome = retention::apply(store, &plan).await?;
        if rules.is_empty() {
            String::new()
        } else {
            format!("{outcome}\n")
        }
    };
    let opts = GcOptions {
        untagged: args.untagged,
        dry_run: args.dry_run,
        grace,
    };
    let report = gc(store, &opts).await?;
    let freed = store
        .reclaim(StoreGcOptions {
            grace,
            dry_run: args.dry_run,
        })
        .await
        .map_err(|e| CommandError::Failed(format!("registry collected, but the store: {e}")))?;
    let prefix = if args.dry_run {
        "dry run: would remove "
    } else {
        ""
    };
    Ok(format!(
        "{retained}{prefix}{report}\n{}\n",
        store_line(&freed, args.dry_run)
    ))
}

/// `retention <instance> [--dry-run] [--json]`: the plan (a dry run needs read access to the
/// whole registry), or its application (owner, like `gc`).
async fn retention_command(
    registry: &Registry,
    actor: &Principal,
    mut args: Vec<String>,
) -> Result<String, CommandError> {
    let usage = "retention <instance> [--dry-run] [--json]";
    let before = args.len();
    args.retain(|a| a != "--dry-run");
    let dry_run = args.len() != before;
    let json = content::json_flag(&mut args, usage)?;
    if !args.is_empty() {
        return Err(CommandError::Usage(format!("usage: {usage}")));
    }
    let action = if dry_run {
        Action::Read
    } else {
        Action::Delete
    };
    require_instance(registry, actor, action, "apply retention rules")?;
    let store = registry.open_store().await?;
    let plan = retention::plan(
        store,
        &registry.settings.retention,
        registry.settings.gc_grace(),
    )
    .await?;
    if json {
        return serde_json::to_string_pretty(&plan.removals)
            .map(|s| s + "\n")
            .map_err(|e| CommandError::Failed(e.to_string()));
    }
    let mut out = retention::render(&plan, dry_run);
    if registry.settings.retention.is_empty() {
        out = "no retention rules: nothing is removed\n".to_owned();
    }
    if !dry_run {
        let outcome = retention::apply(store, &plan).await?;
        out.push_str(&format!("{outcome}\n"));
    }
    Ok(out)
}

/// Checks `action` on the whole registry (`http/oci/<instance>`).
fn require_instance(
    registry: &Registry,
    actor: &Principal,
    action: Action,
    what: &str,
) -> Result<(), CommandError> {
    let path = AccessPath::from_segments(["http", "oci", registry.instance.as_str()])
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    if registry.auth.authorize(actor, &path, action) {
        return Ok(());
    }
    let role = if action == Action::Read {
        "reader"
    } else {
        "owner"
    };
    Err(CommandError::Denied(format!(
        "{actor} needs {role} on {path} to {what}"
    )))
}

impl InstanceCommands for Commands {
    fn help(&self) -> &'static [CommandHelp] {
        HELP
    }

    fn run(&self, actor: Principal, command: &str, args: Vec<String>) -> CommandFuture {
        let registry = self.registry.clone();
        let command = command.to_owned();
        Box::pin(async move {
            let store = || async { registry.open_store().await.map_err(CommandError::from) };
            match command.as_str() {
                "gc" => {}
                "retention" => return retention_command(&registry, &actor, args).await,
                "repos" => return content::repos(&registry, store().await?, &actor, args).await,
                "tags" => return content::tags(&registry, store().await?, &actor, args).await,
                "usage" | "webhooks" => {
                    let what = format!("see the {command} of the whole registry");
                    require_instance(&registry, &actor, Action::Read, &what)?;
                    let store = store().await?;
                    return if command == "usage" {
                        observe::usage(&registry, store, args).await
                    } else {
                        observe::webhooks(&registry, store, args).await
                    };
                }
                "rm" => {
                    let (line, name, tag, digest) =
                        content::rm(&registry, store().await?, &actor, &args).await?;
                    let digest = tag.is_none().then_some(&digest);
                    crate::webhooks::deleted(
                        &registry.webhooks,
                        &actor,
                        &name,
                        tag.as_ref(),
                        digest,
                    );
                    return Ok(line);
                }
                _ => {
                    return Err(CommandError::Usage(format!(
                        "unknown command {command:?}; available: {NAMES}"
                    )));
                }
            }
            let args = parse_gc_args(&args)?;
            // Collecting deletes content, so it needs the delete right on the whole registry.
            require_instance(&registry, &actor, Action::Delete, "collect garbage")?;
            let store = store().await?;
            let grace = args.grace.unwrap_or_else(|| registry.settings.gc_grace());
            collect(&registry, store, args, grace).await
        })
    }
}

/// One maintenance pass: applies the instance's rules with its GC grace period, then
/// collects the blobs the removed manifests left unreferenced.
pub(crate) async fn maintain(
    registry: Arc<Registry>,
) -> Result<String, everlock_host::CommandError> {
    let store = registry.open_store().await?;
    let rules = &registry.settings.retention;
    let plan = retention::plan(store, rules, registry.settings.gc_grace()).await?;
    if plan.removals.is_empty() {
        return Ok(String::new());
    }
    let outcome = retention::apply(store, &plan).await?;
    if outcome.manifests == 0 {
        return Ok(outcome.to_string());
    }
    // The manifests removed leave blobs nothing references: collect them now (same grace),
    // so that the store's GC, which runs next, gives their bytes back.
    let opts = GcOptions {
        untagged: false,
        dry_run: false,
        grace: registry.settings.gc_grace(),
    };
    let report = gc(store, &opts).await?;
    Ok(format!(
        "{outcome}; gc: {} blobs ({} bytes)",
        report.blobs.len(),
        report.blob_bytes
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use everlock_host::auth::AdminPassword;
    use everlock_host::axum::body::Body;
    use everlock_host::http::Request;
    use everlock_host::storage::RetentionPolicy;
    use everlock_host::test_util::TestEnv;
    use tower::ServiceExt as _;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn gc_arguments_parse() {
        assert_eq!(parse_gc_args(&[]).unwrap(), GcArgs::default());
        let all = parse_gc_args(&words("--untagged --grace-secs 0 --dry-run")).unwrap();
        assert_eq!(
            all,
            GcArgs {
                untagged: true,
                dry_run: true,
                grace: Some(Duration::ZERO)
            }
        );
        assert_eq!(
            parse_gc_args(&words("--grace-secs=90")).unwrap().grace,
            Some(Duration::from_secs(90))
        );
        for bad in ["--grace-secs", "--grace-secs -1", "--grace-secs=x", "--now"] {
            let err = parse_gc_args(&words(bad)).unwrap_err();
            assert!(matches!(err, CommandError::Usage(_)), "{bad}: {err}");
        }
    }

    /// Before: `gc` deleted the blob's paths, reported its size, and the file stayed on disk
    /// because the store kept every version's content. Now the same command frees the file.
    #[tokio::test]
    async fn gc_with_zero_grace_frees_the_blob_file_on_disk() {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("admin-pw".into()))
            .await
            .unwrap();
        let ctx = env.context(crate::KIND, "default", "localhost", "/v2");
        let backend = crate::build(ctx, &everlock_host::toml::Table::new()).unwrap();
        let router = backend.http_router().unwrap();
        let blob = vec![7u8; 256 * 1024];
        let digest = crate::names::OciDigest::sha256_of(&blob).to_string();
        let token =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "admin:admin-pw");
        let req = Request::post(format!("/v2/app/blobs/uploads/?digest={digest}"))
            .header("authorization", format!("Basic {token}"))
            .body(Body::from(blob.clone()))
            .unwrap();
        let r = router.oneshot(req).await.unwrap();
        assert_eq!(r.status(), 201);
        let store = env.stores.open("oci-http-default").await.unwrap();
        assert_eq!(
            store.retention_policy().await.unwrap(),
            RetentionPolicy::PurgeAfter(Duration::from_secs(3600)),
            "the registry's default, set when it first opened its store"
        );
        let objects = store.dir().join("objects");
        let before = du(&objects);
        assert!(before >= blob.len() as u64);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let commands = backend.commands().unwrap();
        let admin = Principal::test_user("admin");
        let dry = commands
            .run(admin.clone(), "gc", words("--grace-secs 0 --dry-run"))
            .await
            .unwrap();
        assert!(dry.contains("would remove"), "{dry}");
        assert_eq!(du(&objects), before);
        let out = commands
            .run(admin.clone(), "gc", words("--grace-secs 0"))
            .await
            .unwrap();
        assert!(
            out.contains(&format!("1 blobs ({} bytes)", blob.len())),
            "{out}"
        );
        assert!(
            out.contains(&format!("store: freed {} bytes on disk", blob.len())),
            "{out}"
        );
        assert!(du(&objects) + blob.len() as u64 <= before);
        // The history of the delete stays.
        let log = store.log(10).await.unwrap();
        assert!(
            log.iter()
                .any(|c| c.message.contains("remove unreferenced blob"))
        );
        let denied = commands
            .run(Principal::anon(), "gc", Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(denied, CommandError::Denied(_)), "{denied}");
    }

    fn du(dir: &std::path::Path) -> u64 {
        let mut total = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            total += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
        total
    }
}
