//! Where registry state lives inside the instance's store.
//!
//! - `blobs/<alg>/<hex>`: blob content, once per registry (deduplicated across repositories).
//! - `repos/<name>/_blobs/<alg>/<hex>`: the blob belongs to the repository (content is the
//!   digest text). Reads check it, so a blob pushed to one repository is not readable through
//!   another one the caller may read. Every manifest push re-writes the links of the blobs it
//!   references, which bumps their versions: that is what makes GC safe (see `gc.rs`).
//! - `repos/<name>/_manifests/<alg>/<hex>`: manifest bytes exactly as pushed.
//! - `repos/<name>/_mtypes/<alg>/<hex>`: the manifest's media type, re-written by every push
//!   that tags or references the manifest (again for GC).
//! - `repos/<name>/_tags/<tag>`: the digest a tag points at.
//! - `repos/<name>/_referrers/<alg>/<hex>/<alg>-<hex>`: the descriptor (JSON) of a manifest
//!   whose `subject` is the first digest.
//!
//! Repository name components never start with `_`, so the `_` directories cannot collide with
//! a nested repository's name.

use crate::names::{Name, OciDigest, Tag};

pub(crate) const BLOBS: &str = "blobs/";
pub(crate) const REPOS: &str = "repos/";
pub(crate) const MANIFESTS_DIR: &str = "/_manifests/";
pub(crate) const BLOB_LINKS_DIR: &str = "/_blobs/";
pub(crate) const TAGS_DIR: &str = "/_tags/";

pub(crate) fn blob(d: &OciDigest) -> String {
    format!("{BLOBS}{}", d.path())
}

pub(crate) fn blob_link(name: &Name, d: &OciDigest) -> String {
    format!("{REPOS}{name}{BLOB_LINKS_DIR}{}", d.path())
}

pub(crate) fn manifest(name: &Name, d: &OciDigest) -> String {
    format!("{REPOS}{name}{MANIFESTS_DIR}{}", d.path())
}

pub(crate) fn manifests_prefix(name: &Name) -> String {
    format!("{REPOS}{name}{MANIFESTS_DIR}")
}

pub(crate) fn media_type(name: &Name, d: &OciDigest) -> String {
    format!("{REPOS}{name}/_mtypes/{}", d.path())
}

pub(crate) fn tag(name: &Name, t: &Tag) -> String {
    format!("{REPOS}{name}{TAGS_DIR}{t}")
}

pub(crate) fn tags_prefix(name: &Name) -> String {
    format!("{REPOS}{name}{TAGS_DIR}")
}

pub(crate) fn referrers_prefix(name: &Name, subject: &OciDigest) -> String {
    format!("{REPOS}{name}/_referrers/{}/", subject.path())
}

pub(crate) fn referrer(name: &Name, subject: &OciDigest, referrer: &OciDigest) -> String {
    format!(
        "{}{}-{}",
        referrers_prefix(name, subject),
        referrer.alg().as_str(),
        referrer.hex()
    )
}

/// Splits `<alg>/<hex>` (a path suffix) back into a digest.
pub(crate) fn digest_from_path(suffix: &str) -> Option<OciDigest> {
    let (alg, hex) = suffix.split_once('/')?;
    OciDigest::parse(&format!("{alg}:{hex}")).ok()
}
