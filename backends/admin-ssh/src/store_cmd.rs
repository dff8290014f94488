//! The `/store` family: the stores of the data directory for system administrators: list
//! them with their figures, read a store's log, verify it, collect its garbage, set its
//! retention policy. This module holds the grammar and runs a parsed command through the
//! host's store administration (the `HostAdmin` capability); `store_render` formats the
//! results.

use std::time::Duration;

use everlock_host::HostAdmin;
use everlock_host::api::{MAX_STORE_LOG, StoreAdminError};
use everlock_host::auth::Principal;
use everlock_host::storage::{DEFAULT_GRACE, RetentionPolicy, VerifyReport};

use crate::families::Family;
use crate::store_render;
use crate::usage::{Mistake, UsageError};

/// How many commits `/store log` shows without `-n`.
pub const DEFAULT_LOG: u64 = 20;

/// `/store` sub-commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the fields are the arguments the variant's usage names"
)]
pub enum StoreCmd {
    /// `list [--json]`.
    List { json: bool },
    /// `log <store> [-n N] [--json]`.
    Log { store: String, n: u64, json: bool },
    /// `verify <store>`.
    Verify { store: String },
    /// `gc <store> [--grace-secs N] [--dry-run]`; no `--grace-secs` means the default grace.
    Gc {
        store: String,
        grace_secs: Option<u64>,
        dry_run: bool,
    },
    /// `retention <store> <policy>`.
    Retention {
        store: String,
        policy: RetentionPolicy,
    },
}

/// The flags each sub-command accepts, and whether the flag takes a value.
fn flags(sub: &str) -> &'static [(&'static str, bool)] {
    match sub {
        "list" => &[("--json", false)],
        "log" => &[("-n", true), ("--json", false)],
        "gc" => &[("--grace-secs", true), ("--dry-run", false)],
        _ => &[],
    }
}

/// The words of one sub-command split into positional arguments and flags.
struct Parsed<'a> {
    sub: &'a str,
    positional: Vec<&'a str>,
    flags: Vec<(&'a str, Option<&'a str>)>,
}

impl<'a> Parsed<'a> {
    fn split(sub: &'a str, words: &[&'a str]) -> Result<Self, UsageError> {
        let mut parsed = Parsed {
            sub,
            positional: Vec::new(),
            flags: Vec::new(),
        };
        let known = flags(sub);
        let mut it = words.iter().copied();
        while let Some(word) = it.next() {
            if !word.starts_with('-') {
                parsed.positional.push(word);
                continue;
            }
            // `--grace-secs=0` reads like `--grace-secs 0`.
            let (name, inline) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (word, None),
            };
            let Some((flag, takes_value)) = known.iter().find(|(f, _)| *f == name) else {
                return Err(parsed.error(Mistake::UnknownFlag(name.to_owned())));
            };
            if parsed.flags.iter().any(|(f, _)| f == flag) {
                return Err(parsed.error(Mistake::RepeatedFlag(flag)));
            }
            let value = match (takes_value, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => Some(
                    it.next()
                        .ok_or_else(|| parsed.error(Mistake::FlagNeedsNumber(flag)))?,
                ),
                (false, Some(_)) => {
                    return Err(parsed.error(Mistake::FlagTakesNoValue(flag)));
                }
                (false, None) => None,
            };
            parsed.flags.push((flag, value));
        }
        Ok(parsed)
    }

    fn error(&self, mistake: Mistake) -> UsageError {
        UsageError::new(mistake, Family::Store.usage_of(self.sub))
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| *f == flag)
    }

    /// The value of a numeric flag, checked against `min..=max`.
    fn number(&self, flag: &'static str, min: u64, max: u64) -> Result<Option<u64>, UsageError> {
        let Some((_, Some(text))) = self.flags.iter().find(|(f, _)| *f == flag) else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.error(Mistake::OutOfRange {
                flag,
                min,
                max,
                got: (*text).to_owned(),
            })),
        }
    }

    /// Exactly the positional arguments `names`.
    fn exactly(&self, names: &[&str]) -> Result<Vec<String>, UsageError> {
        if let Some(missing) = names.get(self.positional.len()) {
            return Err(self.error(Mistake::Missing((*missing).to_owned())));
        }
        if let Some(extra) = self.positional.get(names.len()) {
            return Err(self.error(Mistake::Unexpected((*extra).to_owned())));
        }
        Ok(self.positional.iter().map(|w| (*w).to_owned()).collect())
    }
}

/// Parses the words after `/store <sub>`; `sub` is one of the family's sub-commands.
pub fn parse(sub: &str, words: &[&str]) -> Result<StoreCmd, UsageError> {
    let p = Parsed::split(sub, words)?;
    let first = |v: Vec<String>| v.into_iter().next().unwrap_or_default();
    Ok(match sub {
        "list" => {
            p.exactly(&[])?;
            StoreCmd::List {
                json: p.has("--json"),
            }
        }
        "log" => StoreCmd::Log {
            store: first(p.exactly(&["<store>"])?),
            n: p.number("-n", 1, MAX_STORE_LOG)?.unwrap_or(DEFAULT_LOG),
            json: p.has("--json"),
        },
        "verify" => StoreCmd::Verify {
            store: first(p.exactly(&["<store>"])?),
        },
        "gc" => StoreCmd::Gc {
            store: first(p.exactly(&["<store>"])?),
            // A year bounds the grace period only so the number cannot overflow a clock.
            grace_secs: p.number("--grace-secs", 0, 366 * 86_400)?,
            dry_run: p.has("--dry-run"),
        },
        _ => {
            let args = p.exactly(&["<store>", "<policy>"])?;
            let mut it = args.into_iter();
            let store = it.next().unwrap_or_default();
            let text = it.next().unwrap_or_default();
            let policy = text.parse().map_err(|e| p.error(Mistake::Policy(e)))?;
            StoreCmd::Retention { store, policy }
        }
    })
}

/// Why a `/store` command failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreCmdError {
    /// The host's store administration refused or failed.
    #[error(transparent)]
    Admin(#[from] StoreAdminError),
    /// `/store verify` found problems: printed summary line first, then every problem.
    #[error("{}", store_render::verify_failure(.store, .report))]
    VerifyFailed {
        /// The store verified.
        store: String,
        /// What verification found.
        report: VerifyReport,
    },
}

/// Runs a `/store` command as `actor`.
pub async fn execute(
    host: &dyn HostAdmin,
    actor: &Principal,
    cmd: StoreCmd,
) -> Result<String, StoreCmdError> {
    match cmd {
        StoreCmd::List { json } => {
            let rows = host.store_list(actor).await?;
            Ok(store_render::list(&rows, json))
        }
        StoreCmd::Log { store, n, json } => {
            let log = host.store_log(actor, &store, n).await?;
            Ok(store_render::log(&store, &log, json))
        }
        StoreCmd::Verify { store } => {
            let report = host.store_verify(actor, &store).await?;
            if report.is_ok() {
                Ok(store_render::verify_ok(&store, &report))
            } else {
                Err(StoreCmdError::VerifyFailed { store, report })
            }
        }
        StoreCmd::Gc {
            store,
            grace_secs,
            dry_run,
        } => {
            let grace = grace_secs.map_or(DEFAULT_GRACE, Duration::from_secs);
            let gc = host.store_gc(actor, &store, grace, dry_run).await?;
            Ok(store_render::gc(&store, &gc, dry_run))
        }
        StoreCmd::Retention { store, policy } => {
            host.store_set_retention(actor, &store, policy).await?;
            Ok(format!(
                "retention of `{store}` set to {policy}; the next gc or maintenance run applies it"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, parse as parse_line};

    fn ok(line: &str) -> StoreCmd {
        match parse_line(line) {
            Ok(Command::Store(cmd)) => cmd,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn lines_parse_into_store_commands() {
        let s = String::from;
        let cases = [
            ("/store list", StoreCmd::List { json: false }),
            ("/store list --json", StoreCmd::List { json: true }),
            (
                "/store log site-http-welcome",
                StoreCmd::Log {
                    store: s("site-http-welcome"),
                    n: DEFAULT_LOG,
                    json: false,
                },
            ),
            (
                "/store log x -n 1 --json",
                StoreCmd::Log {
                    store: s("x"),
                    n: 1,
                    json: true,
                },
            ),
            (
                "/store log --json -n=10000 x",
                StoreCmd::Log {
                    store: s("x"),
                    n: 10_000,
                    json: true,
                },
            ),
            (
                "/store verify everlock-users",
                StoreCmd::Verify {
                    store: s("everlock-users"),
                },
            ),
            (
                "/store gc x",
                StoreCmd::Gc {
                    store: s("x"),
                    grace_secs: None,
                    dry_run: false,
                },
            ),
            (
                "/store gc x --grace-secs 0 --dry-run",
                StoreCmd::Gc {
                    store: s("x"),
                    grace_secs: Some(0),
                    dry_run: true,
                },
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(ok(line), expected, "{line}");
        }
        assert_eq!(
            parse_line("/store").unwrap(),
            Command::Help(Some(Family::Store))
        );
    }

    #[test]
    fn retention_lines_parse_into_policies() {
        let s = String::from;
        let cases = [
            (
                "/store retention x keep-commits=5",
                StoreCmd::Retention {
                    store: s("x"),
                    policy: RetentionPolicy::KeepCommits(5),
                },
            ),
            (
                "/store retention x purge-after=2h",
                StoreCmd::Retention {
                    store: s("x"),
                    policy: RetentionPolicy::PurgeAfter(Duration::from_secs(7200)),
                },
            ),
            (
                "/store retention x keep-all",
                StoreCmd::Retention {
                    store: s("x"),
                    policy: RetentionPolicy::KeepAll,
                },
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(ok(line), expected, "{line}");
        }
    }

    /// Each line fails with `message` as its first line, then a usage containing `usage`.
    fn check_mistakes(cases: &[(&str, &str, &str)]) {
        for (line, message, usage) in cases {
            let e = parse_line(line).expect_err(line).to_string();
            let (first, rest) = e.split_once('\n').unwrap_or((&e, ""));
            assert_eq!(first, *message, "{line}");
            assert!(
                rest.starts_with("usage:") && rest.contains(usage),
                "{line}: {e}"
            );
        }
    }

    #[test]
    fn mistakes_in_list_and_log_give_one_line_and_the_usage() {
        check_mistakes(&[
            (
                "/store frob",
                "unknown sub-command `frob` for /store",
                "/store list [--json]",
            ),
            (
                "/store list x",
                "unexpected argument `x`",
                "usage: /store list",
            ),
            (
                "/store list --dry-run",
                "unknown flag `--dry-run`",
                "usage: /store list",
            ),
            ("/store log", "missing <store>", "usage: /store log <store>"),
            (
                "/store log x -n",
                "`-n` needs a number",
                "usage: /store log",
            ),
            (
                "/store log x -n 0",
                "`-n` must be a whole number from 1 to 10000, got `0`",
                "usage: /store log",
            ),
            (
                "/store log x -n lots",
                "`-n` must be a whole number from 1 to 10000, got `lots`",
                "usage: /store log",
            ),
            (
                "/store log x -n 1 -n 2",
                "`-n` given twice",
                "usage: /store log",
            ),
            (
                "/store log x --json=yes",
                "`--json` takes no value",
                "usage: /store log",
            ),
        ]);
    }

    #[test]
    fn mistakes_in_verify_gc_and_retention_give_one_line_and_the_usage() {
        check_mistakes(&[
            (
                "/store verify",
                "missing <store>",
                "usage: /store verify <store>",
            ),
            (
                "/store verify a b",
                "unexpected argument `b`",
                "usage: /store verify",
            ),
            (
                "/store gc x --grace-secs -1",
                "`--grace-secs` must be a whole number from 0 to 31622400, got `-1`",
                "usage: /store gc",
            ),
            (
                "/store gc x --untagged",
                "unknown flag `--untagged`",
                "usage: /store gc",
            ),
            (
                "/store retention x",
                "missing <policy>",
                "usage: /store retention",
            ),
            (
                "/store retention x keep-some",
                "invalid retention policy \"keep-some\": unknown policy (use keep-all, purge-after=<N>s|m|h|d or keep-commits=<N>)",
                "usage: /store retention",
            ),
            (
                "/store retention x keep-commits=0",
                "invalid retention policy \"keep-commits=0\": keep-commits must be at least 1 (use keep-all, purge-after=<N>s|m|h|d or keep-commits=<N>)",
                "usage: /store retention",
            ),
        ]);
    }
}
