//! The minimum length of new passwords, enforced here for every way a password is set (an
//! administrator's `/users add|passwd`, a user's own `/passwd`, the offline
//! `everlock users passwd` and a first administrator whose password the operator gives), so
//! that no caller can forget it. The limit comes from configuration: `AuthOptions` gives the
//! starting value and the admin console applies its `min-password-length` setting when it is
//! built (after the first administrator exists, so the server's start holds a given
//! bootstrap password only to the starting value). Only passwords chosen from now on are
//! checked, so raising the minimum locks nobody out.

use std::sync::atomic::Ordering;

use crate::error::AuthError;
use crate::password::{MAX_PASSWORD_BYTES, check_min_length, validate};
use crate::service::Auth;

impl Auth {
    /// The shortest new password accepted, in characters.
    pub fn min_password_chars(&self) -> usize {
        self.min_password().load(Ordering::Relaxed)
    }

    /// Sets the shortest new password accepted, in characters (the configured
    /// `min-password-length`). It is clamped to 1..=71: an empty password is never valid, and
    /// bcrypt verifies at most 71 bytes, so a larger minimum would refuse every password.
    pub fn set_min_password_chars(&self, chars: usize) {
        self.min_password()
            .store(chars.clamp(1, MAX_PASSWORD_BYTES), Ordering::Relaxed);
    }

    /// Hashes a password a person chose for themselves or someone else, after checking it
    /// against the minimum in force. Generated passwords skip the check: they are long and
    /// random whatever the minimum says.
    pub(crate) async fn hash_chosen_password(&self, password: &str) -> Result<String, AuthError> {
        // The bcrypt limits first, so an empty password is still refused as empty.
        validate(password)?;
        check_min_length(password, self.min_password_chars())?;
        self.hash_password(password).await
    }
}

#[cfg(test)]
mod tests {
    use everlock_storage::StoreManager;

    use crate::admin::AdminPassword;
    use crate::error::AuthError;
    use crate::principal::{Principal, SystemAuthority};
    use crate::service::{Auth, AuthOptions};

    async fn open(dir: &std::path::Path, min: usize) -> Auth {
        let options = AuthOptions {
            bcrypt_cost: 4,
            min_password_chars: min,
            ..AuthOptions::default()
        };
        Auth::open(&StoreManager::new(dir), options).await.unwrap()
    }

    fn too_short(result: Result<impl std::fmt::Debug, AuthError>, min: usize) {
        match result {
            Err(AuthError::TooShort(e)) => assert_eq!(e.min, min),
            other => panic!("expected a too-short refusal, got {other:?}"),
        }
    }

    /// Every path that sets a chosen password refuses one below the minimum and accepts one
    /// at it; nothing is committed by a refusal.
    #[tokio::test]
    async fn every_path_that_sets_a_password_enforces_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path(), 10).await;
        too_short(
            auth.bootstrap("admin", AdminPassword::Given("short-pw".into()))
                .await,
            10,
        );
        assert!(!auth.directory().has_admin());
        // A generated password is long enough for any minimum up to its own length.
        let generated = auth.bootstrap("admin", AdminPassword::Generate).await;
        assert!(generated.unwrap().is_some());
        let admin = Principal::test_user("admin");
        too_short(auth.add_user(&admin, "bob", "bob-pw-1").await, 10);
        assert!(!auth.directory().users.keys().any(|l| l.as_str() == "bob"));
        auth.add_user(&admin, "bob", "bob-pw-123").await.unwrap();
        too_short(auth.set_password(&admin, "bob", "123456789").await, 10);
        auth.set_password(&admin, "bob", "bob-pw-456")
            .await
            .unwrap();
        let bob = Principal::test_user("bob");
        too_short(
            auth.change_own_password(&bob, "bob-pw-456", "bob-pw").await,
            10,
        );
        auth.change_own_password(&bob, "bob-pw-456", "bob-pw-789")
            .await
            .unwrap();
        let authority = SystemAuthority::for_tests();
        too_short(auth.recover_password(&authority, "bob", "x").await, 10);
        auth.recover_password(&authority, "bob", "recovered-pw")
            .await
            .unwrap();
    }

    /// The minimum counts characters, can be changed while running, and stays within what
    /// bcrypt can verify.
    #[tokio::test]
    async fn the_minimum_is_set_from_configuration_and_clamped() {
        let dir = tempfile::tempdir().unwrap();
        let auth = open(dir.path(), 1).await;
        auth.bootstrap("admin", AdminPassword::Given("pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        auth.set_min_password_chars(12);
        assert_eq!(auth.min_password_chars(), 12);
        too_short(auth.add_user(&admin, "eve", "eleven-char").await, 12);
        // Twelve two-byte characters are twelve, not twenty-four.
        auth.add_user(&admin, "eve", &"é".repeat(12)).await.unwrap();
        auth.set_min_password_chars(0);
        assert_eq!(auth.min_password_chars(), 1);
        auth.set_min_password_chars(500);
        assert_eq!(auth.min_password_chars(), 71);
        auth.set_min_password_chars(1);
        auth.set_password(&admin, "eve", "e").await.unwrap();
    }
}
