//! Configuration newtypes that validate once at parse time, so an invalid vhost, listen
//! address, path prefix or name cannot exist anywhere else in the program.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::api::names::string_newtype;
pub use crate::api::names::{InstanceName, PathPrefix, StoreName, ValueError, Vhost, check_kind};
use crate::api::vhost::normalize_host;

/// A TLS certificate name: a hostname or IP literal, or a wildcard `*.parent` that covers
/// exactly one extra label, as in X.509.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertName(String);

impl CertName {
    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CertName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let (wild, rest) = match trimmed.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let name = normalize_host(rest)
            .map_err(|e| ValueError::new("certificate name", s, e.to_string()))?;
        Ok(CertName(if wild { format!("*.{name}") } else { name }))
    }
}
string_newtype!(CertName);

/// A socket address to listen on, or `off` to disable the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(Option<SocketAddr>);

impl ListenAddr {
    /// A listener on `addr`.
    pub fn on(addr: SocketAddr) -> Self {
        ListenAddr(Some(addr))
    }

    /// A disabled listener.
    pub fn off() -> Self {
        ListenAddr(None)
    }

    /// The address, or `None` when the listener is disabled.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.0
    }

    fn as_str_owned(&self) -> String {
        self.0.map_or_else(|| "off".to_owned(), |a| a.to_string())
    }
}

impl FromStr for ListenAddr {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.eq_ignore_ascii_case("off") {
            return Ok(ListenAddr(None));
        }
        trimmed
            .parse::<SocketAddr>()
            .map(ListenAddr::on)
            .map_err(|_| {
                ValueError::new(
                    "listen address",
                    s,
                    "expected IP:PORT such as 127.0.0.1:8080 or [::1]:8443, or `off`",
                )
            })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str_owned())
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str_owned())
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            "127.0.0.1:8080".parse::<ListenAddr>().map(|a| a.addr()),
            Ok(Some(SocketAddr::from(([127, 0, 0, 1], 8080))))
        );
        assert!("[::1]:8443".parse::<ListenAddr>().is_ok());
        assert_eq!("off".parse::<ListenAddr>().map(|a| a.addr()), Ok(None));
        for bad in [
            "",
            "127.0.0.1",
            "localhost:8080",
            "1.2.3.4:99999",
            "::1:80",
            "nope",
        ] {
            let err = bad.parse::<ListenAddr>().expect_err(bad);
            assert!(err.to_string().contains("invalid listen address"), "{err}");
        }
    }

    #[test]
    fn cert_names() {
        assert_eq!(
            "*.Example.COM.".parse::<CertName>().unwrap().as_str(),
            "*.example.com"
        );
        assert!("*".parse::<CertName>().is_err());
        assert!("a.*.com".parse::<CertName>().is_err());
    }
}
