//! `everlock serve`: builds the host from the configuration and runs it until a signal.

use anyhow::Context as _;
use everlock_host::auth::{AdminPassword, Auth};
use everlock_host::config::{Config, ConfigOverrides, Vhost};
use everlock_host::server::{Server, cancel_on_signal};
use everlock_host::storage::StoreManager;
use everlock_host::{Host, Registry};
use tokio_util::sync::CancellationToken;

/// Runs the server; returns after a graceful shutdown.
pub(crate) fn serve(
    mut config: Config,
    source: Option<&str>,
    overrides: &ConfigOverrides,
    registry: Registry,
    admin: Bootstrap,
) -> anyhow::Result<()> {
    init_logging();
    overrides.apply(&mut config);
    config.validate(&registry, source)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
        let stores = StoreManager::new(&config.data_dir);
        let (auth, system) = Auth::open_with_authority(&stores, config.auth.options()).await?;
        let password = match admin.password {
            Some(p) => AdminPassword::Given(p),
            None => AdminPassword::Generate,
        };
        if let Some(generated) = auth.bootstrap(&admin.user, password).await? {
            // Printed once, on stdout and never through the logger, so it does not end up
            // in log files.
            println!(
                "Created the administrator '{}' with password: {generated}\n\
                 This is the only time it is shown; change it with `/users passwd {} <new password>` in the console.",
                admin.user, admin.user
            );
        }
        let host = Host::new(registry, stores, auth, system, shutdown.clone());
        host.start(config.clone()).await?;
        let server = Server::bind(&config, host.clone()).await?;
        cancel_on_signal(shutdown.clone())?;
        log_urls(&host, server.http_addr(), server.https_addr());
        if let Some(a) = server.ssh_addr() {
            tracing::info!("admin console: ssh -p {} admin@{}", a.port(), a.ip());
        }
        server.run(shutdown).await;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// Who the first administrator is, when none exists yet.
pub(crate) struct Bootstrap {
    /// Login.
    pub(crate) user: String,
    /// Password from the environment or the command line; generated when `None`.
    pub(crate) password: Option<String>,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (only possible in tests) is harmless, so its error is ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
