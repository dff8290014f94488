//! Offline recovery of a lost password (`everlock users passwd`), by the server's own
//! authority rather than an administrator: the operator who lost the administrator's password
//! has no administrator to act as.

use crate::error::AuthError;
use crate::names::Login;
use crate::principal::SystemAuthority;
use crate::service::Auth;

impl Auth {
    /// Sets `login`'s password as `system`, with no administrator involved: one commit by
    /// `system` in `everlock-users`. Only the holder of the [`SystemAuthority`] can call it,
    /// which `Auth::open_with_authority` mints for the binary alone; the binary uses it for
    /// `everlock users passwd` while the server is stopped (it holds the users store's lock),
    /// so no running server keeps a cached credential for the old password.
    pub async fn recover_password(
        &self,
        authority: &SystemAuthority,
        login: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let login: Login = login.parse()?;
        if login.is_anon() {
            return Err(AuthError::Anon("cannot log in"));
        }
        if !self.directory().users.contains_key(&login) {
            return Err(AuthError::NoSuchUser(login.to_string()));
        }
        let hash = self.hash_chosen_password(password).await?;
        let message = format!("users passwd '{login}' (offline recovery)");
        let result = self
            .change(&authority.principal(), message, |dir| {
                let user = dir
                    .users
                    .get_mut(&login)
                    .ok_or_else(|| AuthError::NoSuchUser(login.to_string()))?;
                user.password_hash = Some(hash);
                Ok(())
            })
            .await;
        self.cache().invalidate(&login);
        result
    }
}

#[cfg(test)]
mod tests {
    use everlock_storage::StoreManager;

    use crate::admin::AdminPassword;
    use crate::principal::Principal;
    use crate::service::{AuthOptions, USERS_STORE};

    use super::*;

    #[tokio::test]
    async fn recovery_sets_the_password_as_system_in_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let stores = StoreManager::new(dir.path());
        let options = AuthOptions {
            bcrypt_cost: 4,
            ..AuthOptions::default()
        };
        let auth = Auth::open(&stores, options.clone()).await.unwrap();
        auth.bootstrap("admin", AdminPassword::Given("old-pw".into()))
            .await
            .unwrap();
        let users = stores.open(USERS_STORE).await.unwrap();
        let before = users.log(100).await.unwrap().len();
        let authority = SystemAuthority::for_tests();
        auth.recover_password(&authority, "admin", "new-pw")
            .await
            .unwrap();
        let log = users.log(100).await.unwrap();
        assert_eq!(log.len(), before + 1);
        assert_eq!(log[0].principal, "system");
        assert!(log[0].message.contains("users passwd 'admin'"), "{log:?}");
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let ok = auth.verify_password("admin", "new-pw", ip).await.unwrap();
        assert_eq!(ok, Principal::test_user("admin"));
        assert!(auth.verify_password("admin", "old-pw", ip).await.is_err());
        for (login, want) in [("nobody", "no user"), ("anon", "anon")] {
            let err = auth
                .recover_password(&authority, login, "pw")
                .await
                .unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        let err = auth
            .recover_password(&authority, "admin", "")
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidPassword(_)), "{err}");
        assert_eq!(users.log(100).await.unwrap().len(), before + 1);
    }
}
