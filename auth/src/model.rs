//! The identity model — users, groups, grants — and the one authorization function.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::access::{AccessPath, Grant, Role};
use crate::action::Action;
use crate::names::{GroupName, Login};
use crate::principal::{Principal, Who};
use crate::sshkey::SshPublicKey;

/// One user as persisted (`users/<login>.toml` in the users store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct User {
    /// The login, equal to the file name.
    pub login: Login,
    /// Free-form display name.
    #[serde(default)]
    pub display_name: String,
    /// bcrypt hash; `None` means password login is impossible (always so for `anon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Keys allowed to log in over SSH.
    #[serde(default)]
    pub keys: Vec<SshPublicKey>,
    /// Direct grants.
    #[serde(default)]
    pub grants: BTreeSet<Grant>,
}

impl User {
    /// A user with no credentials and no grants.
    pub fn new(login: Login) -> User {
        User {
            login,
            display_name: String::new(),
            password_hash: None,
            keys: Vec::new(),
            grants: BTreeSet::new(),
        }
    }
}

/// One group as persisted (`groups/<name>.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Group {
    /// The group's name, equal to the file name.
    pub name: GroupName,
    /// Member logins.
    #[serde(default)]
    pub members: BTreeSet<Login>,
    /// Grants every member receives.
    #[serde(default)]
    pub grants: BTreeSet<Grant>,
}

/// Every user and group: an immutable value that changes are applied to as a whole, so a
/// reader never sees half of a change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    /// Users by login; always contains `anon`.
    pub users: BTreeMap<Login, User>,
    /// Groups by name.
    pub groups: BTreeMap<GroupName, Group>,
}

impl Directory {
    /// The strongest role `principal` holds on `resource`, if any.
    ///
    /// Sources, unioned: the server itself owns everything; `anon`'s grants apply to every
    /// principal (logging in never reduces access); a user's own grants, their groups'
    /// grants, and implicit ownership of any resource whose namespace is their login.
    /// Removed users hold nothing.
    pub fn role(&self, principal: &Principal, resource: &AccessPath) -> Option<Role> {
        let login = match &principal.0 {
            Who::System => return Some(Role::Owner),
            Who::Anon => None,
            Who::User(login) => {
                if !self.users.contains_key(login) {
                    return None;
                }
                Some(login)
            }
        };
        let covering = |grants: &BTreeSet<Grant>| {
            grants
                .iter()
                .filter(|g| g.path.covers(resource))
                .map(|g| g.role)
                .max()
        };
        let mut best = self
            .users
            .get(&Login::anon())
            .and_then(|u| covering(&u.grants));
        if let Some(login) = login.filter(|l| !l.is_anon()) {
            if resource.namespace() == Some(login.as_str()) {
                return Some(Role::Owner);
            }
            if let Some(user) = self.users.get(login) {
                best = best.max(covering(&user.grants));
            }
            for group in self.groups.values().filter(|g| g.members.contains(login)) {
                best = best.max(covering(&group.grants));
            }
        }
        best
    }

    /// The one authorization decision: may `principal` do `action` on `resource`?
    pub fn authorize(&self, principal: &Principal, resource: &AccessPath, action: Action) -> bool {
        self.role(principal, resource)
            .is_some_and(|role| role.allows(action))
    }

    /// Whether `principal` may do `action` on `resource` or on at least one thing below it:
    /// a grant at, above or below `resource` (or implicit ownership of its namespace) that
    /// permits `action`. A registry asks this to decide whether anything at all is readable
    /// anonymously before knowing which repository a client wants.
    pub fn authorize_within(
        &self,
        principal: &Principal,
        resource: &AccessPath,
        action: Action,
    ) -> bool {
        if self.authorize(principal, resource, action) {
            return true;
        }
        // `System` and implicit ownership were decided by `authorize` above; what is left are
        // the grants of anon (which apply to everyone current) and of a user and their groups.
        let login = match &principal.0 {
            Who::Anon => None,
            Who::User(login) if self.users.contains_key(login) => Some(login),
            // Removed users hold nothing, as in `role`.
            _ => return false,
        };
        let reaching = |grants: &BTreeSet<Grant>| {
            grants
                .iter()
                .any(|g| g.path.reaches(resource) && g.role.allows(action))
        };
        let anon = self.users.get(&Login::anon());
        if anon.is_some_and(|u| reaching(&u.grants)) {
            return true;
        }
        let Some(login) = login.filter(|l| !l.is_anon()) else {
            return false;
        };
        self.users.get(login).is_some_and(|u| reaching(&u.grants))
            || self.groups_of(login).any(|g| reaching(&g.grants))
    }

    /// Whether `principal` is a system administrator (owner on `*/*/*`).
    pub fn is_system_admin(&self, principal: &Principal) -> bool {
        self.role(principal, &AccessPath::everything()) == Some(Role::Owner)
    }

    /// Whether any real user is a system administrator.
    pub fn has_admin(&self) -> bool {
        self.users
            .keys()
            .filter(|l| !l.is_anon())
            .any(|l| self.is_system_admin(&Principal::user(l.clone())))
    }

    /// The groups `login` belongs to.
    pub fn groups_of<'a>(&'a self, login: &'a Login) -> impl Iterator<Item = &'a Group> + 'a {
        self.groups
            .values()
            .filter(move |g| g.members.contains(login))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AccessPath {
        s.parse().unwrap()
    }
    fn login(s: &str) -> Login {
        s.parse().unwrap()
    }
    fn user(s: &str) -> Principal {
        Principal::user(login(s))
    }
    fn grant(path: &str, role: Role) -> Grant {
        Grant {
            path: p(path),
            role,
        }
    }

    /// A directory exercising every source of access.
    fn directory() -> Directory {
        let mut d = Directory::default();
        let mut add = |name: &str, grants: Vec<Grant>| {
            let mut u = User::new(login(name));
            u.grants = grants.into_iter().collect();
            d.users.insert(login(name), u);
        };
        add(
            "anon",
            vec![
                grant("http/site/public", Role::Reader),
                grant("http/oci/default/library", Role::Reader),
            ],
        );
        add("root", vec![grant("*/*/*", Role::Owner)]);
        add("alice", vec![grant("http/oci/default", Role::Writer)]);
        add(
            "bob",
            vec![
                grant("http/oci/default/team-a", Role::Owner),
                grant("*/site/*", Role::Reader),
            ],
        );
        add("carol", vec![]);
        add(
            "dave",
            vec![
                grant("http/*/*", Role::Writer),
                grant("http/oci/*", Role::Reader),
            ],
        );
        add("erin", vec![grant("*/*/*", Role::Writer)]);
        let mut team = Group {
            name: "backend-team".parse().unwrap(),
            members: [login("carol"), login("alice")].into_iter().collect(),
            grants: [
                grant("http/site/docs", Role::Owner),
                grant("http/oci/other", Role::Reader),
            ]
            .into_iter()
            .collect(),
        };
        d.groups.insert(team.name.clone(), team.clone());
        team.name = "readers".parse().unwrap();
        team.members = [login("carol")].into_iter().collect();
        team.grants = [grant("http/oci/default/team-b", Role::Writer)]
            .into_iter()
            .collect();
        d.groups.insert(team.name.clone(), team);
        d
    }

    #[test]
    fn authorization_matrix() {
        use Action::{Delete as D, Read as R, Write as W};
        let d = directory();
        let anon = Principal::anon();
        let sys = Principal::system();
        #[rustfmt::skip]
        let cases: &[(&Principal, &str, Action, bool)] = &[
            // anon: only what anon is granted, read only.
            (&anon, "http/site/public", R, true),
            (&anon, "http/site/public/index.html", R, true),
            (&anon, "http/site/public", W, false),
            (&anon, "http/site/private", R, false),
            (&anon, "http/oci/default/library/alpine", R, true),
            (&anon, "http/oci/default/team-a/app", R, false),
            (&anon, "http/oci/default", R, false),
            (&anon, "*/*/*", R, false),
            // system owns everything.
            (&sys, "http/oci/default", D, true),
            (&sys, "ssh/admin/console", W, true),
            // root: owner on */*/* covers every path and action.
            (&user("root"), "http/oci/default/x/y", D, true),
            (&user("root"), "ssh/admin/console", W, true),
            (&user("root"), "*/*/*", D, true),
            // alice: writer on the registry, plus group grants; writer cannot delete.
            (&user("alice"), "http/oci/default", R, true),
            (&user("alice"), "http/oci/default", W, true),
            (&user("alice"), "http/oci/default", D, false),
            (&user("alice"), "http/oci/default/team-a/app", W, true),
            (&user("alice"), "http/oci/defaults", R, false),
            (&user("alice"), "http/oci/staging", R, false),
            (&user("alice"), "http/site/docs", D, true),
            (&user("alice"), "http/oci/other", R, true),
            (&user("alice"), "http/oci/other", W, false),
            (&user("alice"), "http/site/public", R, true),
            (&user("alice"), "*/*/*", R, false),
            // bob: repository-scoped owner, site reader through a wildcard.
            (&user("bob"), "http/oci/default/team-a", D, true),
            (&user("bob"), "http/oci/default/team-a/app", D, true),
            (&user("bob"), "http/oci/default/team-b/app", R, false),
            (&user("bob"), "http/oci/default", R, false),
            (&user("bob"), "http/site/docs", R, true),
            (&user("bob"), "ssh/site/docs", R, true),
            (&user("bob"), "http/site/docs", W, false),
            (&user("bob"), "http/oci/default/library/x", R, true),
            // carol: everything from groups (union of two groups).
            (&user("carol"), "http/site/docs", W, true),
            (&user("carol"), "http/oci/default/team-b/svc", W, true),
            (&user("carol"), "http/oci/default/team-b/svc", D, false),
            (&user("carol"), "http/oci/default/team-a/svc", R, false),
            (&user("carol"), "http/oci/other/x", R, true),
            // dave: two overlapping wildcards; the stronger role wins.
            (&user("dave"), "http/oci/default", W, true),
            (&user("dave"), "http/oci/x/y", W, true),
            (&user("dave"), "http/oci/x", D, false),
            (&user("dave"), "ssh/oci/x", R, false),
            // erin: writer on everything is not a system admin.
            (&user("erin"), "http/anything/x", W, true),
            (&user("erin"), "http/anything/x", D, false),
            // implicit ownership: the namespace equal to the login.
            (&user("carol"), "http/site/carol", D, true),
            (&user("carol"), "http/oci/carol/app", D, true),
            (&user("carol"), "http/oci/default/carol", D, false),
            (&anon, "http/site/anon", R, false),
            // removed and unknown users hold nothing, not even implicit ownership.
            (&user("mallory"), "http/site/mallory", R, false),
            (&user("mallory"), "http/site/public", R, false),
            (&user("mallory"), "http/oci/default/library/x", W, false),
            // anon's own grants never exceed reader here, and a user's own grant can raise it.
            (&user("alice"), "http/oci/default/library/x", W, true),
            (&user("bob"), "http/oci/default/library/x", W, false),
        ];
        for (principal, path, action, want) in cases {
            assert_eq!(
                d.authorize(principal, &p(path), *action),
                *want,
                "{principal} {action} {path}"
            );
        }
        assert!(cases.len() >= 50, "{} cases", cases.len());
    }

    #[test]
    fn authorize_within_sees_grants_at_above_and_below() {
        use Action::{Read as R, Write as W};
        let d = directory();
        let anon = Principal::anon();
        #[rustfmt::skip]
        let cases: &[(&Principal, &str, Action, bool)] = &[
            // anon holds reader on one repository below the registry: it reaches the registry,
            // for reading only, and nothing in another registry.
            (&anon, "http/oci/default", R, true),
            (&anon, "http/oci/default", W, false),
            (&anon, "http/oci/other", R, false),
            (&anon, "http/oci/default/team-a", R, false),
            (&anon, "http/site/public", R, true),
            (&anon, "http/site/private", R, false),
            // A grant above the path reaches it, as `authorize` would say.
            (&user("alice"), "http/oci/default", W, true),
            (&user("dave"), "http/oci/elsewhere", W, true),
            (&user("root"), "ssh/admin/console", W, true),
            // A grant below (bob owns one repository) and a group's grant below (carol).
            (&user("bob"), "http/oci/default", W, true),
            (&user("carol"), "http/oci/default", W, true),
            (&user("carol"), "http/oci/other", W, false),
            // Implicit ownership and everyone's share of anon's grants.
            (&user("carol"), "http/oci/carol", W, true),
            (&user("carol"), "http/site/public", R, true),
            // Removed users hold nothing, not even anon's grants.
            (&user("mallory"), "http/oci/default", R, false),
            (&user("mallory"), "http/site/public", R, false),
        ];
        for (principal, path, action, want) in cases {
            assert_eq!(
                d.authorize_within(principal, &p(path), *action),
                *want,
                "{principal} {action} within {path}"
            );
        }
    }

    #[test]
    fn system_admin_and_revocation() {
        let mut d = directory();
        assert!(d.is_system_admin(&user("root")));
        assert!(!d.is_system_admin(&user("erin")));
        assert!(!d.is_system_admin(&Principal::anon()));
        assert!(d.has_admin());
        // Revoking a grant takes effect in the next decision.
        d.users.get_mut(&login("alice")).unwrap().grants.clear();
        assert!(!d.authorize(&user("alice"), &p("http/oci/default"), Action::Write));
        // Leaving a group removes the group's grants.
        for g in d.groups.values_mut() {
            g.members.remove(&login("carol"));
        }
        assert!(!d.authorize(&user("carol"), &p("http/site/docs"), Action::Read));
        // Removing the only admin leaves none.
        d.users.remove(&login("root"));
        assert!(!d.is_system_admin(&user("root")));
        assert!(!d.has_admin());
    }

    #[test]
    fn records_round_trip_as_toml() {
        let d = directory();
        let alice = &d.users[&login("alice")];
        let text = toml::to_string(alice).unwrap();
        let back: User = toml::from_str(&text).unwrap();
        assert_eq!(&back, alice);
        assert!(toml::from_str::<User>("login = \"x\"\nextra = 1\n").is_err());
    }
}
