//! Self-service: every user changes their own password and manages their own SSH keys
//! without an administrator. The acting principal is the account changed, so a user can
//! never reach another account through these calls; each change is one commit recorded as
//! that user, like every other directory change.

use crate::admin::{forbidden, user_mut};
use crate::error::AuthError;
use crate::names::Login;
use crate::principal::Principal;
use crate::service::Auth;
use crate::sshkey::SshPublicKey;
use crate::{Action, password};

/// One of the user's own SSH keys, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnKey {
    /// `SHA256:...`.
    pub fingerprint: String,
    /// The OpenSSH line (algorithm, base64, comment).
    pub openssh: String,
}

impl Auth {
    /// The login `actor` acts as, refusing `anon` and `system` (neither has an account of
    /// its own to change).
    fn own_login(actor: &Principal, what: &str) -> Result<Login, AuthError> {
        actor
            .login()
            .filter(|l| !l.is_anon())
            .cloned()
            .ok_or_else(|| forbidden(actor, Action::Write, what))
    }

    /// `/passwd`: replaces the actor's own password after checking the current one, so a
    /// session left open on someone's desk cannot lock its owner out. The old password stops
    /// working at once.
    pub async fn change_own_password(
        &self,
        actor: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), AuthError> {
        let login = Auth::own_login(actor, "a password")?;
        let hash = self
            .directory()
            .users
            .get(&login)
            .ok_or_else(|| AuthError::NoSuchUser(login.to_string()))?
            .password_hash
            .clone();
        // A key-only account has no current password to prove; it sets its first one.
        if let Some(hash) = hash {
            let current = current.to_owned();
            let ok = tokio::task::spawn_blocking(move || password::verify(&current, &hash))
                .await
                .map_err(|e| AuthError::Hash(e.to_string()))?;
            if !ok {
                return Err(AuthError::InvalidPassword("the current password is wrong"));
            }
        }
        let hash = self.hash_chosen_password(new).await?;
        let result = self
            .change(actor, format!("passwd '{login}' (self-service)"), |dir| {
                user_mut(dir, &login)?.password_hash = Some(hash);
                Ok(())
            })
            .await;
        self.cache().invalidate(&login);
        result
    }

    /// `/keys list`: the actor's own SSH keys.
    pub fn own_keys(&self, actor: &Principal) -> Result<Vec<OwnKey>, AuthError> {
        let login = Auth::own_login(actor, "SSH keys")?;
        let dir = self.directory();
        let user = dir
            .users
            .get(&login)
            .ok_or_else(|| AuthError::NoSuchUser(login.to_string()))?;
        Ok(user
            .keys
            .iter()
            .map(|k| OwnKey {
                fingerprint: k.fingerprint().to_owned(),
                openssh: k.openssh().to_owned(),
            })
            .collect())
    }

    /// `/keys add <openssh key>`: adds a key to the actor's own account; returns its
    /// fingerprint. Adding a key already there changes nothing.
    pub async fn add_own_key(&self, actor: &Principal, key: &str) -> Result<String, AuthError> {
        let login = Auth::own_login(actor, "SSH keys")?;
        let key: SshPublicKey = key.parse()?;
        let fingerprint = key.fingerprint().to_owned();
        self.change(
            actor,
            format!("keys add '{login}' {fingerprint} (self-service)"),
            |dir| {
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

    /// `/keys remove <fingerprint>`: removes one of the actor's own keys.
    pub async fn remove_own_key(
        &self,
        actor: &Principal,
        fingerprint: &str,
    ) -> Result<(), AuthError> {
        let login = Auth::own_login(actor, "SSH keys")?;
        self.change(
            actor,
            format!("keys remove '{login}' {fingerprint} (self-service)"),
            |dir| {
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
}

#[cfg(test)]
mod tests {
    use everlock_storage::StoreManager;

    use crate::admin::AdminPassword;
    use crate::service::{AuthOptions, USERS_STORE};

    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEJkgvSO65zUHwFzwBD46CkVyO2HgSubNl1UX18Xoenz alice@laptop";

    async fn setup() -> (tempfile::TempDir, StoreManager, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreManager::new(dir.path());
        let options = AuthOptions {
            bcrypt_cost: 4,
            ..AuthOptions::default()
        };
        let auth = Auth::open(&stores, options).await.unwrap();
        auth.bootstrap("admin", AdminPassword::Given("admin-pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        auth.add_user(&admin, "alice", "alice-old-pw")
            .await
            .unwrap();
        auth.add_user(&admin, "bob", "bob-pw-123").await.unwrap();
        (dir, stores, auth)
    }

    #[tokio::test]
    async fn a_user_changes_only_their_own_password_with_the_current_one() {
        let (_dir, stores, auth) = setup().await;
        let alice = Principal::test_user("alice");
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let err = auth
            .change_own_password(&alice, "wrong", "alice-new-pw")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid password: the current password is wrong"
        );
        auth.change_own_password(&alice, "alice-old-pw", "alice-new-pw")
            .await
            .unwrap();
        assert!(
            auth.verify_password("alice", "alice-new-pw", ip)
                .await
                .is_ok()
        );
        assert!(
            auth.verify_password("alice", "alice-old-pw", ip)
                .await
                .is_err()
        );
        // Bob's password is untouched, and the commit names alice.
        assert!(auth.verify_password("bob", "bob-pw-123", ip).await.is_ok());
        let log = stores
            .open(USERS_STORE)
            .await
            .unwrap()
            .log(1)
            .await
            .unwrap();
        assert_eq!(log[0].principal, "alice");
        assert_eq!(log[0].message, "passwd 'alice' (self-service)");
        for who in [Principal::anon(), Principal::test_system()] {
            assert!(matches!(
                auth.change_own_password(&who, "x", "long-enough").await,
                Err(AuthError::Forbidden { .. })
            ));
        }
    }

    #[tokio::test]
    async fn a_user_manages_only_their_own_keys() {
        let (_dir, _stores, auth) = setup().await;
        let alice = Principal::test_user("alice");
        let bob = Principal::test_user("bob");
        let fingerprint = auth.add_own_key(&alice, KEY).await.unwrap();
        assert_eq!(auth.add_own_key(&alice, KEY).await.unwrap(), fingerprint);
        let keys = auth.own_keys(&alice).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].fingerprint, fingerprint);
        assert!(keys[0].openssh.ends_with("alice@laptop"));
        assert!(auth.own_keys(&bob).unwrap().is_empty());
        // Bob cannot remove alice's key: it is not his.
        assert!(matches!(
            auth.remove_own_key(&bob, &fingerprint).await,
            Err(AuthError::NoSuchKey { .. })
        ));
        auth.remove_own_key(&alice, &fingerprint).await.unwrap();
        assert!(auth.own_keys(&alice).unwrap().is_empty());
        assert!(matches!(
            auth.add_own_key(&alice, "not a key").await,
            Err(AuthError::InvalidKey(_))
        ));
        assert!(matches!(
            auth.own_keys(&Principal::anon()),
            Err(AuthError::Forbidden { .. })
        ));
    }
}
