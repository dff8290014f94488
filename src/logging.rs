//! The server's log: `tracing` to stderr as human-readable text or, with `[log] format =
//! "json"` (`--log-format json`), as one JSON object per line. In JSON mode the few lines
//! the binary prints itself (the generated administrator password, a fatal error) are JSON
//! objects too, so a log collector can parse every line the process writes.
//!
//! The format is known for certain only after the configuration file is read, but an error
//! can happen before that (a bad file): the flag or environment variable, when given, is
//! noted first with [`prefer`], so even that error comes out in the requested format.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use everlock_host::config::LogFormat;

/// Whether lines the binary prints itself are JSON.
static JSON: AtomicBool = AtomicBool::new(false);

/// Notes the format requested on the command line or in the environment, before the
/// configuration is loaded.
pub(crate) fn prefer(format: Option<LogFormat>) {
    if let Some(format) = format {
        JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    }
}

/// Installs the `tracing` subscriber for `format` (`RUST_LOG` filters, `info` by default).
pub(crate) fn init(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (only possible in tests) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// Prints a fatal error on stderr: `error: <chain>` as text, or one JSON object.
pub(crate) fn fatal(error: &anyhow::Error) {
    // The cause chain on one line, each message once: one clear line per failure.
    let message = crate::error_chain::one_line(error);
    let line = if JSON.load(Ordering::Relaxed) {
        json_line("ERROR", &message, &[])
    } else {
        format!("error: {message}")
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints a notice for the operator on stdout, never through the logger (so it stays out
/// of log files that only collect stderr): `text` as is, or one JSON object with `fields`.
pub(crate) fn notice(text: &str, fields: &[(&str, &str)]) {
    let line = if JSON.load(Ordering::Relaxed) {
        json_line("INFO", text, fields)
    } else {
        text.to_owned()
    };
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// One JSON log object shaped like the subscriber's own (`level`, `target`, `fields`).
fn json_line(level: &str, message: &str, fields: &[(&str, &str)]) -> String {
    let mut map = serde_json::Map::new();
    map.insert("message".to_owned(), message.into());
    for (key, value) in fields {
        map.insert((*key).to_owned(), (*value).into());
    }
    serde_json::json!({ "level": level, "target": "everlock", "fields": map }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_one_object_with_escaped_text() {
        let line = json_line("ERROR", "bad \"file\"\nsecond line", &[("password", "p")]);
        assert!(!line.contains('\n'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["fields"]["message"], "bad \"file\"\nsecond line");
        assert_eq!(v["fields"]["password"], "p");
    }
}
