//! Command-line definitions. Static options are derived; the per-backend bootstrap flags
//! (`--backend-<kind>`, `--backend-<kind>-vhost`, `--backend-<kind>-store`) are generated
//! from the registry, so a new backend gets its flags without touching this file.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Arg, ArgAction, ArgMatches, Args, Parser, Subcommand};
use everlock_host::Registry;
use everlock_host::config::{
    BcryptCost, ConfigOverrides, KindOverrides, ListenAddr, LogFormat, StoreName, Vhost,
};

/// Everlock: an OCI registry, websites and an SSH admin console in one binary.
#[derive(Debug, Parser)]
#[command(name = "everlock", version = crate::VERSION, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Optional TOML configuration file (strict: unknown keys are errors).
    #[arg(long, global = true, env = "EVERLOCK_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Directory holding every store [default: ./data].
    #[arg(long, global = true, env = "EVERLOCK_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing the serve options buys nothing"
)]
pub(crate) enum Command {
    /// Run the server (zero-config: HTTP on 127.0.0.1:8080, HTTPS on 127.0.0.1:8443).
    Serve(ServeArgs),
    /// List the backend kinds compiled into this binary.
    Backends,
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Inspect, verify and export stores (also while the server runs); garbage-collect them
    /// (while it is stopped).
    Store(crate::store_cmd::StoreArgs),
    /// Recover a lost password while the server is stopped.
    Users(crate::users_cmd::UsersArgs),
    /// Registry maintenance (while the server is stopped; the console runs it live).
    #[cfg(feature = "backend-oci-http")]
    Oci(crate::oci_cmd::OciArgs),
    /// Publish sites.
    Site(crate::site_cmd::SiteArgs),
    /// Back up every store and `_host/` into an empty directory (while the server runs).
    Backup(crate::backup_cmd::BackupArgs),
    /// Restore a backup into an empty data directory (`--data-dir`), verifying every store.
    Restore(crate::backup_cmd::RestoreArgs),
}

/// `everlock config ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a configuration file against the compiled-in backends; exit 1 on error.
    Check {
        /// The TOML file to check.
        file: PathBuf,
    },
}

/// Options of `everlock serve` (each also settable by its `EVERLOCK_*` variable).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Plain-HTTP listen address, or `off`.
    #[arg(
        long = "frontend-http-listen-http",
        env = "EVERLOCK_FRONTEND_HTTP_LISTEN_HTTP",
        value_name = "ADDR"
    )]
    listen_http: Option<ListenAddr>,
    /// HTTPS listen address, or `off`.
    #[arg(
        long = "frontend-http-listen-https",
        env = "EVERLOCK_FRONTEND_HTTP_LISTEN_HTTPS",
        value_name = "ADDR"
    )]
    listen_https: Option<ListenAddr>,
    /// Seconds allowed for a TLS handshake and for request headers.
    #[arg(
        long = "frontend-http-header-read-timeout-secs",
        env = "EVERLOCK_FRONTEND_HTTP_HEADER_READ_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    header_read_timeout_secs: Option<u64>,
    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT.
    #[arg(
        long = "frontend-http-shutdown-timeout-secs",
        env = "EVERLOCK_FRONTEND_HTTP_SHUTDOWN_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    shutdown_timeout_secs: Option<u64>,
    /// Maximum simultaneous connections per listener.
    #[arg(
        long = "frontend-http-max-connections",
        env = "EVERLOCK_FRONTEND_HTTP_MAX_CONNECTIONS",
        value_name = "N"
    )]
    max_connections: Option<usize>,
    /// Seconds a connection may stay open with no request in progress.
    #[arg(
        long = "frontend-http-idle-timeout-secs",
        env = "EVERLOCK_FRONTEND_HTTP_IDLE_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    idle_timeout_secs: Option<u64>,
    /// SSH (admin console) listen address, or `off`.
    #[arg(
        long = "frontend-ssh-listen",
        env = "EVERLOCK_FRONTEND_SSH_LISTEN",
        value_name = "ADDR"
    )]
    ssh_listen: Option<ListenAddr>,
    /// Seconds without traffic after which an SSH connection is dropped (0 = never).
    #[arg(
        long = "frontend-ssh-idle-timeout-secs",
        env = "EVERLOCK_FRONTEND_SSH_IDLE_TIMEOUT_SECS",
        value_name = "SECS"
    )]
    ssh_idle_timeout_secs: Option<u64>,
    /// Seconds an SSH connection has to log in before it is closed.
    #[arg(
        long = "frontend-ssh-login-grace-secs",
        env = "EVERLOCK_FRONTEND_SSH_LOGIN_GRACE_SECS",
        value_name = "SECS"
    )]
    ssh_login_grace_secs: Option<std::num::NonZeroU64>,
    /// SSH connections not yet logged in per client address; more are closed at once.
    #[arg(
        long = "frontend-ssh-max-unauthenticated-per-address",
        env = "EVERLOCK_FRONTEND_SSH_MAX_UNAUTHENTICATED_PER_ADDRESS",
        value_name = "N"
    )]
    ssh_max_unauthenticated_per_address: Option<std::num::NonZeroUsize>,
    /// bcrypt cost for new password hashes (4-31; 10 or more in production).
    #[arg(
        long = "auth-bcrypt-cost",
        env = "EVERLOCK_AUTH_BCRYPT_COST",
        value_name = "COST"
    )]
    bcrypt_cost: Option<BcryptCost>,
    /// Seconds a verified (login, password) pair skips bcrypt.
    #[arg(
        long = "auth-credential-cache-secs",
        env = "EVERLOCK_AUTH_CREDENTIAL_CACHE_SECS",
        value_name = "SECS"
    )]
    credential_cache_secs: Option<u64>,
    /// Failed logins per (login, client address) before lockouts start.
    #[arg(
        long = "auth-throttle-free-failures",
        env = "EVERLOCK_AUTH_THROTTLE_FREE_FAILURES",
        value_name = "N"
    )]
    throttle_free_failures: Option<u32>,
    /// First lockout in seconds (doubles with each further failure).
    #[arg(
        long = "auth-throttle-lockout-secs",
        env = "EVERLOCK_AUTH_THROTTLE_LOCKOUT_SECS",
        value_name = "SECS"
    )]
    throttle_lockout_secs: Option<u64>,
    /// Failed password checks per client address, across logins, per window (0 = off).
    #[arg(
        long = "auth-throttle-address-failures",
        env = "EVERLOCK_AUTH_THROTTLE_ADDRESS_FAILURES",
        value_name = "N"
    )]
    throttle_address_failures: Option<u32>,
    /// The window of the per-address failure budget, in seconds.
    #[arg(
        long = "auth-throttle-address-window-secs",
        env = "EVERLOCK_AUTH_THROTTLE_ADDRESS_WINDOW_SECS",
        value_name = "SECS"
    )]
    throttle_address_window_secs: Option<u64>,
    /// Seconds between the stores' maintenance runs (retention + object GC); 0 = off.
    #[arg(
        long = "storage-maintenance-interval-secs",
        env = "EVERLOCK_STORAGE_MAINTENANCE_INTERVAL_SECS",
        value_name = "SECS"
    )]
    storage_maintenance_interval_secs: Option<u64>,
    /// The rest of `[storage]`.
    #[command(flatten)]
    storage: crate::cli_storage::StorageArgs,
    /// `[acme]` and the HTTPS redirect.
    #[command(flatten)]
    acme: crate::cli_acme::AcmeArgs,
    /// Metrics listener (`/metrics`, `/healthz`, `/readyz`) address, or `off`.
    #[arg(
        long = "metrics-listen",
        env = "EVERLOCK_METRICS_LISTEN",
        value_name = "ADDR"
    )]
    metrics_listen: Option<ListenAddr>,
    /// Log format: `text` or `json` (one JSON object per line).
    #[arg(
        long = "log-format",
        env = "EVERLOCK_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    log_format: Option<LogFormat>,
    /// Login of the administrator created on first start when none exists.
    #[arg(
        long = "admin-user",
        env = "EVERLOCK_ADMIN_USER",
        default_value = "admin",
        value_name = "LOGIN"
    )]
    pub(crate) admin_user: String,
    /// Password of that administrator. Prefer the environment variable: command lines are
    /// visible to other users. Without either, a password is generated and printed once.
    #[arg(
        long = "admin-password",
        env = "EVERLOCK_ADMIN_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub(crate) admin_password: Option<String>,
    /// Once startup has finished, write the bound listener addresses to FILE as JSON
    /// (`{"pid":..,"http":"127.0.0.1:39017","https":..,"ssh":..,"metrics":null}`; `null` when
    /// off), so port 0 can be used; removed again on shutdown.
    #[arg(long = "ready-file", env = "EVERLOCK_READY_FILE", value_name = "FILE")]
    pub(crate) ready_file: Option<PathBuf>,
}

/// Parses the process arguments, with bootstrap flags for every registered kind.
pub(crate) fn parse(registry: &Registry) -> (Cli, ArgMatches) {
    use clap::{CommandFactory, FromArgMatches};
    let command =
        Cli::command().mut_subcommand("serve", |serve| registry.kinds().fold(serve, add_kind_args));
    let matches = crate::site_cmd::hide_server_options(command).get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => (cli, matches),
        Err(e) => e.exit(),
    }
}

fn add_kind_args(cmd: clap::Command, kind: &'static str) -> clap::Command {
    let env = |suffix: &str| {
        format!(
            "EVERLOCK_BACKEND_{}{suffix}",
            kind.to_ascii_uppercase().replace('-', "_")
        )
    };
    cmd.arg(
        Arg::new(format!("backend-{kind}"))
            .long(format!("backend-{kind}"))
            .env(env(""))
            .num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(BoolishValueParser::new())
            .value_name("BOOL")
            .help(format!(
                "Enable (or, with =false, disable) the {kind} backend"
            ))
            .help_heading("Backend bootstrap"),
    )
    .arg(
        Arg::new(format!("backend-{kind}-vhost"))
            .long(format!("backend-{kind}-vhost"))
            .env(env("_VHOST"))
            .action(ArgAction::Append)
            .value_delimiter(',')
            .value_parser(clap::value_parser!(Vhost))
            .value_name("HOST")
            .help(format!(
                "Vhosts of the {kind} instance `default` (repeatable)"
            ))
            .help_heading("Backend bootstrap"),
    )
    .arg(
        Arg::new(format!("backend-{kind}-store"))
            .long(format!("backend-{kind}-store"))
            .env(env("_STORE"))
            .value_parser(clap::value_parser!(StoreName))
            .value_name("STORE")
            .help(format!("Store of the {kind} instance `default`"))
            .help_heading("Backend bootstrap"),
    )
}

/// Collects the flag/env layer of the configuration from a parsed `serve` command line.
pub(crate) fn overrides(
    data_dir: Option<PathBuf>,
    serve: Option<(&ServeArgs, &ArgMatches)>,
    registry: &Registry,
) -> ConfigOverrides {
    let mut o = ConfigOverrides {
        data_dir,
        storage: crate::cli_storage::secrets_from_env(),
        ..Default::default()
    };
    let Some((args, matches)) = serve else {
        return o;
    };
    o.listen_http = args.listen_http;
    o.listen_https = args.listen_https;
    o.header_read_timeout_secs = args.header_read_timeout_secs;
    o.shutdown_timeout_secs = args.shutdown_timeout_secs;
    o.max_connections = args.max_connections;
    o.idle_timeout_secs = args.idle_timeout_secs;
    o.ssh_listen = args.ssh_listen;
    o.ssh_idle_timeout_secs = args.ssh_idle_timeout_secs;
    o.bcrypt_cost = args.bcrypt_cost;
    o.credential_cache_secs = args.credential_cache_secs;
    o.throttle_free_failures = args.throttle_free_failures;
    o.throttle_lockout_secs = args.throttle_lockout_secs;
    o.ssh_login_grace_secs = args.ssh_login_grace_secs;
    o.ssh_max_unauthenticated_per_address = args.ssh_max_unauthenticated_per_address;
    o.throttle_address_failures = args.throttle_address_failures;
    o.throttle_address_window_secs = args.throttle_address_window_secs;
    o.storage_maintenance_interval_secs = args.storage_maintenance_interval_secs;
    args.storage.fill(matches, &mut o.storage);
    o.acme = args.acme.overrides();
    o.https_redirect = args.acme.https_redirect();
    o.metrics_listen = args.metrics_listen;
    o.log_format = args.log_format;
    for kind in registry.kinds() {
        let k = KindOverrides {
            enabled: matches.get_one::<bool>(&format!("backend-{kind}")).copied(),
            vhosts: matches
                .get_many::<Vhost>(&format!("backend-{kind}-vhost"))
                .map(|v| v.cloned().collect()),
            store: matches
                .get_one::<StoreName>(&format!("backend-{kind}-store"))
                .cloned(),
        };
        if k.enabled.is_some() || k.vhosts.is_some() || k.store.is_some() {
            o.kinds.insert(kind.to_owned(), k);
        }
    }
    o
}
