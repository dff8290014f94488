//! Markdown mode: `site.toml`, front matter, rendering, highlighting, layouts and the site model.

pub mod check;
pub mod config;
pub mod files;
pub mod front;
pub mod highlight;
pub mod layout;
pub mod nav;
pub mod pages;
pub mod pool;
pub mod render;
pub mod search;
pub mod site;
pub mod sitemap;
pub mod theme;
