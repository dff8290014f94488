//! HTTP semantics of the site backend (see the shared reference `site-http.md`).
//!
//! Imports run one way: [`serve`] routes a request (to [`crate::deploy`] or through the
//! reading pipeline: [`rewrite`], [`resolve`], [`representation`], [`send`]), every failure
//! is an [`error::ServeError`], and [`reply`] at the bottom holds what all of them share.

pub mod body;
pub mod compress;
pub mod conditional;
pub mod encoding;
pub mod error;
pub mod headers;
pub mod path;
pub mod range;
pub mod reply;
pub(crate) mod representation;
pub mod resolve;
pub(crate) mod rewrite;
pub(crate) mod send;
pub mod serve;
