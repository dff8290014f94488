//! Selecting the representation a resolved target is served as (reference §6, §8–§10): its
//! content type, cache policy, validators, encoding variant (a precompressed sidecar, a
//! variant compressed on the fly, or the identity bytes) and where its bytes come from.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use everlock_host::http::{HeaderMap, header};
use everlock_host::storage::{CommitId, Entry, StorageError};

use crate::http::body::Source;
use crate::http::compress;
use crate::http::conditional::Validators;
use crate::http::encoding::{self, Coding};
use crate::http::error::ServeError;
use crate::http::headers;
use crate::http::resolve::Target;
use crate::markdown::site::{MarkdownSite, PageKind};
use crate::site::SiteInner;
use crate::snapshot::{RenderedPage, Snapshot, hex_prefix};

/// A selected representation: its metadata and where its bytes come from.
pub(crate) struct Representation {
    /// The `Content-Type` (of the original, whatever the encoding).
    pub(crate) content_type: String,
    /// The `Cache-Control`.
    pub(crate) cache_control: String,
    /// The ETag and `Last-Modified` of these bytes.
    pub(crate) validators: Validators,
    /// Whether the response varies by `Accept-Encoding`.
    pub(crate) vary: bool,
    /// The `Content-Encoding`, if any.
    pub(crate) encoding: Option<Coding>,
    /// The length of the bytes.
    pub(crate) len: u64,
    /// The bytes.
    pub(crate) source: Source,
}

/// What selecting a representation needs of the site and the request.
pub(crate) struct Selection<'a> {
    /// The site.
    pub(crate) site: &'a SiteInner,
    /// The snapshot being served.
    pub(crate) snapshot: &'a Snapshot,
    /// The Markdown state, in markdown mode.
    pub(crate) markdown: Option<&'a MarkdownSite>,
    /// The request headers (`Accept-Encoding`, `Range`).
    pub(crate) headers: &'a HeaderMap,
    /// Whether the site needs authentication (`Cache-Control: private`).
    pub(crate) private: bool,
}

impl Selection<'_> {
    /// The representation of `target`, or `None` when there is nothing to send (an empty site,
    /// a Markdown target outside markdown mode).
    pub(crate) async fn select(
        &self,
        target: &Target,
    ) -> Result<Option<Representation>, ServeError> {
        let Some(commit) = self.snapshot.commit_id() else {
            return Ok(None);
        };
        let Some(md) = self.markdown else {
            return match target {
                Target::File(key) => self.file(key, commit).await,
                _ => Ok(None),
            };
        };
        let repr = match target {
            Target::File(key) => return self.file(key, commit).await,
            Target::Page(key, kind) => self.page(md, key, *kind, commit).await?,
            Target::Sitemap => {
                let page = match self.snapshot.rendered("sitemap.xml") {
                    Some(page) => page,
                    None => self.keep("sitemap.xml", md.sitemap()),
                };
                self.rendered(page, "application/xml; charset=utf-8", "sitemap.xml")
                    .await?
            }
            Target::Stylesheet(asset) => {
                let (body, content_type, cache_key) =
                    crate::markdown::theme::asset(&md.stylesheet, &md.search, *asset);
                let page = match self.snapshot.rendered(cache_key) {
                    Some(page) => page,
                    None => self.keep(cache_key, body),
                };
                let mut repr = self.rendered(page, content_type, cache_key).await?;
                // The name carries the content's hash: a new stylesheet is a new URL.
                repr.cache_control = if self.private {
                    "private, max-age=31536000, immutable".to_owned()
                } else {
                    "public, max-age=31536000, immutable".to_owned()
                };
                repr
            }
            Target::Taxonomy(taxonomy, term) => {
                // `#` cannot occur in a store key, so these cache keys never collide with a page.
                let cache_key = format!("#taxonomy/{taxonomy}/{}", term.as_deref().unwrap_or(""));
                let page = match self.snapshot.rendered(&cache_key) {
                    Some(page) => page,
                    None => {
                        let html = md.render_taxonomy(taxonomy, term.as_deref()).await?;
                        self.keep(&cache_key, html)
                    }
                };
                self.rendered(page, "text/html; charset=utf-8", "index.html")
                    .await?
            }
            Target::Redirect(..) | Target::NotFound => return Ok(None),
        };
        Ok(Some(repr))
    }

    /// A rendered Markdown page or section listing page, rendered once per snapshot.
    async fn page(
        &self,
        md: &MarkdownSite,
        key: &str,
        kind: PageKind,
        commit: CommitId,
    ) -> Result<Representation, ServeError> {
        let cache_key = match kind {
            PageKind::Section { page } if page > 1 => format!("{key}#page={page}"),
            _ => key.to_owned(),
        };
        let page = match self.snapshot.rendered(&cache_key) {
            Some(page) => page,
            None => {
                let store = self.site.store().await?;
                self.keep(&cache_key, md.render(store, commit, key, kind).await?)
            }
        };
        self.rendered(page, "text/html; charset=utf-8", key).await
    }

    /// Caches a generated body in the snapshot, so the next request does not generate it again.
    fn keep(&self, cache_key: &str, body: String) -> Arc<RenderedPage> {
        let page = Arc::new(RenderedPage::new(body));
        self.snapshot.store_rendered(cache_key, page.clone());
        page
    }

    /// A generated body (a page, the sitemap, a theme asset), compressed on the fly when the
    /// client takes it so; `key` picks the cache policy.
    async fn rendered(
        &self,
        page: Arc<RenderedPage>,
        content_type: &str,
        key: &str,
    ) -> Result<Representation, ServeError> {
        let cache_control =
            headers::cache_control(key, content_type, &self.site.settings, self.private);
        let body = page.body.clone();
        let variant = compress::on_the_fly(
            &self.site.compressed,
            self.headers,
            content_type,
            page.hash,
            body.len() as u64,
            || std::future::ready(Ok(body.clone())),
        )
        .await?;
        Ok(match variant {
            Some((coding, bytes)) => self.coded(
                content_type.to_owned(),
                cache_control,
                &page.etag,
                coding,
                bytes,
            ),
            None => Representation {
                cache_control,
                content_type: content_type.to_owned(),
                validators: Validators::new(page.etag.clone(), self.last_modified()),
                vary: compress::compressible(content_type),
                encoding: None,
                len: page.body.len() as u64,
                source: Source::Memory(page.body.clone()),
            },
        })
    }

    /// A stored file: its best precompressed sidecar for the client, else a variant compressed
    /// on the fly (only for a file without sidecars), else the file as stored.
    async fn file(
        &self,
        key: &str,
        commit: CommitId,
    ) -> Result<Option<Representation>, ServeError> {
        let files = &self.snapshot.files;
        let Some(original) = files.get(key) else {
            return Ok(None);
        };
        let available: Vec<Coding> = Coding::ALL
            .into_iter()
            .filter(|c| files.contains_key(&format!("{key}{}", c.suffix())))
            .collect();
        let accept = self
            .headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let chosen = encoding::choose(accept, &available);
        let sidecar = chosen.and_then(|c| files.get(&format!("{key}{}", c.suffix())));
        let content_type = headers::content_type(key);
        let cache_control =
            headers::cache_control(key, &content_type, &self.site.settings, self.private);
        if available.is_empty()
            && let Some((coding, bytes)) = self.compress(original, &content_type, commit).await?
        {
            let etag = format!("\"{}\"", hex_prefix(original.object.as_bytes()));
            let repr = self.coded(content_type, cache_control, &etag, coding, bytes);
            return Ok(Some(repr));
        }
        let entry = sidecar.unwrap_or(original);
        let vary =
            !available.is_empty() || compress::compressible_size(&content_type, original.size);
        Ok(Some(Representation {
            cache_control,
            content_type,
            validators: Validators::new(
                format!("\"{}\"", hex_prefix(entry.object.as_bytes())),
                self.last_modified(),
            ),
            vary,
            encoding: sidecar.and(chosen),
            len: entry.size,
            source: self.stored(entry, commit).await?,
        }))
    }

    /// The variant of a stored file compressed on the fly, if the client takes one.
    async fn compress(
        &self,
        original: &Entry,
        content_type: &str,
        commit: CommitId,
    ) -> Result<Option<(Coding, Bytes)>, ServeError> {
        let site = self.site;
        let load = || identity_bytes(site, original, commit);
        let hash = *original.object.as_bytes();
        let variant = compress::on_the_fly(
            &self.site.compressed,
            self.headers,
            content_type,
            hash,
            original.size,
            load,
        )
        .await?;
        Ok(variant)
    }

    /// Where a stored file's bytes come from: the small-file cache, else a stream from the
    /// store at the snapshot's commit.
    async fn stored(&self, entry: &Entry, commit: CommitId) -> Result<Source, ServeError> {
        Ok(match self.site.small_file(entry, commit).await? {
            Some(bytes) => Source::Memory(bytes),
            None => Source::Store {
                store: self.site.store().await?.clone(),
                key: entry.path.clone(),
                commit,
            },
        })
    }

    /// A compressed variant held in memory, with the coding in its ETag.
    fn coded(
        &self,
        content_type: String,
        cache_control: String,
        etag: &str,
        coding: Coding,
        bytes: Bytes,
    ) -> Representation {
        Representation {
            cache_control,
            content_type,
            validators: Validators::new(compress::coded_etag(etag, coding), self.last_modified()),
            vary: true,
            encoding: Some(coding),
            len: bytes.len() as u64,
            source: Source::Memory(bytes),
        }
    }

    fn last_modified(&self) -> Option<SystemTime> {
        self.snapshot.last_modified()
    }
}

/// The identity bytes of a stored file, to compress (so at most [`compress::MAX_INPUT`]).
async fn identity_bytes(
    site: &SiteInner,
    entry: &Entry,
    commit: CommitId,
) -> Result<Bytes, StorageError> {
    match site.small_file(entry, commit).await? {
        Some(bytes) => Ok(bytes),
        None => Ok(Bytes::from(
            site.store().await?.read_at(&entry.path, commit).await?,
        )),
    }
}
