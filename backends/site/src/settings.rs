//! The strict settings table of one site instance.

use std::num::NonZeroU64;

use serde::Deserialize;

/// How a site's files become responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Files are served as they are (`index.html` indexes, `/about` → `about.html`).
    #[default]
    Html,
    /// `.md` pages are rendered through Jinja-syntax layouts (minijinja); other files are
    /// served as they are.
    Markdown,
}

/// Settings of one site (`[backends.site-http.instances.<name>.settings]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// `html` or `markdown`.
    #[serde(default)]
    pub mode: Mode,
    /// The largest deploy archive accepted, counted as request bytes, as decompressed archive
    /// bytes (headers included) and as the sum of the file sizes (so a gzip bomb stops at the
    /// same limit).
    #[serde(default = "default_max_deploy_bytes")]
    pub max_deploy_bytes: u64,
    /// The most files and directories one deploy may hold.
    #[serde(default = "default_max_deploy_files")]
    pub max_deploy_files: u64,
    /// The work one Markdown page's layout may do, in minijinja fuel: about one instruction
    /// or 64 bytes of data per unit. A page over it answers 500; other sites are unaffected.
    #[serde(default = "default_render_fuel")]
    pub render_fuel: u64,
    /// `max-age` for static files that are neither HTML nor fingerprinted; 0 means `no-cache`.
    #[serde(default)]
    pub static_max_age: u32,
    /// Send `Strict-Transport-Security` on HTTPS responses.
    #[serde(default = "yes")]
    pub hsts: bool,
    /// Add `includeSubDomains` to HSTS (affects every subdomain; hard to undo).
    #[serde(default)]
    pub hsts_include_subdomains: bool,
    /// Add `preload` to HSTS (hard to undo).
    #[serde(default)]
    pub hsts_preload: bool,
    /// How many recent deploys keep their bytes, so rolling back to them is instant; older
    /// deploys keep their history record only. When set, it is the store's retention policy
    /// (`keep-commits=<N>`) and replaces any other; when absent, a new store starts with
    /// [`DEFAULT_KEEP_DEPLOYS`] and an operator's `/store retention` choice stays.
    #[serde(default)]
    pub keep_deploys: Option<NonZeroU64>,
}

/// The deploys a site keeps by default: recent rollbacks stay instant while the disk use of a
/// site that deploys every day stays bounded.
pub const DEFAULT_KEEP_DEPLOYS: u64 = 20;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Html,
            max_deploy_bytes: default_max_deploy_bytes(),
            max_deploy_files: default_max_deploy_files(),
            render_fuel: default_render_fuel(),
            static_max_age: 0,
            hsts: true,
            hsts_include_subdomains: false,
            hsts_preload: false,
            keep_deploys: None,
        }
    }
}

fn default_max_deploy_bytes() -> u64 {
    512 * 1024 * 1024
}

fn default_max_deploy_files() -> u64 {
    100_000
}

/// Ample for real layouts (the built-in listing of 10,000 pages fits in a quarter of it), while
/// a runaway layout stops within a fraction of a second and about 128 MiB of template data.
pub const DEFAULT_RENDER_FUEL: u64 = 2_000_000;

fn default_render_fuel() -> u64 {
    DEFAULT_RENDER_FUEL
}

fn yes() -> bool {
    true
}

/// A documented example of the settings, checked by a test.
pub const EXAMPLE_SETTINGS: &str = r#"# `html` serves files as they are; `markdown` renders .md pages through Jinja-syntax layouts.
mode = "markdown"
# The largest deploy (request bytes and unpacked bytes), and the most files one deploy may hold.
max-deploy-bytes = 536870912
max-deploy-files = 100000
# The work one Markdown page's layout may do (minijinja fuel); a page over it answers 500.
render-fuel = 2000000
# max-age for static files that are neither HTML nor fingerprinted (0 = no-cache).
static-max-age = 0
# Strict-Transport-Security on HTTPS responses; the two riskier flags are opt-in.
hsts = true
hsts-include-subdomains = false
hsts-preload = false
# Deploys (and rollbacks) whose bytes are kept; older ones keep only their history record.
keep-deploys = 20
"#;
