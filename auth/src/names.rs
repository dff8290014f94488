//! Login and group names: lowercase slugs, validated once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::AuthError;

/// The built-in anonymous principal's login.
pub const ANON: &str = "anon";
/// The principal the server itself commits as (bootstrap, GC).
pub const SYSTEM: &str = "system";

fn check(what: &'static str, s: &str) -> Result<(), AuthError> {
    let mut bytes = s.bytes();
    let first = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if first && rest && s.len() <= 32 {
        Ok(())
    } else {
        Err(AuthError::InvalidName {
            what,
            value: s.to_owned(),
        })
    }
}

macro_rules! name_type {
    ($ty:ident, $what:literal) => {
        impl $ty {
            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A user's login: a lowercase slug, unique and never renamed. `anon` is the built-in
/// anonymous user; `system` is reserved for the server itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Login(String);

impl Login {
    /// The built-in anonymous user.
    pub fn anon() -> Login {
        Login(ANON.to_owned())
    }

    /// Whether this is `anon`.
    pub fn is_anon(&self) -> bool {
        self.0 == ANON
    }
}

impl FromStr for Login {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check("login", s)?;
        if s == SYSTEM {
            return Err(AuthError::Reserved(s.to_owned()));
        }
        Ok(Login(s.to_owned()))
    }
}
name_type!(Login, "login");

/// A group's name, with the same rule as logins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(String);

impl FromStr for GroupName {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check("group name", s).map(|()| GroupName(s.to_owned()))
    }
}
name_type!(GroupName, "group name");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins() {
        for ok in ["alice", "a", "bob-2", "0x", "anon"] {
            assert!(ok.parse::<Login>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            "-a",
            "a_b",
            "a.b",
            "a b",
            "system",
            &"a".repeat(33),
            "é",
        ] {
            assert!(bad.parse::<Login>().is_err(), "{bad}");
        }
        assert!("anon".parse::<Login>().unwrap().is_anon());
    }
}
