//! The administration API (used by the SSH console and the bootstrap): every call names the
//! acting principal, is checked against the tier rules, and becomes one commit in the users
//! store recording that principal.
//!
//! Tiers: a system administrator (owner on `*/*/*`) lists and changes everything; any other
//! authenticated user sees only themselves (their own grants) and changes only their own
//! password and SSH keys (`selfservice`); bootstrap runs as `system`. The directory is not
//! readable by ordinary users because logins, group names and grants tell an attacker who
//! to target and what each account unlocks.

use std::collections::BTreeSet;

use crate::access::{AccessPath, Grant, Role};
use crate::action::Action;
use crate::error::AuthError;
use crate::model::{Directory, Group, User};
use crate::names::{GroupName, Login};
use crate::principal::Principal;
use crate::service::Auth;
use crate::sshkey::SshPublicKey;

/// A user as listed (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Login.
    pub login: String,
    /// Display name.
    pub display_name: String,
    /// Whether password login is possible.
    pub has_password: bool,
    /// Fingerprints of registered SSH keys.
    pub keys: Vec<String>,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
    /// Whether the user is a system administrator.
    pub admin: bool,
}

/// Where an effective grant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSource {
    /// Granted to the user directly.
    Direct,
    /// Granted to a group the user is in.
    Group(String),
    /// Granted to `anon`, so to everyone.
    Anon,
}

/// A group as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Name.
    pub name: String,
    /// Member logins.
    pub members: Vec<String>,
    /// Grants.
    pub grants: Vec<Grant>,
}

/// Where the first administrator's password comes from.
#[derive(Debug, Clone)]
pub enum AdminPassword {
    /// Given by the operator (environment variable or flag).
    Given(String),
    /// Generate one and hand it back to be shown once.
    Generate,
}

impl Auth {
    /// Listing the directory (every user, every group) is for administrators only.
    fn require_lister(&self, actor: &Principal, what: &str) -> Result<(), AuthError> {
        if self.directory().is_system_admin(actor) {
            Ok(())
        } else {
            Err(forbidden(actor, Action::Read, what))
        }
    }

    /// A user may read their own grants; anyone else's need an administrator.
    fn require_self_or_admin(&self, actor: &Principal, login: &Login) -> Result<(), AuthError> {
        if actor.is_anon() {
            return Err(forbidden(actor, Action::Read, "the user directory"));
        }
        if actor.login() == Some(login) || self.directory().is_system_admin(actor) {
            Ok(())
        } else {
            Err(forbidden(
                actor,
                Action::Read,
                &format!("the grants of '{login}' (only administrators see other users)"),
            ))
        }
    }

    fn require_admin(
        &self,
        dir: &Directory,
        actor: &Principal,
        what: &str,
    ) -> Result<(), AuthError> {
        if dir.is_system_admin(actor) {
            Ok(())
        } else {
            Err(forbidden(actor, Action::Write, what))
        }
    }

    /// Creates the first administrator when no user is a system administrator; returns the
    /// password when it was generated, so the caller can show it once. Runs as `system`.
    pub async fn bootstrap(
        &self,
        login: &str,
        password: AdminPassword,
    ) -> Result<Option<String>, AuthError> {
        if self.directory().has_admin() {
            return Ok(None);
        }
        let login: Login = login.parse()?;
        if login.is_anon() {
            return Err(AuthError::Anon("cannot be an administrator"));
        }
        // The operator's password must meet the minimum like any other a person chooses.
        let (password, hash) = match password {
            AdminPassword::Given(p) => (None, self.hash_chosen_password(&p).await?),
            AdminPassword::Generate => {
                let p = crate::password::generate()?;
                let hash = self.hash_password(&p).await?;
                (Some(p), hash)
            }
        };
        let message = format!("bootstrap: '{login}' is the system administrator");
        self.change(&Principal::system(), message, |dir| {
            let user = dir
                .users
                .entry(login.clone())
                .or_insert_with(|| User::new(login.clone()));
            user.password_hash = Some(hash);
            user.grants.insert(Grant {
                path: AccessPath::everything(),
                role: Role::Owner,
            });
            Ok(())
        })
        .await?;
        self.cache().invalidate(&login);
        Ok(password)
    }

    /// `/users add <login> <password>`.
    pub async fn add_user(
        &self,
        actor: &Principal,
        login: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let login: Login = login.parse()?;
        if login.is_anon() {
            return Err(AuthError::UserExists(login.to_string()));
        }
        self.require_admin(&self.directory(), actor, "users")?;
        let hash = self.hash_chosen_password(password).await?;
        self.change(actor, format!("users add '{login}'"), |dir| {
            self.require_admin(dir, actor, "users")?;
            if dir.users.contains_key(&login) {
                return Err(AuthError::UserExists(login.to_string()));
            }
            let mut user = User::new(login.clone());
            user.password_hash = Some(hash);
            dir.users.insert(login.clone(), user);
            Ok(())
        })
        .await?;
        self.cache().invalidate(&login);
        Ok(())
    }

    /// `/users passwd <login> <password>`; the old password stops working at once.
    pub async fn set_password(
        &self,
        actor: &Principal,
        login: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let login: Login = login.parse()?;
        if login.is_anon() {
            return Err(AuthError::Anon("cannot log in"));
        }
        self.require_admin(&self.directory(), actor, "passwords")?;
        let hash = self.hash_chosen_password(password).await?;
        let result = self
            .change(actor, format!("users passwd '{login}'"), |dir| {
                self.require_admin(dir, actor, "passwords")?;
                let user = user_mut(dir, &login)?;
                user.password_hash = Some(hash);
                Ok(())
            })
            .await;
        self.cache().invalidate(&login);
        result
    }

    /// `/users remove <login>`: the user, their keys and grants, and their group memberships.
    pub async fn remove_user(&self, actor: &Principal, login: &str) -> Result<(), AuthError> {
        let login: Login = login.parse()?;
        if login.is_anon() {
            return Err(AuthError::Anon("cannot be removed"));
        }
        let result = self
            .change(actor, format!("users remove '{login}'"), |dir| {
                self.require_admin(dir, actor, "users")?;
                dir.users
                    .remove(&login)
                    .ok_or_else(|| AuthError::NoSuchUser(login.to_string()))?;
                for group in dir.groups.values_mut() {
                    group.members.remove(&login);
                }
                Ok(())
            })
            .await;
        self.cache().invalidate(&login);
        result
    }

    /// `/users list`.
    pub fn list_users(&self, actor: &Principal) -> Result<Vec<UserSummary>, AuthError> {
        self.require_lister(actor, "the user list (administrators only)")?;
        let dir = self.directory();
        Ok(dir
            .users
            .values()
            .map(|u| UserSummary {
                login: u.login.to_string(),
                display_name: u.display_name.clone(),
                has_password: u.password_hash.is_some(),
                keys: u.keys.iter().map(|k| k.fingerprint().to_owned()).collect(),
                groups: dir
                    .groups_of(&u.login)
                    .map(|g| g.name.to_string())
                    .collect(),
                admin: !u.login.is_anon() && dir.is_system_admin(&Principal::user(u.login.clone())),
            })
            .collect())
    }

    /// `/users key add <login> <openssh key>`; returns the key's fingerprint.
    pub async fn add_key(
        &self,
        actor: &Principal,
        login: &str,
        key: &str,
    ) -> Result<String, AuthError> {
        let login: Login = login.parse()?;
        if login.is_anon() {
            return Err(AuthError::Anon("cannot log in"));
        }
        let key: SshPublicKey = key.parse()?;
        let fingerprint = key.fingerprint().to_owned();
        self.change(
            actor,
            format!("users key add '{login}' {fingerprint}"),
            |dir| {
                self.require_admin(dir, actor, "SSH keys")?;
                let user = user_mut(dir, &login)?;
                if !user.keys.iter().any(|k| k.same_key(&key)) {
                    user.keys.push(key);
                }
                Ok(())
            },
        )
        .await?;
        Ok(fingerprint)
    }

    /// `/users key remove <login> <fingerprint>`.
    pub async fn remove_key(
        &self,
        actor: &Principal,
        login: &str,
        fingerprint: &str,
    ) -> Result<(), AuthError> {
        let login: Login = login.parse()?;
        self.change(
            actor,
            format!("users key remove '{login}' {fingerprint}"),
            |dir| {
                self.require_admin(dir, actor, "SSH keys")?;
                let user = user_mut(dir, &login)?;
                let before = user.keys.len();
                user.keys.retain(|k| k.fingerprint() != fingerprint);
                if user.keys.len() == before {
                    return Err(AuthError::NoSuchKey {
                        login: login.to_string(),
                        fingerprint: fingerprint.to_owned(),
                    });
                }
                Ok(())
            },
        )
        .await
    }

    /// `/users grant <login> <path> <role>` (replaces any role the user had on that path).
    pub async fn grant(
        &self,
        actor: &Principal,
        login: &str,
        path: &str,
        role: &str,
    ) -> Result<(), AuthError> {
        let login: Login = login.parse()?;
        let path: AccessPath = path.parse()?;
        let role: Role = role.parse()?;
        self.change(
            actor,
            format!("users grant '{login}' {path} {role}"),
            |dir| {
                self.require_admin(dir, actor, "grants")?;
                let user = user_mut(dir, &login)?;
                set_grant(&mut user.grants, path.clone(), role);
                Ok(())
            },
        )
        .await
    }

    /// `/users revoke <login> <path>`: removes every role the user holds on exactly `path`.
    /// Revoking nothing is not an error, so scripts can revoke idempotently.
    pub async fn revoke(
        &self,
        actor: &Principal,
        login: &str,
        path: &str,
    ) -> Result<bool, AuthError> {
        let login: Login = login.parse()?;
        let path: AccessPath = path.parse()?;
        self.change(actor, format!("users revoke '{login}' {path}"), |dir| {
            self.require_admin(dir, actor, "grants")?;
            let user = user_mut(dir, &login)?;
            let before = user.grants.len();
            user.grants.retain(|g| g.path != path);
            Ok(user.grants.len() != before)
        })
        .await
    }

    /// `/users grants <login>`: effective grants with their sources.
    pub fn grants(
        &self,
        actor: &Principal,
        login: &str,
    ) -> Result<Vec<(Grant, GrantSource)>, AuthError> {
        let login: Login = login.parse()?;
        self.require_self_or_admin(actor, &login)?;
        let dir = self.directory();
        let user = dir
            .users
            .get(&login)
            .ok_or_else(|| AuthError::NoSuchUser(login.to_string()))?;
        let mut out: Vec<(Grant, GrantSource)> = user
            .grants
            .iter()
            .map(|g| (g.clone(), GrantSource::Direct))
            .collect();
        for group in dir.groups_of(&login) {
            out.extend(
                group
                    .grants
                    .iter()
                    .map(|g| (g.clone(), GrantSource::Group(group.name.to_string()))),
            );
        }
        if let Some(anon) = dir.users.get(&Login::anon()).filter(|_| !login.is_anon()) {
            out.extend(anon.grants.iter().map(|g| (g.clone(), GrantSource::Anon)));
        }
        Ok(out)
    }

    /// `/groups add <name>`.
    pub async fn add_group(&self, actor: &Principal, name: &str) -> Result<(), AuthError> {
        let name: GroupName = name.parse()?;
        self.change(actor, format!("groups add '{name}'"), |dir| {
            self.require_admin(dir, actor, "groups")?;
            if dir.groups.contains_key(&name) {
                return Err(AuthError::GroupExists(name.to_string()));
            }
            dir.groups.insert(
                name.clone(),
                Group {
                    name: name.clone(),
                    members: BTreeSet::new(),
                    grants: BTreeSet::new(),
                },
            );
            Ok(())
        })
        .await
    }

    /// `/groups remove <name>`.
    pub async fn remove_group(&self, actor: &Principal, name: &str) -> Result<(), AuthError> {
        let name: GroupName = name.parse()?;
        self.change(actor, format!("groups remove '{name}'"), |dir| {
            self.require_admin(dir, actor, "groups")?;
            dir.groups
                .remove(&name)
                .map(|_| ())
                .ok_or_else(|| AuthError::NoSuchGroup(name.to_string()))
        })
        .await
    }

    /// `/groups assign <group> <login>`.
    pub async fn assign(
        &self,
        actor: &Principal,
        group: &str,
        login: &str,
    ) -> Result<(), AuthError> {
        let name: GroupName = group.parse()?;
        let login: Login = login.parse()?;
        if login.is_anon() {
            return Err(AuthError::Anon("cannot join groups"));
        }
        self.change(actor, format!("groups assign '{name}' '{login}'"), |dir| {
            self.require_admin(dir, actor, "groups")?;
            if !dir.users.contains_key(&login) {
                return Err(AuthError::NoSuchUser(login.to_string()));
            }
            let group = group_mut(dir, &name)?;
            group.members.insert(login.clone());
            Ok(())
        })
        .await
    }

    /// `/groups unassign <group> <login>`.
    pub async fn unassign(
        &self,
        actor: &Principal,
        group: &str,
        login: &str,
    ) -> Result<(), AuthError> {
        let name: GroupName = group.parse()?;
        let login: Login = login.parse()?;
        self.change(
            actor,
            format!("groups unassign '{name}' '{login}'"),
            |dir| {
                self.require_admin(dir, actor, "groups")?;
                let group = dir
                    .groups
                    .get_mut(&name)
                    .ok_or_else(|| AuthError::NoSuchGroup(name.to_string()))?;
                if !group.members.remove(&login) {
                    return Err(AuthError::NoSuchUser(format!("{login}' in group '{name}")));
                }
                Ok(())
            },
        )
        .await
    }

    /// `/groups grant <group> <path> <role>`.
    pub async fn group_grant(
        &self,
        actor: &Principal,
        group: &str,
        path: &str,
        role: &str,
    ) -> Result<(), AuthError> {
        let name: GroupName = group.parse()?;
        let path: AccessPath = path.parse()?;
        let role: Role = role.parse()?;
        self.change(
            actor,
            format!("groups grant '{name}' {path} {role}"),
            |dir| {
                self.require_admin(dir, actor, "groups")?;
                let group = dir
                    .groups
                    .get_mut(&name)
                    .ok_or_else(|| AuthError::NoSuchGroup(name.to_string()))?;
                set_grant(&mut group.grants, path.clone(), role);
                Ok(())
            },
        )
        .await
    }

    /// `/groups revoke <group> <path>`.
    pub async fn group_revoke(
        &self,
        actor: &Principal,
        group: &str,
        path: &str,
    ) -> Result<bool, AuthError> {
        let name: GroupName = group.parse()?;
        let path: AccessPath = path.parse()?;
        self.change(actor, format!("groups revoke '{name}' {path}"), |dir| {
            self.require_admin(dir, actor, "groups")?;
            let group = group_mut(dir, &name)?;
            let before = group.grants.len();
            group.grants.retain(|g| g.path != path);
            Ok(group.grants.len() != before)
        })
        .await
    }

    /// `/groups list`.
    pub fn list_groups(&self, actor: &Principal) -> Result<Vec<GroupSummary>, AuthError> {
        self.require_lister(actor, "the group list (administrators only)")?;
        Ok(self
            .directory()
            .groups
            .values()
            .map(|g| GroupSummary {
                name: g.name.to_string(),
                members: g.members.iter().map(ToString::to_string).collect(),
                grants: g.grants.iter().cloned().collect(),
            })
            .collect())
    }
}

pub(crate) fn user_mut<'a>(
    dir: &'a mut Directory,
    login: &Login,
) -> Result<&'a mut User, AuthError> {
    dir.users
        .get_mut(login)
        .ok_or_else(|| AuthError::NoSuchUser(login.to_string()))
}

fn group_mut<'a>(dir: &'a mut Directory, name: &GroupName) -> Result<&'a mut Group, AuthError> {
    dir.groups
        .get_mut(name)
        .ok_or_else(|| AuthError::NoSuchGroup(name.to_string()))
}

fn set_grant(grants: &mut BTreeSet<Grant>, path: AccessPath, role: Role) {
    grants.retain(|g| g.path != path);
    grants.insert(Grant { path, role });
}

pub(crate) fn forbidden(actor: &Principal, action: Action, what: &str) -> AuthError {
    AuthError::Forbidden {
        principal: actor.to_string(),
        action,
        what: what.to_owned(),
    }
}
