//! Grants scoped to one resource root, such as an instance's `http/site/<name>`: removing
//! everything there when the instance goes away, and making the root private.
//!
//! Both exist because grants outlive instances: without them, deleting a site and creating a
//! new one under the same name would silently hand the old readers (including `anon`) the new
//! content.

use crate::access::AccessPath;
use crate::action::Action;
use crate::error::AuthError;
use crate::model::Directory;
use crate::names::Login;
use crate::principal::Principal;
use crate::service::Auth;

/// Whether `grant` names `root` or something below it, segment by segment and literally: a
/// wildcard grant such as `http/site/*` is wider than one instance and is left alone.
fn within(grant: &AccessPath, root: &AccessPath) -> bool {
    grant.segments().starts_with(root.segments())
}

/// Removes every grant within `root` from every user (anon included) and group; returns how
/// many were removed.
fn remove_within(dir: &mut Directory, root: &AccessPath, only_anon: bool) -> usize {
    let mut removed = 0;
    for (login, user) in &mut dir.users {
        if only_anon && !login.is_anon() {
            continue;
        }
        let before = user.grants.len();
        user.grants.retain(|g| !within(&g.path, root));
        removed += before - user.grants.len();
    }
    if !only_anon {
        for group in dir.groups.values_mut() {
            let before = group.grants.len();
            group.grants.retain(|g| !within(&g.path, root));
            removed += before - group.grants.len();
        }
    }
    removed
}

impl Auth {
    /// Removes every grant on `root` and below, for every user, `anon` and every group, in one
    /// commit by `actor` (a system administrator). Used when the instance that owns `root` is
    /// deleted, so a later instance of the same name starts with no inherited access.
    pub async fn revoke_all_within(
        &self,
        actor: &Principal,
        root: &str,
    ) -> Result<usize, AuthError> {
        let root: AccessPath = root.parse()?;
        self.change(
            actor,
            format!("grants: revoke everything within {root}"),
            |dir| {
                if !dir.is_system_admin(actor) {
                    return Err(forbidden(actor, "grants"));
                }
                Ok(remove_within(dir, &root, false))
            },
        )
        .await
    }

    /// Makes `root` private: removes every grant `anon` holds on `root` and below, and fails
    /// (changing nothing) when `anon` would still read `root` through a wider grant, which only
    /// the operator can decide to narrow.
    pub async fn make_private(&self, actor: &Principal, root: &str) -> Result<(), AuthError> {
        let root: AccessPath = root.parse()?;
        self.change(actor, format!("grants: make {root} private"), |dir| {
            if !dir.is_system_admin(actor) {
                return Err(forbidden(actor, "grants"));
            }
            remove_within(dir, &root, true);
            if let Some(wider) = dir
                .users
                .get(&Login::anon())
                .and_then(|anon| anon.grants.iter().find(|g| g.path.covers(&root)))
            {
                return Err(AuthError::StillPublic {
                    path: root.to_string(),
                    via: wider.path.to_string(),
                });
            }
            Ok(())
        })
        .await
    }

    /// Whether `anon` may read `root` or anything below it.
    pub fn anon_reads_within(&self, root: &AccessPath) -> bool {
        let dir = self.directory();
        dir.users.get(&Login::anon()).is_some_and(|anon| {
            anon.grants.iter().any(|g| {
                g.role.allows(Action::Read) && (g.path.covers(root) || within(&g.path, root))
            })
        })
    }
}

fn forbidden(actor: &Principal, what: &str) -> AuthError {
    AuthError::Forbidden {
        principal: actor.to_string(),
        action: Action::Write,
        what: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::access::AccessPath;
    use crate::action::Action;
    use crate::admin::AdminPassword;
    use crate::principal::Principal;
    use crate::service::{Auth, AuthOptions};
    use everlock_storage::StoreManager;

    async fn open_auth() -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let options = AuthOptions {
            bcrypt_cost: 4,
            ..AuthOptions::default()
        };
        let auth = Auth::open(&StoreManager::new(dir.path()), options)
            .await
            .unwrap();
        (dir, auth)
    }

    fn path(p: &str) -> AccessPath {
        p.parse().unwrap()
    }

    #[tokio::test]
    async fn revoking_within_a_root_spares_wider_and_sibling_grants() {
        let (_dir, auth) = open_auth().await;
        auth.bootstrap("admin", AdminPassword::Given("pw-admin".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        auth.add_user(&admin, "ann", "pw-ann-1").await.unwrap();
        auth.add_group(&admin, "team").await.unwrap();
        for (who, p) in [
            ("anon", "http/site/docs"),
            ("ann", "http/site/docs/private"),
            ("ann", "http/site/blog"),
            ("ann", "http/site/*"),
        ] {
            auth.grant(&admin, who, p, "reader").await.unwrap();
        }
        auth.group_grant(&admin, "team", "http/site/docs", "writer")
            .await
            .unwrap();
        let removed = auth
            .revoke_all_within(&admin, "http/site/docs")
            .await
            .unwrap();
        assert_eq!(removed, 3);
        let left: Vec<String> = auth
            .grants(&admin, "ann")
            .unwrap()
            .into_iter()
            .map(|(g, _)| g.path.to_string())
            .collect();
        assert_eq!(left, ["http/site/*", "http/site/blog"]);
        assert!(!auth.authorize(&Principal::anon(), &path("http/site/docs"), Action::Read));
    }

    #[tokio::test]
    async fn private_removes_anon_below_and_refuses_a_wider_anon_grant() {
        let (_dir, auth) = open_auth().await;
        auth.bootstrap("admin", AdminPassword::Given("pw-admin".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        auth.grant(&admin, "anon", "http/site/docs/sub", "reader")
            .await
            .unwrap();
        assert!(auth.anon_reads_within(&path("http/site/docs")));
        auth.make_private(&admin, "http/site/docs").await.unwrap();
        assert!(!auth.anon_reads_within(&path("http/site/docs")));
        auth.grant(&admin, "anon", "http/site/*", "reader")
            .await
            .unwrap();
        let err = auth
            .make_private(&admin, "http/site/docs")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "http/site/docs stays readable by anon through its grant on http/site/*; revoke that first"
        );
        let anon = Principal::anon();
        assert!(
            auth.make_private(&anon, "http/site/docs").await.is_err(),
            "only administrators change access"
        );
    }
}
