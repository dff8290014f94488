//! A kind's family (`/oci`, `/site`, `/hello`, ...): the instance sub-commands, their
//! `key=value` options (the generic ones and the settings the kind declares) and the
//! maintenance commands an instance offers.

use super::args::{Args, take1};
use crate::families::Scope;
use crate::usage::{Mistake, UsageError};

/// The generic per-instance key that overrides `[frontend-http] https-redirect`.
pub(crate) const HTTPS_REDIRECT: &str = "https-redirect";

/// A kind family's sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the fields are the arguments the variant's usage names"
)]
pub enum InstanceCmd {
    /// `list [--json]`.
    List { json: bool },
    /// `create <name> key=value...`.
    Create {
        name: String,
        options: Vec<(String, String)>,
    },
    /// `set <name> key=value...`.
    Set {
        name: String,
        options: Vec<(String, String)>,
    },
    /// `unset <name> key=value...`.
    Unset {
        name: String,
        options: Vec<(String, String)>,
    },
    /// `delete <name>`.
    Delete { name: String },
    /// A maintenance command the instance implements (`gc`, `history`, `rollback`).
    Run {
        command: String,
        name: String,
        args: Vec<String>,
    },
}

/// The `key=value` options `scope`'s `sub` accepts: the generic keys, then the settings the
/// kind declares (`create` and `set` only; `unset` removes vhosts and returns
/// `https-redirect` to the server-wide rule).
fn allowed_options(scope: Scope, sub: &str) -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = match sub {
        "create" => vec!["vhost", "store", "prefix"],
        "set" => vec!["vhost", "store"],
        _ => return vec!["vhost", HTTPS_REDIRECT],
    };
    if scope.access_root().is_some() {
        keys.push("auth");
    }
    keys.push(HTTPS_REDIRECT);
    // A kind may declare `auth` for its own values (a registry's `basic|token`): listed once.
    keys.extend(
        scope
            .console()
            .create_options
            .iter()
            .map(|o| o.key)
            .filter(|k| *k != "auth" || scope.access_root().is_none()),
    );
    keys
}

/// The settings `unset` may name alone, returning them to the kind's default: every
/// declared setting except the required ones (a site without a `mode` means nothing).
fn unsettable(scope: Scope) -> impl Iterator<Item = &'static str> {
    scope
        .console()
        .create_options
        .iter()
        .filter(|o| !o.required)
        .map(|o| o.key)
}

/// `unset <name> key...`: `vhost=<host>` removes a vhost; `https-redirect` and a declared
/// setting named alone return to the default.
fn parse_unset_word(scope: Scope, a: &Args<'_>, w: String) -> Result<(String, String), UsageError> {
    if w == HTTPS_REDIRECT || unsettable(scope).any(|k| k == w) {
        return Ok((w, String::new()));
    }
    if let Some(o) = scope.console().create_options.iter().find(|o| o.key == w) {
        return Err(a.error(Mistake::RequiredSetting(o.key.to_owned())));
    }
    match w.split_once('=') {
        Some(("vhost", v)) if !v.is_empty() => Ok(("vhost".to_owned(), v.to_owned())),
        _ => {
            let keys: Vec<String> = std::iter::once("vhost=<host>".to_owned())
                .chain(std::iter::once(HTTPS_REDIRECT.to_owned()))
                .chain(unsettable(scope).map(str::to_owned))
                .collect();
            Err(a.error(Mistake::UnknownOption {
                got: w,
                expected: keys,
            }))
        }
    }
}

/// Parses `key=value` words against the options `scope`'s `sub` accepts; at least one.
fn parse_options(
    scope: Scope,
    sub: &str,
    a: &Args<'_>,
    words: Vec<String>,
) -> Result<Vec<(String, String)>, UsageError> {
    let allowed = allowed_options(scope, sub);
    let mut out = Vec::new();
    for w in words {
        // `unset <name> https-redirect` names the key alone: there is no value to give.
        if sub == "unset" {
            out.push(parse_unset_word(scope, a, w)?);
            continue;
        }
        let Some((k, v)) = w.split_once('=') else {
            return Err(a.error(Mistake::NotKeyValue(w)));
        };
        if !allowed.contains(&k) {
            return Err(a.error(Mistake::UnknownOption {
                got: k.to_owned(),
                expected: allowed.iter().map(|o| (*o).to_owned()).collect(),
            }));
        }
        if v.is_empty() {
            return Err(a.error(Mistake::EmptyValue(k.to_owned())));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    // `create` reports its missing required keys itself, which says more than "an option".
    if out.is_empty() && sub != "create" {
        return Err(a.error(Mistake::MissingOption(
            allowed.iter().map(|k| (*k).to_owned()).collect(),
        )));
    }
    Ok(out)
}

/// `create`, `set` or `unset <name> key=value...`; `create` needs the scope's required keys.
fn parse_edit(scope: Scope, sub: &str, a: &Args<'_>) -> Result<InstanceCmd, UsageError> {
    let (head, tail) = a.at_least(&["<name>"])?;
    let name = take1(head);
    let options = parse_options(scope, sub, a, tail)?;
    Ok(match sub {
        "create" => {
            let declared = scope.console().create_options.iter();
            let required =
                std::iter::once("vhost").chain(declared.filter(|o| o.required).map(|o| o.key));
            for key in required {
                if !options.iter().any(|(k, _)| k == key) {
                    return Err(a.error(Mistake::Missing(format!("{key}=..."))));
                }
            }
            InstanceCmd::Create { name, options }
        }
        "set" => InstanceCmd::Set { name, options },
        _ => InstanceCmd::Unset { name, options },
    })
}

/// Parses a kind family's sub-command; unknown names are the instance's own commands.
pub(super) fn parse_instances(
    scope: Scope,
    sub: &str,
    a: &Args<'_>,
) -> Result<InstanceCmd, UsageError> {
    Ok(match sub {
        "list" => {
            a.exactly(&[])?;
            InstanceCmd::List { json: a.json }
        }
        "create" | "set" | "unset" => parse_edit(scope, sub, a)?,
        "delete" => InstanceCmd::Delete {
            name: take1(a.exactly(&["<name>"])?),
        },
        command => {
            let (head, args) = a.at_least(&["<name>"])?;
            InstanceCmd::Run {
                command: command.to_owned(),
                name: take1(head),
                args,
            }
        }
    })
}

/// Whether a settings key names a secret (`password`, `api-token`, `secret`, ...).
pub(crate) fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "key", "credential"]
        .iter()
        .any(|s| key.contains(s))
}

/// A console word's TOML inline value (`[{repositories="team/*", bytes=1}]`), read as the
/// value of a one-key document so the `toml` crate parses exactly what a file would hold.
pub(crate) fn parse_inline(word: &str) -> Option<toml::Value> {
    let mut doc: toml::Table = format!("v = {word}").parse().ok()?;
    doc.remove("v")
}

/// `value` with the value of every secret-named key in its tables, at any depth, replaced
/// by `<redacted>` (a webhook's `secret` inside `webhooks=[...]`).
pub(crate) fn redact_value(value: &toml::Value) -> toml::Value {
    match value {
        toml::Value::Table(t) => toml::Value::Table(redact_table(t)),
        toml::Value::Array(items) => toml::Value::Array(items.iter().map(redact_value).collect()),
        other => other.clone(),
    }
}

/// A settings table as listings show it: secret-named keys redacted at every depth.
pub(crate) fn redact_table(table: &toml::Table) -> toml::Table {
    table
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_key(k) {
                toml::Value::String(REDACTED.to_owned())
            } else {
                redact_value(v)
            };
            (k.clone(), shown)
        })
        .collect()
}

/// Placeholder for a redacted secret.
const REDACTED: &str = "<redacted>";

/// An option's value as the audit log records it: a structured value with its secrets
/// redacted; a word that does not parse but names a secret key is redacted whole, since
/// where its secret begins cannot be known.
pub(crate) fn redact_word(word: &str) -> String {
    if !word.starts_with(['[', '{']) {
        return word.to_owned();
    }
    match parse_inline(word) {
        Some(v @ (toml::Value::Array(_) | toml::Value::Table(_))) => redact_value(&v).to_string(),
        Some(_) => word.to_owned(),
        None if is_secret_key(word) => REDACTED.to_owned(),
        None => word.to_owned(),
    }
}
