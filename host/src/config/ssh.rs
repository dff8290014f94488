//! Settings of the SSH frontend (`[frontend-ssh]`).

use std::num::{NonZeroU64, NonZeroUsize};

use serde::{Deserialize, Deserializer};

use super::ListenAddr;

/// SSH connections served at once, logged in or not; more wait in the kernel's backlog. Those
/// that have not logged in yet have a smaller budget of their own (`max-unauthenticated`, at
/// most half of this), so they can never take every slot. The frontend enforces it.
pub(crate) const SSH_MAX_CONNECTIONS: usize = 256;

/// The largest `max-unauthenticated` accepted: half the connection slots, so that a flood of
/// connections that never log in can never take the slots authenticated sessions need.
const SSH_MAX_UNAUTHENTICATED_LIMIT: usize = SSH_MAX_CONNECTIONS / 2;

/// `[frontend-ssh]`: where the admin console listens, how long idle sessions live, and how
/// many connections may wait to log in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SshFrontendConfig {
    /// SSH listener, or `off`.
    #[serde(default = "default_listen")]
    pub listen: ListenAddr,
    /// Seconds without any traffic after which a connection is dropped (0 = never).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Seconds a connection has to authenticate (version exchange, key exchange and login)
    /// before it is closed, like OpenSSH's `LoginGraceTime`.
    #[serde(default = "default_login_grace_secs")]
    pub login_grace_secs: NonZeroU64,
    /// Connections that have not logged in yet, from all addresses together. When the budget
    /// is full, a new connection takes the slot of the oldest unauthenticated connection of
    /// the address holding the most slots. At most 128, half of the 256 connection slots.
    #[serde(
        default = "default_max_unauthenticated",
        deserialize_with = "unauthenticated_budget"
    )]
    pub max_unauthenticated: NonZeroUsize,
    /// Connections that have not logged in yet from one client address; beyond it new
    /// connections from that address are closed before the SSH handshake.
    #[serde(default = "default_max_unauthenticated_per_address")]
    pub max_unauthenticated_per_address: NonZeroUsize,
}

impl Default for SshFrontendConfig {
    fn default() -> Self {
        SshFrontendConfig {
            listen: default_listen(),
            idle_timeout_secs: default_idle_timeout_secs(),
            login_grace_secs: default_login_grace_secs(),
            max_unauthenticated: default_max_unauthenticated(),
            max_unauthenticated_per_address: default_max_unauthenticated_per_address(),
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

/// Thirty seconds: a person typing a password or unlocking a key makes it, a connection that
/// only holds a slot does not keep it for long. (OpenSSH's default is 120 s.)
fn default_login_grace_secs() -> NonZeroU64 {
    NonZeroU64::MIN.saturating_add(29)
}

/// A quarter of the connection slots: plenty for admins logging in at the same time.
fn default_max_unauthenticated() -> NonZeroUsize {
    NonZeroUsize::MIN.saturating_add(SSH_MAX_CONNECTIONS / 4 - 1)
}

/// Ten, OpenSSH's `MaxStartups` start value: more than a person or a script opens at once.
fn default_max_unauthenticated_per_address() -> NonZeroUsize {
    NonZeroUsize::MIN.saturating_add(9)
}

/// Refuses a budget that would let unauthenticated connections take every slot.
fn unauthenticated_budget<'de, D: Deserializer<'de>>(d: D) -> Result<NonZeroUsize, D::Error> {
    let n = NonZeroUsize::deserialize(d)?;
    if n.get() > SSH_MAX_UNAUTHENTICATED_LIMIT {
        return Err(serde::de::Error::custom(format!(
            "max-unauthenticated must be at most {SSH_MAX_UNAUTHENTICATED_LIMIT} (half of the \
             {SSH_MAX_CONNECTIONS} SSH connection slots)"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_strictness() {
        let c: SshFrontendConfig = toml::from_str("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:2222");
        assert_eq!(c.idle_timeout_secs, 600);
        assert_eq!(c.login_grace_secs.get(), 30);
        assert_eq!(c.max_unauthenticated.get(), 64);
        assert_eq!(c.max_unauthenticated_per_address.get(), 10);
        let c: SshFrontendConfig = toml::from_str("listen = \"off\"\n").unwrap();
        assert!(c.listen.addr().is_none());
        assert!(toml::from_str::<SshFrontendConfig>("listen-ssh = \"off\"\n").is_err());
        assert!(toml::from_str::<SshFrontendConfig>("listen = \"localhost\"\n").is_err());
    }

    #[test]
    fn pre_auth_limits_are_bounded() {
        let c: SshFrontendConfig = toml::from_str(
            "login-grace-secs = 5\nmax-unauthenticated = 128\nmax-unauthenticated-per-address = 3\n",
        )
        .unwrap();
        assert_eq!(c.login_grace_secs.get(), 5);
        assert_eq!(c.max_unauthenticated.get(), 128);
        assert_eq!(c.max_unauthenticated_per_address.get(), 3);
        for bad in [
            "login-grace-secs = 0\n",
            "max-unauthenticated = 0\n",
            "max-unauthenticated-per-address = 0\n",
            "max-unauthenticated = -1\n",
        ] {
            assert!(toml::from_str::<SshFrontendConfig>(bad).is_err(), "{bad}");
        }
        let err = toml::from_str::<SshFrontendConfig>("max-unauthenticated = 129\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 128"), "{err}");
    }
}
