//! Reading the directory from `everlock-users` with the version of every record, and keeping
//! the in-memory directory current when another node (another process sharing the store)
//! commits to it.
//!
//! Every change starts from a directory known to match the store (it is reloaded when the
//! store's HEAD moved since it was read) and commits with a compare-and-swap precondition on
//! every record it was computed from, so two nodes changing users at the same time never
//! lose an update: the later commit fails its precondition, reloads and runs again.

use std::collections::HashMap;

use everlock_storage::{Expected, Op, Precondition, Store};

use crate::error::AuthError;
use crate::model::{Directory, Group, User};
use crate::names::{GroupName, Login};

/// Which store state the in-memory directory was read from.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    /// The store's HEAD seq when the directory was read (0 for an empty store).
    pub(crate) seq: u64,
    /// Every record's path and version (the seq of the commit that last wrote it).
    pub(crate) records: HashMap<String, u64>,
}

impl Versions {
    /// The preconditions a change computed from this state must hold: every record it read is
    /// unchanged, and every record it creates is still absent. Checking all records, not only
    /// the written ones, keeps the invariants that span records (the last administrator, a
    /// member that must exist) true across nodes.
    pub(crate) fn preconditions(&self, ops: &[Op]) -> Vec<Precondition> {
        let mut out: Vec<Precondition> = self
            .records
            .iter()
            .map(|(path, version)| Precondition {
                path: path.clone(),
                expected: Expected::Version(*version),
            })
            .collect();
        out.extend(
            ops.iter()
                .filter(|op| !self.records.contains_key(op.path()))
                .map(|op| Precondition {
                    path: op.path().to_owned(),
                    expected: Expected::Absent,
                }),
        );
        out
    }

    /// Records a successful commit `seq` of `ops` made from this state. The state stays
    /// current only when no other commit came in between; otherwise the HEAD seq is left
    /// behind so the next change reloads first.
    pub(crate) fn committed(&mut self, seq: u64, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Delete { path } => {
                    self.records.remove(path);
                }
                Op::Put { path, .. } | Op::PutBytes { path, .. } => {
                    self.records.insert(path.clone(), seq);
                }
            }
        }
        if seq == self.seq.saturating_add(1) {
            self.seq = seq;
        }
    }
}

pub(crate) fn user_path(login: &Login) -> String {
    format!("users/{login}.toml")
}

pub(crate) fn group_path(name: &GroupName) -> String {
    format!("groups/{name}.toml")
}

/// The store's HEAD seq (0 when empty), read from the store itself, never from a cache.
pub(crate) async fn head_seq(store: &Store) -> Result<u64, AuthError> {
    Ok(store.head().await?.map_or(0, |c| c.seq))
}

/// Reads every user and group record with its version; `anon` is implied when absent.
///
/// The HEAD seq is read first: a commit landing while the records are read makes the
/// recorded seq older than the records, which only causes one more reload later, never a
/// change computed from a state the preconditions would not catch.
pub(crate) async fn load(store: &Store) -> Result<(Directory, Versions), AuthError> {
    let seq = head_seq(store).await?;
    let mut dir = Directory::default();
    let mut records = HashMap::new();
    for entry in store.list("users/").await? {
        let text = store.read(&entry.path).await?;
        let user: User = decode(&entry.path, &text)?;
        if user_path(&user.login) != entry.path {
            return Err(AuthError::Corrupt {
                path: entry.path,
                reason: format!("holds user '{}'", user.login),
            });
        }
        records.insert(entry.path, entry.version);
        dir.users.insert(user.login.clone(), user);
    }
    for entry in store.list("groups/").await? {
        let text = store.read(&entry.path).await?;
        let group: Group = decode(&entry.path, &text)?;
        if group_path(&group.name) != entry.path {
            return Err(AuthError::Corrupt {
                path: entry.path,
                reason: format!("holds group '{}'", group.name),
            });
        }
        records.insert(entry.path, entry.version);
        dir.groups.insert(group.name.clone(), group);
    }
    dir.users
        .entry(Login::anon())
        .or_insert_with(|| User::new(Login::anon()));
    Ok((dir, Versions { seq, records }))
}

/// The logins whose password stopped being what `old` says (changed or removed): their
/// cached verifications must go.
pub(crate) fn changed_passwords(old: &Directory, new: &Directory) -> Vec<Login> {
    old.users
        .iter()
        .filter(|(login, user)| {
            new.users.get(*login).map(|u| &u.password_hash) != Some(&user.password_hash)
        })
        .map(|(login, _)| login.clone())
        .collect()
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, AuthError> {
    let text = std::str::from_utf8(bytes).map_err(|e| AuthError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    toml::from_str(text).map_err(|e| AuthError::Corrupt {
        path: path.to_owned(),
        reason: e.message().to_owned(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, AuthError> {
    toml::to_string(value)
        .map(String::into_bytes)
        .map_err(|e| AuthError::Hash(format!("cannot encode record: {e}")))
}

/// The store operations that turn `old` into `new`: one per changed record.
pub(crate) fn diff(old: &Directory, new: &Directory) -> Result<Vec<Op>, AuthError> {
    let mut ops = Vec::new();
    for (login, user) in &new.users {
        if old.users.get(login) != Some(user) {
            ops.push(Op::PutBytes {
                path: user_path(login),
                bytes: encode(user)?,
            });
        }
    }
    for login in old.users.keys().filter(|l| !new.users.contains_key(*l)) {
        ops.push(Op::Delete {
            path: user_path(login),
        });
    }
    for (name, group) in &new.groups {
        if old.groups.get(name) != Some(group) {
            ops.push(Op::PutBytes {
                path: group_path(name),
                bytes: encode(group)?,
            });
        }
    }
    for name in old.groups.keys().filter(|n| !new.groups.contains_key(*n)) {
        ops.push(Op::Delete {
            path: group_path(name),
        });
    }
    Ok(ops)
}
