//! `/oci usage` (bytes per repository and per quota) and `/oci webhooks` (configured
//! webhooks, queued deliveries and recent outcomes). Both need read access to the whole
//! registry: they describe every repository.

use std::fmt::Write as _;

use everlock_host::CommandError;
use everlock_host::storage::{StorageError, Store};
use serde::Serialize;

use super::content::json_flag;
use crate::registry::Registry;
use crate::webhooks::worker::{QUEUE, Queued};

fn failed(e: impl std::fmt::Display) -> CommandError {
    CommandError::Failed(e.to_string())
}

#[derive(Serialize)]
struct UsageReport {
    repositories: Vec<crate::quota::RepoLine>,
    quotas: Vec<crate::quota::QuotaLine>,
}

/// `usage <instance> [--json]`.
pub(crate) async fn usage(
    reg: &Registry,
    store: &Store,
    mut args: Vec<String>,
) -> Result<String, CommandError> {
    let usage_line = "usage <instance> [--json]";
    let json = json_flag(&mut args, usage_line)?;
    if !args.is_empty() {
        return Err(CommandError::Usage(format!("usage: {usage_line}")));
    }
    let usage = reg.quota.usage(store).await?;
    let report = UsageReport {
        repositories: usage.repositories(),
        quotas: usage.quotas(&reg.settings.quota),
    };
    if json {
        return serde_json::to_string_pretty(&report)
            .map(|s| s + "\n")
            .map_err(failed);
    }
    let mut out = String::from("REPOSITORY  BYTES  MANIFESTS\n");
    for r in &report.repositories {
        let _ = writeln!(out, "{}  {}  {}", r.repository, r.bytes, r.manifests);
    }
    if !report.quotas.is_empty() {
        out.push_str("QUOTA  USED  LIMIT\n");
        for q in &report.quotas {
            let _ = writeln!(out, "{}  {}  {}", q.repositories, q.used, q.limit);
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct Pending {
    id: String,
    url: String,
    attempts: u32,
    next_attempt: String,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct WebhooksReport {
    webhooks: Vec<Hook>,
    queued: Vec<Pending>,
    recent: Vec<crate::webhooks::Outcome>,
}

#[derive(Serialize)]
struct Hook {
    url: String,
    events: Vec<crate::webhooks::Action>,
    signed: bool,
}

/// `webhooks <instance> [--json]`.
pub(crate) async fn webhooks(
    reg: &Registry,
    store: &Store,
    mut args: Vec<String>,
) -> Result<String, CommandError> {
    let usage_line = "webhooks <instance> [--json]";
    let json = json_flag(&mut args, usage_line)?;
    if !args.is_empty() {
        return Err(CommandError::Usage(format!("usage: {usage_line}")));
    }
    let mut queued = Vec::new();
    for e in store.list(QUEUE).await? {
        let bytes = match store.read(&e.path).await {
            Ok(b) => b,
            Err(StorageError::NotFound(_)) => continue,
            Err(err) => return Err(CommandError::from(err)),
        };
        let Ok(q) = serde_json::from_slice::<Queued>(&bytes) else {
            continue;
        };
        queued.push(Pending {
            id: e.path.strip_prefix(QUEUE).unwrap_or("").to_owned(),
            url: q.url,
            attempts: q.attempts,
            next_attempt: super::content::rfc3339(q.next_ms),
            last_error: q.last_error,
        });
    }
    let report = WebhooksReport {
        webhooks: reg
            .webhooks
            .hooks()
            .iter()
            .map(|h| Hook {
                url: h.url.clone(),
                events: h.events.clone(),
                signed: h.secret.is_some(),
            })
            .collect(),
        queued,
        recent: reg.webhooks.recent(),
    };
    if json {
        return serde_json::to_string_pretty(&report)
            .map(|s| s + "\n")
            .map_err(failed);
    }
    let mut out = String::new();
    if report.webhooks.is_empty() {
        out.push_str("no webhooks configured\n");
    }
    for h in &report.webhooks {
        let events: Vec<String> = h
            .events
            .iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let signed = if h.signed { ", signed" } else { "" };
        let _ = writeln!(out, "webhook {} ({}{signed})", h.url, events.join(", "));
    }
    let _ = writeln!(out, "queued: {}", report.queued.len());
    for q in &report.queued {
        let error = q.last_error.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "  {} -> {}: {} attempts, next {}, last error: {error}",
            q.id, q.url, q.attempts, q.next_attempt
        );
    }
    let _ = writeln!(out, "recent deliveries: {}", report.recent.len());
    for r in &report.recent {
        let _ = writeln!(
            out,
            "  {} {} -> {} ({}, attempt {}): {}",
            r.time, r.repository, r.url, r.id, r.attempts, r.result
        );
    }
    Ok(out)
}
