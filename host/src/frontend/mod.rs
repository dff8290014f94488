//! The frontends: the only code that owns sockets, TLS and wire protocols.
//!
//! # Layout
//! - `http`: HTTP/1.1 and HTTP/2 listeners, Host-header routing to instances, access log.
//! - `tls`: SNI certificate selection and the generated local certificate authority.
//! - `ssh`: the SSH listener (russh), its host key and the session abstraction.

pub mod http;
pub mod ssh;
pub mod tls;
