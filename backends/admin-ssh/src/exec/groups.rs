//! `/groups`: groups, their members and their grants, straight through `Auth`.

use everlock_host::auth::{GroupSummary, Principal};
use serde_json::json;

use super::{Console, Outcome, to_json};
use crate::command::GroupsCmd;

impl Console {
    pub(super) async fn groups(&self, actor: &Principal, cmd: GroupsCmd) -> Outcome {
        let auth = self.admin.auth();
        Ok(match cmd {
            GroupsCmd::List { json } => render_groups(&auth.list_groups(actor)?, json),
            GroupsCmd::Add { name } => {
                auth.add_group(actor, &name).await?;
                format!("created group '{name}'")
            }
            GroupsCmd::Remove { name } => {
                auth.remove_group(actor, &name).await?;
                format!("removed group '{name}'")
            }
            GroupsCmd::Assign { group, login } => {
                auth.assign(actor, &group, &login).await?;
                format!("added '{login}' to group '{group}'")
            }
            GroupsCmd::Unassign { group, login } => {
                auth.unassign(actor, &group, &login).await?;
                format!("removed '{login}' from group '{group}'")
            }
            GroupsCmd::Grant { group, path, role } => {
                auth.group_grant(actor, &group, &path, &role).await?;
                format!("granted {role} on {path} to group '{group}'")
            }
            GroupsCmd::Revoke { group, path } => {
                if auth.group_revoke(actor, &group, &path).await? {
                    format!("revoked {path} from group '{group}'")
                } else {
                    format!("group '{group}' had no grant on {path}")
                }
            }
        })
    }
}

/// `/groups list`: one line per group with members and grants (`-` for none), or JSON.
fn render_groups(groups: &[GroupSummary], json: bool) -> String {
    if json {
        let list: Vec<_> = groups
            .iter()
            .map(|g| {
                json!({
                    "name": g.name,
                    "members": g.members,
                    "grants": g.grants.iter().map(|gr| json!({
                        "path": gr.path.to_string(),
                        "role": gr.role.to_string(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return to_json(&list);
    }
    if groups.is_empty() {
        return "no groups".to_owned();
    }
    let or_dash = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    groups
        .iter()
        .map(|g| {
            let grants: Vec<String> = g
                .grants
                .iter()
                .map(|gr| format!("{} {}", gr.path, gr.role))
                .collect();
            format!(
                "{}  members: {}  grants: {}\n",
                g.name,
                or_dash(g.members.clone()),
                or_dash(grants),
            )
        })
        .collect()
}
