//! Which frontend carries a kind's traffic.

use std::fmt;

/// Which frontend carries a backend kind's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// Requests arrive through the HTTP(S) frontend and are routed by vhost and path prefix.
    Http,
    /// Sessions arrive through the SSH frontend.
    Ssh,
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Frontend::Http => "http",
            Frontend::Ssh => "ssh",
        })
    }
}
