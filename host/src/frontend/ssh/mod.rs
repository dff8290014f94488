//! The SSH frontend (russh): accepts connections, authenticates users against `Auth`
//! (password or a registered public key), and hands each session channel to the live SSH
//! backend instance (the admin console) as an [`SshSession`].
//!
//! # Layout
//! - `session`: the transport-free session abstraction SSH backends implement.
//! - `handler`: the per-connection russh handler (authentication, channels, output pump).
//! - `hostkey`: the host key, generated once and kept in the data directory.

mod handler;
pub mod hostkey;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use session::{
    Pty, SessionFuture, SessionInput, SessionKind, SessionOutput, SessionOutputChunk, SessionPipe,
    SshService, SshSession,
};

use crate::runtime::Host;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;

/// How long a client may take to send its SSH identification line.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long sessions get to say goodbye after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Settings of one SSH listener.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The host key presented to clients.
    pub host_key: PrivateKey,
    /// Connections without traffic for this long are dropped; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// How long each rejected authentication attempt takes (1 s in production).
    pub auth_rejection_time: Duration,
}

impl SshSettings {
    /// The russh server configuration for these settings.
    pub fn russh_config(&self) -> russh::server::Config {
        russh::server::Config {
            keys: vec![self.host_key.clone()],
            methods: russh::MethodSet::from(
                &[russh::MethodKind::Password, russh::MethodKind::PublicKey][..],
            ),
            auth_rejection_time: self.auth_rejection_time,
            // OpenSSH opens with a `none` probe; without this every login starts with a
            // one-second stall.
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: self.idle_timeout,
            nodelay: true,
            ..russh::server::Config::default()
        }
    }
}

/// Serves SSH on `listener` until `shutdown` is cancelled, then disconnects every client
/// and returns.
pub async fn run(
    listener: TcpListener,
    settings: SshSettings,
    host: Host,
    shutdown: CancellationToken,
) {
    let config = Arc::new(settings.russh_config());
    let tracker = TaskTracker::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (socket, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "SSH accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let config = Arc::clone(&config);
        let host = host.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            serve_connection(config, socket, remote, host, shutdown).await;
            drop(permit);
        });
    }
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE * 2, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("SSH sessions still open at shutdown; dropping them");
    }
}

async fn serve_connection(
    config: Arc<russh::server::Config>,
    socket: tokio::net::TcpStream,
    remote: SocketAddr,
    host: Host,
    shutdown: CancellationToken,
) {
    let _ = socket.set_nodelay(true);
    let handler = handler::Connection::new(host.auth().clone(), Arc::clone(host.table()), remote);
    let running = tokio::select! {
        _ = shutdown.cancelled() => return,
        started = tokio::time::timeout(HANDSHAKE_TIMEOUT, russh::server::run_stream(config, socket, handler)) => match started {
            Ok(Ok(running)) => running,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "SSH handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "SSH handshake timed out");
                return;
            }
        },
    };
    let handle = running.handle();
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => {
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "SSH connection ended with an error");
            }
        }
        _ = shutdown.cancelled() => {
            let _ = handle
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "server shutting down".to_owned(),
                    String::new(),
                )
                .await;
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut running).await;
        }
    }
}

#[cfg(test)]
mod tests;
