//! TLS for the HTTPS listener. The implementation lives in `crate::tls` (local CA, configured
//! certificates and their reload, ACME); this module keeps the frontend's entry points.

pub use crate::tls::{GeneratedCertPaths, NO_SNI_NAMES, TlsError, TlsState};

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

use crate::config::CertificateConfig;

/// Builds the rustls server configuration for `data_dir` and `certs` (see [`TlsState`]).
pub fn server_config(
    data_dir: &Path,
    certs: &[CertificateConfig],
) -> Result<Arc<ServerConfig>, TlsError> {
    TlsState::new(data_dir, certs)?.server_config()
}
