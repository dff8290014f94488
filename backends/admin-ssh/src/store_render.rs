//! Rendering the results of `/store` commands: aligned columns for people, JSON for scripts.
//! Pure functions of the host's results, so they are tested without a host.

use everlock_host::api::{StoreGc, StoreRow};
use everlock_host::storage::{CommitInfo, VerifyReport};
use serde_json::{Value, json};

/// `/store list`: one row per store under a header, columns padded to their widest cell; a
/// store that could not be read shows why instead of its figures.
pub(crate) fn list(rows: &[StoreRow], as_json: bool) -> String {
    if as_json {
        return to_json(&rows.iter().map(row_json).collect::<Vec<_>>());
    }
    if rows.is_empty() {
        return "no stores".to_owned();
    }
    let header = [
        "STORE",
        "USED BY",
        "OBJECTS",
        "BYTES",
        "ON DISK",
        "COMMITS",
        "RETENTION",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for r in rows {
        let mut cells = vec![r.name.clone(), r.used_by.clone()];
        match &r.details {
            Ok(d) => cells.extend([
                d.stats.objects.to_string(),
                human_bytes(d.stats.bytes),
                human_bytes(d.disk_bytes),
                d.stats.commits.to_string(),
                d.retention.clone(),
            ]),
            Err(e) => cells.push(format!("error: {e}")),
        }
        table.push(cells);
    }
    // Numbers align right, text left; the last cell of a row is never padded.
    let right = [false, false, true, true, true, true, false];
    let mut widths = [0usize; 7];
    // The error of an unreadable store spans the figure columns, so it sets no width.
    for cells in table.iter().filter(|c| c.len() == header.len()) {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for cells in &table {
        let last = cells.len().saturating_sub(1);
        let line: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths.get(i).copied().unwrap_or(0);
                match (i == last, right.get(i).copied().unwrap_or(false)) {
                    (true, false) => c.clone(),
                    (_, true) => format!("{c:>w$}"),
                    (false, false) => format!("{c:<w$}"),
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn row_json(r: &StoreRow) -> Value {
    let mut v = json!({ "name": r.name, "used_by": r.used_by });
    let fields = match &r.details {
        Ok(d) => json!({
            "objects": d.stats.objects,
            "bytes": d.stats.bytes,
            "disk_bytes": d.disk_bytes,
            "commits": d.stats.commits,
            "retention": d.retention,
            "head": d.stats.head.as_ref().map(commit_json),
            "error": Value::Null,
        }),
        Err(e) => json!({ "error": e }),
    };
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), fields) {
        obj.extend(more);
    }
    v
}

fn commit_json(c: &CommitInfo) -> Value {
    json!({
        "seq": c.seq,
        "id": c.id.to_string(),
        "parent": c.parent.map(|p| p.to_string()),
        "time_ms": c.time_ms,
        "time": everlock_host::storage::rfc3339(c.time_ms),
        "principal": c.principal,
        "message": c.message,
    })
}

/// `/store log`: newest first, one line per commit (`seq id time principal: first line`).
pub(crate) fn log(store: &str, commits: &[CommitInfo], as_json: bool) -> String {
    if as_json {
        return to_json(&commits.iter().map(commit_json).collect::<Vec<_>>());
    }
    if commits.is_empty() {
        return format!("store `{store}` has no commits");
    }
    let width = commits
        .iter()
        .map(|c| c.seq.to_string().len())
        .max()
        .unwrap_or(1);
    commits
        .iter()
        .map(|c| {
            let first = c.message.lines().next().unwrap_or("");
            format!(
                "{:>width$}  {}  {}  {}: {first}\n",
                c.seq,
                c.id,
                everlock_host::storage::rfc3339(c.time_ms),
                c.principal
            )
        })
        .collect()
}

/// `/store verify` of a store that verified cleanly: a summary.
pub(crate) fn verify_ok(store: &str, report: &VerifyReport) -> String {
    format!(
        "ok: `{store}`: {} commits, {} objects, {} bytes re-hashed",
        report.commits, report.objects, report.bytes
    )
}

/// `/store verify` of a store with problems (printed as the error, so the exit status is 1):
/// the summary line first, then every problem.
pub(crate) fn verify_failure(store: &str, report: &VerifyReport) -> String {
    let mut out = format!(
        "verify failed: {} problem(s) in store `{store}`",
        report.problems.len()
    );
    for p in &report.problems {
        out.push_str(&format!("\n  {p}"));
    }
    out
}

/// `/store gc`: the policy applied, the purge commit if any, and what was (or would be) freed.
pub(crate) fn gc(store: &str, gc: &StoreGc, dry_run: bool) -> String {
    let r = &gc.report;
    let mut out = format!("store `{store}`: retention {}\n", gc.retention);
    if let Some(c) = &r.purge_commit {
        out.push_str(&format!("purge commit: {} {}\n", c.seq, c.id));
    }
    let (what, verb) = if dry_run {
        ("dry run, nothing changed", "would remove")
    } else {
        ("gc", "removed")
    };
    out.push_str(&format!(
        "{what}: {} versions purged; {verb} {} objects ({}) and {} orphan files",
        r.purged_versions,
        r.objects_removed,
        human_bytes(r.bytes_freed),
        r.orphan_files_removed
    ));
    out
}

/// Bytes in IEC units with one decimal (`512 B`, `1.5 KiB`, `52.0 MiB`).
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    // Tenths of the unit, computed in integers so no float rounding shows.
    let mut unit = 0usize;
    let mut scaled = u128::from(n);
    while scaled >= 1024 * 1024 && unit + 1 < UNITS.len() {
        scaled /= 1024;
        unit += 1;
    }
    let tenths = (scaled * 10 + 512) / 1024;
    let name = UNITS.get(unit).copied().unwrap_or("EiB");
    format!("{}.{} {name}", tenths / 10, tenths % 10)
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use everlock_host::api::StoreDetails;
    use everlock_host::storage::{GcReport, Problem, StoreStats};

    use super::*;

    fn commit(seq: u64, message: &str) -> CommitInfo {
        CommitInfo {
            seq,
            id: format!("{seq:064x}").parse().unwrap(),
            parent: None,
            time_ms: 1_700_000_000_123,
            principal: "admin".to_owned(),
            message: message.to_owned(),
        }
    }

    fn rows() -> Vec<StoreRow> {
        let details = |objects, bytes, commits, retention: &str| {
            Ok(StoreDetails {
                stats: StoreStats {
                    objects,
                    bytes,
                    commits,
                    head: Some(commit(commits, "m")),
                },
                disk_bytes: bytes + 4096,
                retention: retention.to_owned(),
            })
        };
        vec![
            StoreRow {
                name: "everlock-system".to_owned(),
                used_by: "(system)".to_owned(),
                details: details(3, 900, 12, "keep-all"),
            },
            StoreRow {
                name: "site-http-welcome".to_owned(),
                used_by: "site-http/welcome".to_owned(),
                details: details(1234, 5 << 20, 7, "keep-commits=20"),
            },
            StoreRow {
                name: "x".to_owned(),
                used_by: "-".to_owned(),
                details: Err("store in use by another process: x".to_owned()),
            },
        ]
    }

    #[test]
    fn list_aligns_columns_and_shows_errors() {
        let text = list(&rows(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "STORE              USED BY            OBJECTS    BYTES  ON DISK  COMMITS  RETENTION",
                "everlock-system    (system)                 3    900 B  4.9 KiB       12  keep-all",
                "site-http-welcome  site-http/welcome     1234  5.0 MiB  5.0 MiB        7  keep-commits=20",
                "x                  -                  error: store in use by another process: x",
            ]
        );
        assert_eq!(list(&[], false), "no stores");
    }

    #[test]
    fn list_json_is_machine_readable() {
        let v: Value = serde_json::from_str(&list(&rows(), true)).unwrap();
        assert_eq!(v[1]["name"], "site-http-welcome");
        assert_eq!(v[1]["used_by"], "site-http/welcome");
        assert_eq!(v[1]["bytes"], 5 << 20);
        assert_eq!(v[1]["commits"], 7);
        assert_eq!(v[1]["retention"], "keep-commits=20");
        assert_eq!(v[1]["head"]["seq"], 7);
        assert_eq!(v[1]["error"], Value::Null);
        assert_eq!(v[2]["error"], "store in use by another process: x");
        assert!(v[2].get("commits").is_none());
    }

    #[test]
    fn log_verify_and_gc_texts() {
        let log_text = log("s", &[commit(10, "two\nlines"), commit(9, "one")], false);
        let id10 = format!("{:064x}", 10);
        assert_eq!(
            log_text.lines().next().unwrap(),
            format!("10  {id10}  2023-11-14T22:13:20Z  admin: two")
        );
        assert!(log_text.lines().nth(1).unwrap().starts_with(" 9  "));
        assert_eq!(log("s", &[], false), "store `s` has no commits");
        let v: Value = serde_json::from_str(&log("s", &[commit(1, "m")], true)).unwrap();
        assert_eq!(v[0]["id"], format!("{:064x}", 1));
        assert_eq!(v[0]["time"], "2023-11-14T22:13:20Z");

        let mut report = VerifyReport {
            commits: 2,
            objects: 3,
            bytes: 4,
            problems: Vec::new(),
        };
        assert_eq!(
            verify_ok("s", &report),
            "ok: `s`: 2 commits, 3 objects, 4 bytes re-hashed"
        );
        report.problems.push(Problem::Head {
            path: "p".to_owned(),
            reason: "missing".to_owned(),
        });
        assert_eq!(
            verify_failure("s", &report),
            "verify failed: 1 problem(s) in store `s`\n  bad head entry \"p\": missing"
        );

        let outcome = StoreGc {
            retention: "keep-all".to_owned(),
            report: GcReport {
                objects_removed: 2,
                bytes_freed: 3 << 20,
                ..GcReport::default()
            },
        };
        assert_eq!(
            gc("s", &outcome, true),
            "store `s`: retention keep-all\n\
             dry run, nothing changed: 0 versions purged; would remove 2 objects (3.0 MiB) and 0 orphan files"
        );
        assert!(
            gc("s", &outcome, false)
                .ends_with("gc: 0 versions purged; removed 2 objects (3.0 MiB) and 0 orphan files")
        );
    }

    #[test]
    fn byte_formats() {
        for (n, text) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (52 * 1024 * 1024, "52.0 MiB"),
            (u64::MAX, "16.0 EiB"),
        ] {
            assert_eq!(human_bytes(n), text, "{n}");
        }
    }
}
