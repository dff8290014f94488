//! `everlock serve`: builds the host from the configuration and runs it until a signal.

use anyhow::Context as _;
use everlock_host::auth::{AdminPassword, Auth};
use everlock_host::config::{Config, ConfigOverrides, Vhost};
use everlock_host::server::{Server, cancel_on_signal};
use everlock_host::storage::StoreManager;
use everlock_host::{Host, Registry};
use tokio_util::sync::CancellationToken;

use crate::ready_file::{Listeners, ReadyFile};

/// Runs the server; returns after a graceful shutdown.
pub(crate) fn serve(
    mut config: Config,
    source: Option<&str>,
    overrides: &ConfigOverrides,
    registry: Registry,
    admin: Bootstrap,
) -> anyhow::Result<()> {
    overrides.apply(&mut config);
    // After the file and the flags: `[log] format` decides how every line looks.
    crate::logging::init(config.log.format);
    // First of all: whatever happens next, nobody may read an earlier run's addresses.
    let mut ready = admin.ready_file.clone().map(ReadyFile::claim).transpose()?;
    config.validate(&registry, source)?;
    // Before the runtime: checking the bucket and the database blocks on one request each.
    let stores = store_manager(&config.data_dir, &config.storage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        // Before anything binds: a signal during startup must stop the server, not kill it.
        cancel_on_signal(shutdown.clone())?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
        let (auth, system) = Auth::open_with_authority(&stores, config.auth.options()).await?;
        // Listeners before the administrator: a busy port must fail the start before a
        // password is generated and printed, or the operator is shown one that no server
        // ever accepted and the next start, finding an administrator, shows none.
        let mut host = Host::new(registry, stores, auth.clone(), system, shutdown.clone());
        // Before the host is cloned into the server: the grant is part of the host's identity.
        grant_administration(&mut host)?;
        host.metrics().set_build(
            env!("CARGO_PKG_VERSION"),
            option_env!("EVERLOCK_GIT_COMMIT").unwrap_or("unknown"),
        );
        let server = Server::bind(&config, host.clone()).await?;
        let password = match admin.password {
            Some(p) => AdminPassword::Given(p),
            None => AdminPassword::Generate,
        };
        if let Some(generated) = auth.bootstrap(&admin.user, password).await? {
            // Printed once, on stdout and never through the logger, so it does not end up
            // in log files.
            crate::logging::notice(
                &format!(
                    "Created the administrator '{}' with password: {generated}\n\
                     This is the only time it is shown; change it with `/users passwd {} <new password>` in the console.",
                    admin.user, admin.user
                ),
                &[("login", &admin.user), ("password", &generated)],
            );
        }
        host.start(config.clone()).await?;
        log_urls(&host, server.http_addr(), server.https_addr());
        if let Some(a) = server.metrics_addr() {
            tracing::info!("metrics on http://{a}/metrics (also /healthz and /readyz)");
        }
        if let Some(a) = server.ssh_addr() {
            tracing::info!("admin console: ssh -p {} admin@{}", a.port(), a.ip());
        }
        if let Some(ready) = ready.as_mut() {
            ready.publish(&Listeners {
                http: server.http_addr(),
                https: server.https_addr(),
                ssh: server.ssh_addr(),
                metrics: server.metrics_addr(),
            })?;
        }
        server.run(shutdown).await;
        // Before "stopped": whoever waits for that line finds the ready file gone.
        drop(ready);
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// The composition root's one grant of host administration: the SSH console, when it is
/// compiled in. No factory can ask for administration; the host hands an `Arc<dyn HostAdmin>`
/// only to the instances of the kind named here, once it has started (`tests/authority.rs`
/// checks that nothing else grants it).
#[cfg(feature = "backend-admin-ssh")]
fn grant_administration(host: &mut Host) -> anyhow::Result<()> {
    Ok(host.grant_administration(everlock_backend_admin_ssh::KIND)?)
}

/// Without the console compiled in, nothing administers the running host.
#[cfg(not(feature = "backend-admin-ssh"))]
fn grant_administration(_host: &mut Host) -> anyhow::Result<()> {
    Ok(())
}

/// What the command line adds to the configuration: who the first administrator is, when none
/// exists yet, and where to report the bound addresses.
pub(crate) struct Bootstrap {
    /// Login.
    pub(crate) user: String,
    /// Password from the environment or the command line; generated when `None`.
    pub(crate) password: Option<String>,
    /// The ready file (`--ready-file`), written once startup has finished.
    pub(crate) ready_file: Option<std::path::PathBuf>,
}

/// Stops the offline commands other than `everlock store` (users, oci gc, backup, restore) on
/// S3 objects or shared PostgreSQL metadata: they work on the store files of the data
/// directory only so far, and would read or write the wrong copy.
pub(crate) fn refuse_remote_objects(
    storage: &everlock_host::config::StorageConfig,
) -> anyhow::Result<()> {
    use everlock_host::config::{MetaKind, ObjectsKind};
    let what = match (storage.objects, storage.meta) {
        (ObjectsKind::File, MetaKind::Sqlite) => return Ok(()),
        (ObjectsKind::S3, MetaKind::Sqlite) => "objects = \"s3\"",
        (ObjectsKind::File, MetaKind::Postgres) => "meta = \"postgres\"",
        (ObjectsKind::S3, MetaKind::Postgres) => "objects = \"s3\" and meta = \"postgres\"",
    };
    anyhow::bail!(
        "this command does not yet support [storage] {what} (only `everlock store` and `everlock serve` do); refusing to run rather than work on local files"
    )
}

/// The stores of `data_dir` on the configured storage. It checks the bucket and the database
/// once, so a wrong endpoint, bucket, URL or credentials stop the start with one line.
/// Blocking.
pub(crate) fn store_manager(
    data_dir: &std::path::Path,
    storage: &everlock_host::config::StorageConfig,
) -> anyhow::Result<StoreManager> {
    use everlock_host::config::{MetaStorage, ObjectStorage};
    use everlock_host::storage::{MetaConfig, ObjectsConfig, PostgresConfig, S3Config};
    let selection = storage.selection()?;
    let meta = match &selection.meta {
        MetaStorage::Sqlite => MetaConfig::Sqlite,
        MetaStorage::Postgres(pg) => MetaConfig::Postgres(PostgresConfig {
            url: pg.connection_url(),
            max_connections: pg.max_connections,
        }),
    };
    let objects = match selection.objects {
        ObjectStorage::File => ObjectsConfig::File,
        ObjectStorage::S3(s3) => ObjectsConfig::S3(S3Config {
            endpoint: s3.endpoint.as_str().to_owned(),
            bucket: s3.bucket.as_str().to_owned(),
            prefix: s3.prefix.as_str().to_owned(),
            region: s3.region,
            access_key_id: s3.access_key_id,
            secret_access_key: s3.secret_access_key.expose().to_owned(),
            allow_http: s3.allow_http,
        }),
    };
    // The storage error already names the bucket, endpoint or database; one line, no chain.
    StoreManager::new_with_meta(data_dir, objects, meta).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Logs where each instance can be reached, so a newcomer can click the first line.
fn log_urls(host: &Host, http: Option<std::net::SocketAddr>, https: Option<std::net::SocketAddr>) {
    if let Some(a) = http {
        tracing::info!("listening for HTTP on {a}");
    }
    if let Some(a) = https {
        tracing::info!("listening for HTTPS on {a}");
    }
    for instance in host.table().snapshot().instances() {
        for vhost in &instance.vhosts {
            let urls: Vec<String> = [("http", http), ("https", https)]
                .into_iter()
                .filter_map(|(scheme, addr)| {
                    addr.map(|a| url(scheme, vhost, a, instance.prefix.as_str()))
                })
                .collect();
            tracing::info!("{} serves {}", instance.id(), urls.join(" and "));
        }
    }
}

fn url(scheme: &str, vhost: &Vhost, addr: std::net::SocketAddr, prefix: &str) -> String {
    let host = if vhost.is_any() {
        addr.ip().to_string()
    } else {
        vhost.to_string()
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    format!("{scheme}://{host}:{}{prefix}", addr.port())
}
