//! Validated names every backend and the host share: vhosts, path prefixes, store, instance
//! and kind names. Each is checked once when it is parsed, so an invalid one cannot exist
//! anywhere else in the program.

use std::str::FromStr;

use super::vhost::normalize_host;

/// Why a configuration value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {reason}")]
pub struct ValueError {
    what: &'static str,
    value: String,
    reason: String,
}

impl ValueError {
    pub(crate) fn new(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        ValueError {
            what,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Implements `Display`, `Serialize` and `Deserialize` (through `FromStr`) for a string newtype,
/// and comparison with the plain string it normalises to (`name == "team"`).
macro_rules! string_newtype {
    ($ty:ident) => {
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = <String as ::serde::Deserialize>::deserialize(d)?;
                raw.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_newtype;

/// A hostname an instance answers on, normalised like a `Host` header (lowercase, no port,
/// no trailing dot, IPv6 without brackets). The special vhost `*` is the catch-all used when
/// no exact vhost matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vhost(String);

impl Vhost {
    /// The catch-all vhost.
    pub const ANY: &'static str = "*";

    /// The normalised hostname.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the catch-all vhost `*`.
    pub fn is_any(&self) -> bool {
        self.0 == Self::ANY
    }
}

impl FromStr for Vhost {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == Self::ANY {
            return Ok(Vhost(Self::ANY.to_owned()));
        }
        normalize_host(s)
            .map(Vhost)
            .map_err(|e| ValueError::new("vhost", s, e.to_string()))
    }
}
string_newtype!(Vhost);

/// A URL path prefix an instance is mounted under: starts with `/`, has no empty, `.` or `..`
/// segments, and no trailing slash except for the root `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPrefix(String);

impl PathPrefix {
    /// The root prefix `/`, which matches every path.
    pub fn root() -> Self {
        PathPrefix("/".to_owned())
    }

    /// The prefix as written, e.g. `/v2`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Number of bytes in the prefix; longer prefixes win when several match.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether this is the root prefix (never empty otherwise).
    pub fn is_empty(&self) -> bool {
        self.0 == "/"
    }

    /// Whether `path` lies under this prefix on a segment boundary: `/v2` matches `/v2` and
    /// `/v2/x` but not `/v2x`.
    pub fn matches(&self, path: &str) -> bool {
        if self.0 == "/" {
            return true;
        }
        match path.strip_prefix(self.0.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl Default for PathPrefix {
    fn default() -> Self {
        Self::root()
    }
}

impl FromStr for PathPrefix {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(ValueError::new("path prefix", s, "must start with `/`"));
        };
        if rest.is_empty() {
            return Ok(Self::root());
        }
        // One trailing slash is tolerated (`/v2/` means `/v2`); anything left empty was `//`.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        for segment in rest.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(ValueError::new(
                    "path prefix",
                    s,
                    "must not contain empty, `.` or `..` segments",
                ));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
            {
                return Err(ValueError::new(
                    "path prefix",
                    s,
                    "may only contain visible ASCII characters other than `?` and `#`",
                ));
            }
        }
        Ok(PathPrefix(format!("/{rest}")))
    }
}
string_newtype!(PathPrefix);

/// Checks the shared naming rule of stores, instances and kinds: 1 to 63 characters of
/// lowercase letters, digits and `-`, starting with a letter or digit.
fn check_name(what: &'static str, s: &str) -> Result<(), ValueError> {
    let mut bytes = s.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if s.len() <= 63 && first_ok && rest_ok {
        Ok(())
    } else {
        Err(ValueError::new(
            what,
            s,
            "use 1-63 lowercase letters, digits and `-`, starting with a letter or digit",
        ))
    }
}

/// The name of a store under the data directory (`data/<name>/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreName(String);

impl StoreName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl StoreName {
    /// `<kind>-<instance>`. Kinds are checked to be at most 30 characters and instance names
    /// at most 32, both of the store-name alphabet, so the result always obeys the rule.
    pub(crate) fn derived(kind: &str, instance: &InstanceName) -> StoreName {
        StoreName(format!("{kind}-{instance}"))
    }
}

impl FromStr for StoreName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_name("store name", s).map(|()| StoreName(s.to_owned()))
    }
}
string_newtype!(StoreName);

/// The name of an instance, unique within its backend kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceName(String);

impl InstanceName {
    /// The instance that bootstrap flags create and shape: `default`.
    pub fn default_instance() -> InstanceName {
        InstanceName("default".to_owned())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InstanceName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // One message with the instance limit (32, so `<kind>-<instance>` stays a valid
        // store name), not the 63 of the shared rule, whichever part of the rule failed.
        if s.len() > 32 || check_name("instance name", s).is_err() {
            return Err(ValueError::new(
                "instance name",
                s,
                "use 1-32 lowercase letters, digits and `-`, starting with a letter or digit",
            ));
        }
        Ok(InstanceName(s.to_owned()))
    }
}
string_newtype!(InstanceName);

/// Validates a backend kind name with the same rule as other names.
pub fn check_kind(kind: &str) -> Result<(), ValueError> {
    check_name("backend kind", kind)?;
    if kind.len() > 30 {
        return Err(ValueError::new(
            "backend kind",
            kind,
            "use at most 30 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_match() {
        let p: PathPrefix = "/v2/".parse().unwrap();
        assert_eq!(p.as_str(), "/v2");
        assert!(p.matches("/v2"));
        assert!(p.matches("/v2/"));
        assert!(p.matches("/v2/library/alpine/manifests/latest"));
        assert!(!p.matches("/v2x"));
        assert!(!p.matches("/"));
        assert!(!p.matches("/v"));
        let root: PathPrefix = "/".parse().unwrap();
        assert!(root.matches("/anything") && root.matches("/"));
        for bad in ["", "v2", "//", "/a//b", "/a/../b", "/./a", "/a b", "/a?b"] {
            assert!(bad.parse::<PathPrefix>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        for good in ["a", "everlock-users", "oci-1", "0day"] {
            assert!(good.parse::<StoreName>().is_ok(), "{good}");
            assert!(good.parse::<InstanceName>().is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a.b", "a/b", "é", &"a".repeat(64)] {
            assert!(bad.parse::<StoreName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn vhosts() {
        assert_eq!(
            "LocalHost.:8080".parse::<Vhost>().unwrap().as_str(),
            "localhost"
        );
        assert!("*".parse::<Vhost>().unwrap().is_any());
        assert!("bad host".parse::<Vhost>().is_err());
        assert!("*.example.com".parse::<Vhost>().is_err());
    }
}
