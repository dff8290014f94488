//! `[acme]`: automatic certificates from an ACME CA (Let's Encrypt by default), and the
//! `https-redirect` rule of `[frontend-http]`.

use std::path::PathBuf;

use serde::Deserialize;

use super::ValueError;

/// Let's Encrypt's production directory, the default `directory-url`.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Settings of automatic certificates (`[acme]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AcmeConfig {
    /// Order certificates for every public vhost (default false).
    #[serde(default)]
    pub enabled: bool,
    /// The CA's ACME directory.
    #[serde(default = "default_directory_url")]
    pub directory_url: DirectoryUrl,
    /// Contact address given to the CA (expiry warnings, policy changes).
    #[serde(default)]
    pub email: Option<String>,
    /// Extra PEM roots trusted for the directory's own HTTPS (a test or in-house CA).
    #[serde(default)]
    pub ca_roots: Option<PathBuf>,
    /// Which challenge proves control of a name.
    #[serde(default)]
    pub challenge: AcmeChallenge,
    /// Renew a certificate this many days before it expires (1-365, default 30).
    #[serde(default = "default_renew_before_days")]
    pub renew_before_days: RenewBeforeDays,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            enabled: false,
            directory_url: default_directory_url(),
            email: None,
            ca_roots: None,
            challenge: AcmeChallenge::default(),
            renew_before_days: default_renew_before_days(),
        }
    }
}

/// How the CA checks that this server answers for a name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AcmeChallenge {
    /// A token served by the plain-HTTP listener (port 80 as the CA sees it).
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// A validation certificate presented by the HTTPS listener (port 443 as the CA sees it).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl std::str::FromStr for AcmeChallenge {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "http-01" => Ok(AcmeChallenge::Http01),
            "tls-alpn-01" => Ok(AcmeChallenge::TlsAlpn01),
            other => Err(ValueError::new(
                "ACME challenge",
                other,
                "use http-01 or tls-alpn-01",
            )),
        }
    }
}

/// An ACME directory URL (`https://...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUrl(String);

impl DirectoryUrl {
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for DirectoryUrl {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let ok = s
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
        if ok {
            Ok(DirectoryUrl(s.to_owned()))
        } else {
            Err(ValueError::new(
                "ACME directory URL",
                s,
                "expected https://host[:port]/path",
            ))
        }
    }
}

impl<'de> Deserialize<'de> for DirectoryUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn default_directory_url() -> DirectoryUrl {
    DirectoryUrl(LETS_ENCRYPT_PRODUCTION.to_owned())
}

/// Days before expiry a certificate is renewed (1-365).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewBeforeDays(u32);

impl RenewBeforeDays {
    /// The number of days.
    pub fn get(self) -> u32 {
        self.0
    }

    fn new(days: u32) -> Result<Self, ValueError> {
        if (1..=365).contains(&days) {
            Ok(RenewBeforeDays(days))
        } else {
            Err(ValueError::new(
                "renew-before-days",
                &days.to_string(),
                "use 1-365",
            ))
        }
    }
}

impl std::str::FromStr for RenewBeforeDays {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let days = s
            .trim()
            .parse::<u32>()
            .map_err(|_| ValueError::new("renew-before-days", s, "expected a number of days"))?;
        RenewBeforeDays::new(days)
    }
}

impl<'de> Deserialize<'de> for RenewBeforeDays {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RenewBeforeDays::new(u32::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn default_renew_before_days() -> RenewBeforeDays {
    RenewBeforeDays(30)
}

/// Which plain-HTTP requests are redirected to HTTPS (`[frontend-http] https-redirect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpsRedirect {
    /// Vhosts served with an ACME certificate (default).
    #[default]
    Acme,
    /// Every vhost (the HTTPS listener serves local certificates for the rest).
    Always,
    /// None.
    Never,
}

impl std::str::FromStr for HttpsRedirect {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "acme" => Ok(HttpsRedirect::Acme),
            "always" => Ok(HttpsRedirect::Always),
            "never" => Ok(HttpsRedirect::Never),
            other => Err(ValueError::new(
                "https-redirect",
                other,
                "use acme, always or never",
            )),
        }
    }
}

/// `--acme-*` / `EVERLOCK_ACME_*`; `None` leaves the file's value alone.
#[derive(Debug, Clone, Default)]
pub struct AcmeOverrides {
    /// `--acme-enabled`.
    pub enabled: Option<bool>,
    /// `--acme-directory-url`.
    pub directory_url: Option<DirectoryUrl>,
    /// `--acme-email`.
    pub email: Option<String>,
    /// `--acme-ca-roots`.
    pub ca_roots: Option<PathBuf>,
    /// `--acme-challenge`.
    pub challenge: Option<AcmeChallenge>,
    /// `--acme-renew-before-days`.
    pub renew_before_days: Option<RenewBeforeDays>,
}

impl AcmeOverrides {
    /// Lays these values over `acme`.
    pub fn apply(&self, acme: &mut AcmeConfig) {
        if let Some(v) = self.enabled {
            acme.enabled = v;
        }
        if let Some(v) = &self.directory_url {
            acme.directory_url = v.clone();
        }
        if let Some(v) = &self.email {
            acme.email = Some(v.clone());
        }
        if let Some(v) = &self.ca_roots {
            acme.ca_roots = Some(v.clone());
        }
        if let Some(v) = self.challenge {
            acme.challenge = v;
        }
        if let Some(v) = self.renew_before_days {
            acme.renew_before_days = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Wrap {
        acme: AcmeConfig,
    }

    fn parse(text: &str) -> Result<AcmeConfig, String> {
        toml::from_str::<Wrap>(text)
            .map(|w| w.acme)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_values() {
        let d = parse("[acme]\n").unwrap();
        assert_eq!(d, AcmeConfig::default());
        assert!(!d.enabled);
        assert_eq!(d.directory_url.as_str(), LETS_ENCRYPT_PRODUCTION);
        assert_eq!(d.renew_before_days.get(), 30);
        let c = parse(
            "[acme]\nenabled = true\ndirectory-url = \"https://127.0.0.1:14000/dir\"\nemail = \"ops@example.com\"\nca-roots = \"/tmp/r.pem\"\nchallenge = \"tls-alpn-01\"\nrenew-before-days = 10\n",
        )
        .unwrap();
        assert!(c.enabled);
        assert_eq!(c.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(c.renew_before_days.get(), 10);
    }

    #[test]
    fn strict_values() {
        for bad in [
            "[acme]\nunknown = 1\n",
            "[acme]\nchallenge = \"dns-01\"\n",
            "[acme]\nrenew-before-days = 0\n",
            "[acme]\ndirectory-url = \"http://x/dir\"\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overrides_win() {
        let mut c = AcmeConfig::default();
        AcmeOverrides {
            enabled: Some(true),
            challenge: Some("tls-alpn-01".parse().unwrap()),
            renew_before_days: Some("7".parse().unwrap()),
            ..Default::default()
        }
        .apply(&mut c);
        assert!(c.enabled);
        assert_eq!(c.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(c.renew_before_days.get(), 7);
    }
}
