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

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// The rule, stated independently of `check`.
        fn valid(s: &str) -> bool {
            let b = s.as_bytes();
            (1..=32).contains(&b.len())
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        }

        proptest! {
            #[test]
            fn any_text_is_a_login_or_a_typed_error(s in "\\PC{0,40}|[a-z0-9-]{0,40}|system") {
                match s.parse::<Login>() {
                    Ok(login) => {
                        prop_assert!(valid(&s) && s != SYSTEM, "{s:?}");
                        prop_assert_eq!(login.as_str(), s.as_str());
                        prop_assert_eq!(login.to_string().parse::<Login>().ok(), Some(login));
                    }
                    Err(AuthError::Reserved(name)) => prop_assert_eq!(name.as_str(), SYSTEM),
                    Err(AuthError::InvalidName { what, value }) => {
                        prop_assert!(!valid(&s));
                        prop_assert_eq!(what, "login");
                        prop_assert_eq!(value, s);
                    }
                    Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                }
            }

            #[test]
            fn group_names_follow_the_same_rule(s in "\\PC{0,40}|[a-z0-9-]{0,40}") {
                prop_assert_eq!(s.parse::<GroupName>().is_ok(), valid(&s));
            }

            #[test]
            fn names_from_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
                let s = String::from_utf8_lossy(&bytes);
                let _ = s.parse::<Login>();
                let _ = s.parse::<GroupName>();
            }
        }
    }
}
