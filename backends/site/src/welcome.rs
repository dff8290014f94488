//! The built-in content of the zero-config welcome site, committed by the host when
//! it first provisions the zero-config instance.

/// `(path, content)` of every file the welcome site starts with.
pub const FILES: &[(&str, &[u8])] = &[("index.html", include_bytes!("../welcome/index.html"))];

/// The zero-config instance name.
pub const NAME: &str = "welcome";
