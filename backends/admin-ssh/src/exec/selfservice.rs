//! Self-service for every user: `/passwd` (the console asks for the passwords; see
//! `console` and `script`) and `/keys` (their own SSH keys), straight through `Auth`, which
//! only ever changes the acting user's own account.

use everlock_host::auth::{OwnKey, Principal, check_min_length};
use serde_json::json;

use super::{Console, Failure, Outcome, Reply, to_json};
use crate::command::KeysCmd;

impl Console {
    pub(super) async fn keys(&self, actor: &Principal, cmd: KeysCmd) -> Outcome {
        let auth = self.admin.auth();
        Ok(match cmd {
            KeysCmd::List { json } => render_keys(&auth.own_keys(actor)?, json),
            KeysCmd::Add { key } => {
                let fingerprint = auth.add_own_key(actor, &key).await?;
                format!("key {fingerprint} added")
            }
            KeysCmd::Remove { fingerprint } => {
                auth.remove_own_key(actor, &fingerprint).await?;
                format!("key {fingerprint} removed")
            }
        })
    }

    /// `/passwd` reached the interpreter without its answers (the session layer collects
    /// them): say how to give them.
    pub(super) fn passwd_without_answers() -> Outcome {
        Err(Failure::PasswdNeedsAnswers)
    }

    /// The refusal of a new password shorter than the configured minimum, if it is.
    pub(super) fn too_short(&self, password: &str) -> Result<(), Failure> {
        check_min_length(password, self.min_password_chars).map_err(Failure::from)
    }

    /// `/passwd` with its three answers: the current password, the new one and its repeat.
    pub async fn change_own_password(
        &self,
        actor: &Principal,
        current: &str,
        new: &str,
        repeat: &str,
    ) -> Reply {
        let outcome = async {
            if new != repeat {
                return Err(Failure::PasswordMismatch);
            }
            self.too_short(new)?;
            self.admin
                .auth()
                .change_own_password(actor, current, new)
                .await?;
            Ok(format!("password updated for '{}'", actor.name()))
        }
        .await;
        Reply::from_outcome(outcome)
    }
}

/// `/keys list`: one line per key (fingerprint, then the OpenSSH line), or JSON.
fn render_keys(keys: &[OwnKey], json: bool) -> String {
    if json {
        let list: Vec<_> = keys
            .iter()
            .map(|k| json!({ "fingerprint": k.fingerprint, "key": k.openssh }))
            .collect();
        return to_json(&list);
    }
    if keys.is_empty() {
        return "no SSH keys; add one with /keys add <openssh public key>".to_owned();
    }
    keys.iter()
        .map(|k| format!("{}  {}\n", k.fingerprint, k.openssh))
        .collect()
}
