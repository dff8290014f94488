//! `site.toml`: a Markdown site's own configuration, read from the site's store (never served).

use serde::{Deserialize, Serialize};

/// The parsed `site.toml`; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's title, shown in the header and in `<title>`.
    #[serde(default)]
    pub title: Option<String>,
    /// A one-line description for `<meta name="description">`.
    #[serde(default)]
    pub description: Option<String>,
    /// The absolute URL the site is published at; needed for `sitemap.xml`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Generate `/sitemap.xml` (needs `base_url` for absolute URLs).
    #[serde(default)]
    pub sitemap: bool,
    /// Pages per section listing page (`/docs/`, `/docs/page/2/`, ...); 0 lists all on one page.
    #[serde(default)]
    pub paginate_by: usize,
    /// Taxonomies (`["tags"]`): each gets `/<name>/` listing its terms and `/<name>/<term>/`
    /// listing the pages that carry the term (front matter `tags = [...]` for `tags`, or
    /// `taxonomies = { <name> = [...] }`).
    #[serde(default)]
    pub taxonomies: Vec<String>,
    /// Directories whose content is never served nor listed.
    #[serde(default)]
    pub ignore_dirs: Vec<String>,
    /// Navigation links.
    #[serde(default)]
    pub nav: Nav,
    /// Markdown options.
    #[serde(default)]
    pub markdown: MarkdownConfig,
}

/// `[nav]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nav {
    /// `links = [{ name = "Docs", url = "/docs/" }]`, in order.
    #[serde(default)]
    pub links: Vec<NavLink>,
}

/// One navigation link.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NavLink {
    /// The text.
    pub name: String,
    /// The target, absolute path or URL.
    pub url: String,
}

/// `[markdown]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkdownConfig {
    /// Highlight fenced code blocks with syntect.
    #[serde(default = "yes")]
    pub syntax_highlighting: bool,
    /// The syntect theme (`InspiredGitHub`, `base16-ocean.dark`, `Solarized (light)`, ...).
    #[serde(default = "default_style")]
    pub highlight_style: String,
    /// Pass raw HTML in Markdown through unchanged. Off by default: the output is sanitised
    /// with ammonia, because site authors are not necessarily trusted with script injection.
    #[serde(default)]
    pub unsafe_html: bool,
}

impl Default for MarkdownConfig {
    fn default() -> Self {
        MarkdownConfig {
            syntax_highlighting: true,
            highlight_style: default_style(),
            unsafe_html: false,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_style() -> String {
    "InspiredGitHub".to_owned()
}

/// Why `site.toml` was refused; the message names the file, for deploy responses and logs.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or a key this version does not know.
    #[error("site.toml: {0}")]
    Toml(#[from] everlock_host::toml::de::Error),
    /// A taxonomy name that cannot be a URL segment.
    #[error("site.toml: invalid taxonomy name {0:?}")]
    Taxonomy(String),
    /// A syntax highlighting theme that does not exist.
    #[error("site.toml: unknown highlight_style {name:?} (known: {known})")]
    Theme {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
}

impl SiteConfig {
    /// Parses `site.toml`, rejecting unknown keys and unknown highlight themes.
    pub fn parse(text: &str) -> Result<SiteConfig, ConfigError> {
        let config: SiteConfig = everlock_host::toml::from_str(text)?;
        for name in &config.taxonomies {
            if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
                return Err(ConfigError::Taxonomy(name.clone()));
            }
        }
        if !crate::markdown::highlight::theme_exists(&config.markdown.highlight_style) {
            return Err(ConfigError::Theme {
                name: config.markdown.highlight_style,
                known: crate::markdown::highlight::theme_names().join(", "),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_keys_strictly() {
        let c = SiteConfig::parse(
            "title = \"T\"\npaginate_by = 5\ntaxonomies = [\"tags\"]\nsitemap = true\nbase_url = \"https://x.example\"\n[nav]\nlinks = [{ name = \"Docs\", url = \"/docs/\" }]\n[markdown]\nunsafe_html = true\n",
        )
        .unwrap();
        assert_eq!(c.title.as_deref(), Some("T"));
        assert_eq!(c.nav.links.len(), 1);
        assert!(c.markdown.unsafe_html && c.markdown.syntax_highlighting);
        let err = SiteConfig::parse("titel = \"typo\"").unwrap_err();
        assert!(matches!(err, ConfigError::Toml(_)), "{err:?}");
        assert!(err.to_string().starts_with("site.toml: "), "{err}");
        assert!(err.to_string().contains("titel"), "{err}");
        let err = SiteConfig::parse("[markdown]\nhighlight_style = \"nope\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("site.toml: unknown highlight_style \"nope\" (known: "),
            "{err}"
        );
        let err = SiteConfig::parse("taxonomies = [\"a/b\"]").unwrap_err();
        assert_eq!(err.to_string(), "site.toml: invalid taxonomy name \"a/b\"");
    }
}
