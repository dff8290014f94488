//! Access paths, roles and actions: the vocabulary of every authorization decision.
//!
//! An access path names a resource as `frontend/backend/namespace[/more...]`, for example
//! `http/oci/default/team-a/app`. A grant's path may use `*` for any one segment and covers
//! its own path and everything below it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::error::AuthError;

/// A resource path or a grant pattern, split into validated segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessPath {
    segments: Vec<String>,
}

impl AccessPath {
    /// `*/*/*`: the pattern whose owners are system administrators.
    pub fn everything() -> AccessPath {
        AccessPath {
            segments: vec!["*".to_owned(), "*".to_owned(), "*".to_owned()],
        }
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The namespace segment (the third one), if the path is that deep.
    pub fn namespace(&self) -> Option<&str> {
        self.segments.get(2).map(String::as_str)
    }

    /// Whether this path, used as a grant pattern, covers `resource`: every pattern segment
    /// matches the resource's segment at the same position (`*` matches any one), and the
    /// resource may continue below the pattern.
    pub fn covers(&self, resource: &AccessPath) -> bool {
        self.segments.len() <= resource.segments.len()
            && self
                .segments
                .iter()
                .zip(&resource.segments)
                .all(|(p, r)| p == "*" || p == r)
    }

    /// Whether this path, used as a grant pattern, covers `resource` or anything below it:
    /// every segment the two share matches (`*` matches any one). A grant on
    /// `http/oci/default/team` reaches `http/oci/default` (it covers a repository inside it),
    /// and so does one on `http/oci` or `*/*/*` (it covers the whole instance).
    pub fn reaches(&self, resource: &AccessPath) -> bool {
        self.segments
            .iter()
            .zip(&resource.segments)
            .all(|(p, r)| p == "*" || p == r)
    }

    /// Builds a resource path from segments (e.g. `["http", "oci", "default", "team/app"]`
    /// split further on `/`), validating each.
    pub fn from_segments<I, S>(segments: I) -> Result<AccessPath, AuthError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined = segments
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join("/");
        joined.parse()
    }
}

impl FromStr for AccessPath {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| AuthError::InvalidPath {
            path: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        if s.len() > 512 {
            return Err(invalid("longer than 512 characters"));
        }
        let segments: Vec<String> = s.split('/').map(str::to_owned).collect();
        if segments.len() < 3 {
            return Err(invalid("expected frontend/backend/namespace[/more...]"));
        }
        for seg in &segments {
            let ok = seg == "*"
                || (!seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'-' | b'_' | b'.')
                    }));
            if !ok {
                return Err(invalid(
                    "segments are `*` or lowercase letters, digits, `-`, `_` and `.`",
                ));
            }
        }
        Ok(AccessPath { segments })
    }
}

impl fmt::Display for AccessPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

impl Serialize for AccessPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccessPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A role, ordered: `Reader < Writer < Owner`; a higher role includes every lower one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May read.
    Reader,
    /// May read and write.
    Writer,
    /// May read, write and delete, and administer.
    Owner,
}

impl Role {
    /// The weakest role that permits `action`.
    pub fn required_for(action: Action) -> Role {
        match action {
            Action::Read => Role::Reader,
            Action::Write => Role::Writer,
            Action::Delete => Role::Owner,
        }
    }

    /// Whether this role permits `action`.
    pub fn allows(self, action: Action) -> bool {
        self >= Role::required_for(action)
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reader" => Ok(Role::Reader),
            "writer" => Ok(Role::Writer),
            "owner" => Ok(Role::Owner),
            other => Err(AuthError::InvalidRole(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Owner => "owner",
        })
    }
}

/// One grant: a role on everything an access path pattern covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The pattern.
    pub path: AccessPath,
    /// The role it confers.
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AccessPath {
        s.parse().unwrap()
    }

    #[test]
    fn paths_parse() {
        assert_eq!(p("http/oci/default").namespace(), Some("default"));
        assert_eq!(p("*/*/*").segments().len(), 3);
        assert_eq!(
            p("http/oci/default/team-a/app.v2").to_string(),
            "http/oci/default/team-a/app.v2"
        );
        for bad in [
            "",
            "http",
            "http/oci",
            "http//x",
            "http/oci/Default",
            "http/oci/x/",
            "/http/oci/x",
            "http/oci/..",
            "http/oci/a b",
            "http/oci/x*",
        ] {
            assert!(bad.parse::<AccessPath>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn coverage() {
        assert!(p("http/oci/default").covers(&p("http/oci/default")));
        assert!(p("http/oci/default").covers(&p("http/oci/default/team-a/app")));
        assert!(!p("http/oci/default/team-a").covers(&p("http/oci/default")));
        assert!(!p("http/oci/default/team-a").covers(&p("http/oci/default/team-b/app")));
        assert!(!p("http/oci/default").covers(&p("http/oci/defaults")));
        assert!(p("*/oci/default").covers(&p("http/oci/default/x")));
        assert!(p("*/*/*").covers(&p("ssh/admin/console")));
        assert!(!p("*/site/*").covers(&p("http/oci/default")));
    }

    #[test]
    fn reach_covers_above_and_below() {
        let instance = p("http/oci/default");
        for pattern in [
            "http/oci/default",
            "http/oci/default/team",
            "http/oci/default/team/app",
            "http/oci/*/team",
            "*/*/*",
            "*/oci/default/x",
        ] {
            assert!(p(pattern).reaches(&instance), "{pattern}");
        }
        for pattern in [
            "http/oci/other",
            "http/oci/other/team",
            "http/site/default",
            "ssh/admin/console",
            "http/oci/defaults/x",
        ] {
            assert!(!p(pattern).reaches(&instance), "{pattern}");
        }
        // Everything a pattern covers, it also reaches.
        assert!(p("http/oci/default").reaches(&p("http/oci/default/team/app")));
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner > Role::Writer && Role::Writer > Role::Reader);
        assert!(Role::Reader.allows(Action::Read));
        assert!(!Role::Reader.allows(Action::Write));
        assert!(Role::Writer.allows(Action::Write));
        assert!(!Role::Writer.allows(Action::Delete));
        assert!(Role::Owner.allows(Action::Delete));
        assert_eq!("writer".parse::<Role>().unwrap(), Role::Writer);
        assert!("admin".parse::<Role>().is_err());
    }
}
