//! `/backends`: listing the compiled-in kinds and enabling or disabling them live.

use everlock_host::BackendInfo;
use everlock_host::auth::Principal;
use serde_json::json;

use super::{Console, Failure, Outcome, to_json};
use crate::command::BackendsCmd;

impl Console {
    /// Resolves `oci`, `oci-http` or `backend-oci-http` to a compiled-in kind.
    fn resolve_kind(&self, name: &str) -> Result<&'static str, Failure> {
        let name = name.strip_prefix("backend-").unwrap_or(name);
        let kinds: Vec<&'static str> = self.admin.kinds().iter().map(|k| k.kind).collect();
        if let Some(kind) = kinds.iter().find(|k| **k == name) {
            return Ok(kind);
        }
        let matches: Vec<&'static str> = kinds
            .iter()
            .copied()
            .filter(|k| {
                k.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(Failure::UnknownBackend {
                name: name.to_owned(),
                known: kinds,
            }),
            many => Err(Failure::AmbiguousBackend {
                name: name.to_owned(),
                matches: many.to_vec(),
            }),
        }
    }

    pub(super) async fn backends(&self, actor: &Principal, cmd: BackendsCmd) -> Outcome {
        match cmd {
            BackendsCmd::List { json } => Ok(render_backends(&self.admin.backends().await, json)),
            BackendsCmd::Enable { names } => {
                // Every name resolves before anything changes, so a typo enables nothing.
                let kinds = names
                    .iter()
                    .map(|n| self.resolve_kind(n))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = String::new();
                for kind in kinds {
                    self.admin.set_backend_enabled(actor, kind, true).await?;
                    out.push_str(&format!("backend {kind} enabled\n"));
                }
                Ok(out)
            }
            BackendsCmd::Disable { name } => {
                let kind = self.resolve_kind(&name)?;
                if kind == crate::KIND {
                    return Err(Failure::DisableSelf);
                }
                self.admin.set_backend_enabled(actor, kind, false).await?;
                Ok(format!("backend {kind} disabled"))
            }
        }
    }
}

/// `/backends list`: kind, frontend, state and summary in columns, or JSON.
fn render_backends(list: &[BackendInfo], json: bool) -> String {
    if json {
        return to_json(
            &list
                .iter()
                .map(|b| {
                    json!({
                        "kind": b.kind,
                        "frontend": b.frontend.to_string(),
                        "enabled": b.enabled,
                        "summary": b.summary,
                    })
                })
                .collect::<Vec<_>>(),
        );
    }
    list.iter()
        .map(|b| {
            format!(
                "{:<12} {:<4} {:<8} {}\n",
                b.kind,
                b.frontend,
                if b.enabled { "enabled" } else { "disabled" },
                b.summary
            )
        })
        .collect()
}
