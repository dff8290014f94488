//! What a request wants to do: the one word every authorization decision and every
//! refusal names. It is a leaf of the crate so that both the access vocabulary (`access`) and
//! the error type (`error`) can use it without importing each other.

use std::fmt;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Pull, GET, list.
    Read,
    /// Push, deploy, change.
    Write,
    /// Delete.
    Delete,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
        })
    }
}
