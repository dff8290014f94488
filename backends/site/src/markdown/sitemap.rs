//! `sitemap.xml` of a Markdown site (kept apart from `site.rs`, which holds the page model).

use crate::markdown::render;
use crate::markdown::site::MarkdownSite;

impl MarkdownSite {
    /// `sitemap.xml` listing every page (absolute when `base_url` is set).
    pub fn sitemap(&self) -> String {
        let base = self
            .config
            .base_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        let mut out = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
        );
        for page in self
            .pages
            .values()
            .filter(|p| !p.draft && !p.key.ends_with("404.md"))
        {
            out.push_str("  <url><loc>");
            out.push_str(&render::escape(&format!("{base}{}", page.url)));
            out.push_str("</loc>");
            if let Some(date) = &page.date {
                out.push_str("<lastmod>");
                out.push_str(&render::escape(date));
                out.push_str("</lastmod>");
            }
            out.push_str("</url>\n");
        }
        out.push_str("</urlset>\n");
        out
    }
}
