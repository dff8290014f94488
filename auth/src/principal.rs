//! Who is acting: a user, the anonymous principal, or the server itself.

use std::fmt;

use crate::names::{ANON, Login, SYSTEM};

/// The identity behind a request or a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// No credentials were presented.
    Anon,
    /// An authenticated user.
    User(Login),
    /// The server itself (bootstrap, garbage collection); never the result of a login.
    System,
}

impl Principal {
    /// The name recorded in commits and logs.
    pub fn name(&self) -> &str {
        match self {
            Principal::Anon => ANON,
            Principal::User(login) => login.as_str(),
            Principal::System => SYSTEM,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
