//! HTTP semantics of the site backend (see the shared reference `site-http.md`).

pub mod body;
pub mod conditional;
pub mod encoding;
pub mod headers;
pub mod path;
pub mod range;
pub mod resolve;
pub mod serve;
