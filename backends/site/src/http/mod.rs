//! HTTP semantics of the site backend (see the shared reference `site-http.md`).

pub mod body;
pub mod compress;
pub mod conditional;
pub mod encoding;
pub mod headers;
pub mod path;
pub mod range;
pub mod resolve;
pub(crate) mod rewrite;
pub mod serve;
