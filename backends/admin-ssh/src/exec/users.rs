//! `/users`: accounts, passwords, grants and SSH keys, straight through `Auth`.

use everlock_host::auth::{Grant, GrantSource, Principal, UserSummary};
use serde_json::json;

use super::{Console, Outcome, to_json};
use crate::command::UsersCmd;

impl Console {
    pub(super) async fn users(&self, actor: &Principal, cmd: UsersCmd) -> Outcome {
        let auth = self.admin.auth();
        Ok(match cmd {
            UsersCmd::List { json } => render_users(&auth.list_users(actor)?, json),
            UsersCmd::Add { login, password } => {
                // Non-administrators learn that they may not, not a password rule.
                if auth.is_system_admin(actor) {
                    self.too_short(&password)?;
                }
                auth.add_user(actor, &login, &password).await?;
                format!("user '{login}' created")
            }
            UsersCmd::Passwd { login, password } => {
                if auth.is_system_admin(actor) {
                    self.too_short(&password)?;
                }
                auth.set_password(actor, &login, &password).await?;
                format!("password updated for '{login}'")
            }
            UsersCmd::Remove { login } => {
                auth.remove_user(actor, &login).await?;
                format!("user '{login}' removed")
            }
            UsersCmd::Grant { login, path, role } => {
                auth.grant(actor, &login, &path, &role).await?;
                format!("granted {role} on {path} to '{login}'")
            }
            UsersCmd::Revoke { login, path } => {
                if auth.revoke(actor, &login, &path).await? {
                    format!("revoked {path} from '{login}'")
                } else {
                    format!("'{login}' had no grant on {path}")
                }
            }
            UsersCmd::Grants { login, json } => {
                render_grants(&login, &auth.grants(actor, &login)?, json)
            }
            UsersCmd::KeyAdd { login, key } => {
                let fingerprint = auth.add_key(actor, &login, &key).await?;
                format!("key {fingerprint} added for '{login}'")
            }
            UsersCmd::KeyRemove { login, fingerprint } => {
                auth.remove_key(actor, &login, &fingerprint).await?;
                format!("key {fingerprint} removed from '{login}'")
            }
        })
    }
}

/// `/users list`: a table (login, administrator, groups, key count) under column headers,
/// or JSON.
fn render_users(users: &[UserSummary], json: bool) -> String {
    if json {
        let list: Vec<_> = users
            .iter()
            .map(|u| {
                json!({
                    "login": u.login,
                    "display_name": u.display_name,
                    "admin": u.admin,
                    "has_password": u.has_password,
                    "keys": u.keys,
                    "groups": u.groups,
                })
            })
            .collect();
        return to_json(&list);
    }
    let rows: Vec<[String; 4]> = users
        .iter()
        .map(|u| {
            [
                u.login.clone(),
                if u.admin { "yes" } else { "-" }.to_owned(),
                if u.groups.is_empty() {
                    "-".to_owned()
                } else {
                    u.groups.join(",")
                },
                u.keys.len().to_string(),
            ]
        })
        .collect();
    table(&["LOGIN", "ADMIN", "GROUPS", "KEYS"], &rows)
}

/// Columns padded to their widest cell, two spaces apart, under a header line; the last
/// column is not padded so lines carry no trailing spaces.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `/users grants`: each effective grant with where it comes from, or JSON.
fn render_grants(login: &str, grants: &[(Grant, GrantSource)], json: bool) -> String {
    let source = |s: &GrantSource| match s {
        GrantSource::Direct => "direct".to_owned(),
        GrantSource::Group(g) => format!("group {g}"),
        GrantSource::Anon => "anon".to_owned(),
    };
    if json {
        let list: Vec<_> = grants
            .iter()
            .map(|(g, s)| {
                json!({
                    "path": g.path.to_string(),
                    "role": g.role.to_string(),
                    "source": source(s),
                })
            })
            .collect();
        to_json(&list)
    } else if grants.is_empty() {
        format!("'{login}' has no grants")
    } else {
        grants
            .iter()
            .map(|(g, s)| format!("{} {} ({})\n", g.path, g.role, source(s)))
            .collect()
    }
}
