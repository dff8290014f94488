//! Settings of the metrics listener (`[metrics]`) and of the server's log (`[log]`).

use serde::Deserialize;

use super::{ListenAddr, ValueError};

/// `[metrics]`: where `/metrics`, `/healthz` and `/readyz` are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// The metrics listener, or `off`. Loopback by default: the endpoints need no
    /// credentials, so exposing them further is the operator's explicit choice.
    #[serde(default = "default_listen")]
    pub listen: ListenAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> ListenAddr {
    ListenAddr::on(std::net::SocketAddr::from(([127, 0, 0, 1], 9464)))
}

/// `[log]`: how the server writes its log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogConfig {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

/// The log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(ValueError::new(
                "log format",
                s,
                "expected `text` or `json`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn metrics_listen_and_log_format_parse() {
        let c = Config::default();
        assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.log.format, LogFormat::Text);
        let c = Config::parse(
            "[metrics]\nlisten = \"off\"\n[log]\nformat = \"json\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.metrics.listen.addr(), None);
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(Config::parse("[log]\nformat = \"xml\"\n", Path::new("t.toml")).is_err());
        assert!(Config::parse("[metrics]\nport = 1\n", Path::new("t.toml")).is_err());
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("yaml".parse::<LogFormat>().is_err());
    }
}
