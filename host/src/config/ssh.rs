//! Settings of the SSH frontend (`[frontend-ssh]`).

use serde::Deserialize;

use super::ListenAddr;

/// `[frontend-ssh]`: where the admin console listens and how long idle sessions live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SshFrontendConfig {
    /// SSH listener, or `off`.
    #[serde(default = "default_listen")]
    pub listen: ListenAddr,
    /// Seconds without any traffic after which a connection is dropped (0 = never).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
}

impl Default for SshFrontendConfig {
    fn default() -> Self {
        SshFrontendConfig {
            listen: default_listen(),
            idle_timeout_secs: default_idle_timeout_secs(),
        }
    }
}

fn default_listen() -> ListenAddr {
    ListenAddr::on(std::net::SocketAddr::from(([127, 0, 0, 1], 2222)))
}

/// Ten minutes, russh's own default: long enough to read a listing, short enough that a
/// forgotten console does not stay logged in for days.
fn default_idle_timeout_secs() -> u64 {
    600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_strictness() {
        let c: SshFrontendConfig = toml::from_str("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:2222");
        assert_eq!(c.idle_timeout_secs, 600);
        let c: SshFrontendConfig = toml::from_str("listen = \"off\"\n").unwrap();
        assert!(c.listen.addr().is_none());
        assert!(toml::from_str::<SshFrontendConfig>("listen-ssh = \"off\"\n").is_err());
        assert!(toml::from_str::<SshFrontendConfig>("listen = \"localhost\"\n").is_err());
    }
}
