//! The `--acme-*` flags of `everlock serve` (each also settable by its `EVERLOCK_ACME_*`
//! variable) and `--frontend-http-https-redirect`.

use std::path::PathBuf;

use clap::Args;
use clap::builder::BoolishValueParser;
use everlock_host::config::{
    AcmeChallenge, AcmeOverrides, DirectoryUrl, HttpsRedirect, RenewBeforeDays,
};

/// `[acme]` keys as flags.
#[derive(Debug, Args)]
pub(crate) struct AcmeArgs {
    /// Order certificates for every public vhost from an ACME CA.
    #[arg(
        long = "acme-enabled",
        env = "EVERLOCK_ACME_ENABLED",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    enabled: Option<bool>,
    /// The CA's ACME directory URL (default: Let's Encrypt production).
    #[arg(
        long = "acme-directory-url",
        env = "EVERLOCK_ACME_DIRECTORY_URL",
        value_name = "URL"
    )]
    directory_url: Option<DirectoryUrl>,
    /// Contact address given to the CA.
    #[arg(long = "acme-email", env = "EVERLOCK_ACME_EMAIL", value_name = "ADDR")]
    email: Option<String>,
    /// Extra PEM roots trusted for the directory's own HTTPS.
    #[arg(
        long = "acme-ca-roots",
        env = "EVERLOCK_ACME_CA_ROOTS",
        value_name = "FILE"
    )]
    ca_roots: Option<PathBuf>,
    /// `http-01` or `tls-alpn-01`.
    #[arg(
        long = "acme-challenge",
        env = "EVERLOCK_ACME_CHALLENGE",
        value_name = "TYPE"
    )]
    challenge: Option<AcmeChallenge>,
    /// Renew this many days before expiry.
    #[arg(
        long = "acme-renew-before-days",
        env = "EVERLOCK_ACME_RENEW_BEFORE_DAYS",
        value_name = "DAYS"
    )]
    renew_before_days: Option<RenewBeforeDays>,
    /// Which plain-HTTP requests get a 308 to HTTPS: `acme`, `always` or `never`.
    #[arg(
        long = "frontend-http-https-redirect",
        env = "EVERLOCK_FRONTEND_HTTP_HTTPS_REDIRECT",
        value_name = "WHICH"
    )]
    https_redirect: Option<HttpsRedirect>,
}

impl AcmeArgs {
    /// The `[acme]` overrides these flags give.
    pub(crate) fn overrides(&self) -> AcmeOverrides {
        AcmeOverrides {
            enabled: self.enabled,
            directory_url: self.directory_url.clone(),
            email: self.email.clone(),
            ca_roots: self.ca_roots.clone(),
            challenge: self.challenge,
            renew_before_days: self.renew_before_days,
        }
    }

    /// `--frontend-http-https-redirect`.
    pub(crate) fn https_redirect(&self) -> Option<HttpsRedirect> {
        self.https_redirect
    }
}
