//! What a Markdown site is read from: a commit's files when the server serves it, the staged
//! files of a deploy when the deploy checks it. It sits below the site model and the deploy
//! check alike, so each imports it without importing the other.

use futures_util::future::BoxFuture;

use crate::markdown::pool::ReadError;

/// The files of a site, by store key.
pub trait SiteFiles: Send + Sync {
    /// Whether the site has a file at `key`.
    fn contains(&self, key: &str) -> bool;
    /// Every file's key, in no particular order.
    fn keys(&self) -> Vec<String>;
    /// A file's content as text. The future is boxed: an unboxed one is a distinct type per
    /// lifetime, and the server's handler future (which must be `Send` for every lifetime)
    /// would then fail to prove it.
    fn text<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<String, ReadError>>;
}
