//! `site-http`: static and Markdown websites.
//!
//! Not implemented yet: the crate exists so the workspace has its final shape and the binary
//! links it. It registers no kind until the site backend is built (issue "Site backend").
