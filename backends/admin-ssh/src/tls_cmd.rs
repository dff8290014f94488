//! The `/tls` family: which certificate each name is served with and where it comes from
//! (`acme`, `configured`, `local`), and ordering a new ACME certificate now. The work is the
//! host's, through the `HostAdmin` capability; this module holds the grammar and the output.

use everlock_host::HostAdmin;
use everlock_host::admin_tls::unix_now;
use everlock_host::api::{TlsAdminError, TlsRow};
use everlock_host::auth::Principal;

use crate::families::Family;
use crate::usage::{Mistake, UsageError};

/// `/tls` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCmd {
    /// `list [--json]`.
    List {
        /// Machine-readable output.
        json: bool,
    },
    /// `renew <name>`.
    Renew {
        /// The vhost.
        name: String,
    },
}

fn usage_error(sub: &str, mistake: Mistake) -> UsageError {
    UsageError::new(mistake, Family::Tls.usage_of(sub))
}

/// Parses the words after `/tls <sub>`; `sub` is one of the family's sub-commands.
pub fn parse(sub: &str, words: &[&str]) -> Result<TlsCmd, UsageError> {
    match (sub, words) {
        ("list", []) => Ok(TlsCmd::List { json: false }),
        ("list", ["--json"]) => Ok(TlsCmd::List { json: true }),
        ("list", [extra, ..]) => Err(usage_error(sub, Mistake::Unexpected((*extra).to_owned()))),
        ("renew", [name]) if !name.starts_with('-') => Ok(TlsCmd::Renew {
            name: name.to_ascii_lowercase(),
        }),
        ("renew", []) => Err(usage_error(sub, Mistake::Missing("<name>".to_owned()))),
        (_, _) => Err(usage_error(sub, Mistake::ExactlyOne("<name>"))),
    }
}

/// Runs a `/tls` command as `actor`.
pub async fn execute(
    host: &dyn HostAdmin,
    actor: &Principal,
    cmd: TlsCmd,
) -> Result<String, TlsAdminError> {
    match cmd {
        TlsCmd::List { json } => {
            let rows = host.tls_list(actor).await?;
            Ok(if json {
                list_json(&rows)
            } else {
                list_text(&rows)
            })
        }
        TlsCmd::Renew { name } => {
            host.tls_renew(actor, &name).await?;
            Ok(format!(
                "ordering a new certificate for {name}; /tls list shows the outcome"
            ))
        }
    }
}

fn list_text(rows: &[TlsRow]) -> String {
    if rows.is_empty() {
        return "no names\n".to_owned();
    }
    let now = unix_now();
    let mut out = String::from("NAME  SOURCE  NOT-AFTER  ISSUER  STATUS\n");
    for r in rows {
        let not_after = r.cert.as_ref().map(|c| c.not_after);
        let status = match (&r.error, not_after) {
            (Some(e), _) => format!("error: {e}"),
            (None, None) => "pending".to_owned(),
            (None, Some(t)) if t < now => "expired".to_owned(),
            (None, Some(_)) => "ok".to_owned(),
        };
        let issuer = r.cert.as_ref().map_or("-", |c| c.issuer.as_str());
        out.push_str(&format!(
            "{}  {}  {}  {}  {}\n",
            r.name,
            r.source.as_str(),
            r.cert
                .as_ref()
                .map_or_else(|| "-".to_owned(), |c| c.not_after_date()),
            issuer,
            status
        ));
    }
    out
}

fn list_json(rows: &[TlsRow]) -> String {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "source": r.source.as_str(),
                "issuer": r.cert.as_ref().map(|c| c.issuer.clone()),
                "not_after": r.cert.as_ref().map(|c| c.not_after),
                "serial": r.cert.as_ref().map(|c| c.serial.clone()),
                "error": r.error,
            })
        })
        .collect();
    let mut text = serde_json::Value::Array(items).to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::command::{Command, parse as parse_line};
    use everlock_host::api::CertInfo;
    use everlock_host::api::CertSource;

    fn ok(line: &str) -> TlsCmd {
        match parse_line(line) {
            Ok(Command::Tls(cmd)) => cmd,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn lines_parse_into_tls_commands() {
        assert_eq!(ok("/tls list"), TlsCmd::List { json: false });
        assert_eq!(ok("/tls list --json"), TlsCmd::List { json: true });
        assert_eq!(
            ok("/tls renew WWW.Example.com"),
            TlsCmd::Renew {
                name: "www.example.com".to_owned()
            }
        );
        for bad in ["/tls list x", "/tls renew", "/tls renew a b", "/tls nope"] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_shows_source_expiry_and_errors() {
        let rows = vec![
            TlsRow {
                name: "a.example".to_owned(),
                source: CertSource::Acme,
                cert: Some(CertInfo {
                    issuer: "CN=Pebble".to_owned(),
                    not_after: 4_102_444_800,
                    not_before: 4_000_000_000,
                    serial: "01".to_owned(),
                }),
                error: None,
            },
            TlsRow {
                name: "b.example".to_owned(),
                source: CertSource::Acme,
                cert: None,
                error: Some("boom".to_owned()),
            },
        ];
        let text = list_text(&rows);
        assert!(
            text.contains("a.example  acme  2100-01-01  CN=Pebble  ok"),
            "{text}"
        );
        assert!(
            text.contains("b.example  acme  -  -  error: boom"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&list_json(&rows)).unwrap();
        assert_eq!(json[0]["not_after"], 4_102_444_800_i64);
        assert_eq!(json[1]["error"], "boom");
    }
}
