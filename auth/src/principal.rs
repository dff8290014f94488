//! Who is acting: a user, the anonymous principal, or the server itself.
//!
//! A principal is authority, so it cannot be made up. Outside this crate the only constructor
//! is [`Principal::anon`], which grants nothing an unauthenticated request does not already
//! have. Users come only from authentication (`Auth::verify_password`, `Auth::verify_key`,
//! `Auth::authenticate_http`) and `system` only from a [`SystemAuthority`], which
//! `Auth::open_with_authority` hands to the binary once (the host keeps it and never passes
//! it to a backend). Test constructors exist behind the `test-util` feature, which only
//! dev-dependencies enable (a test of the binary crate checks every manifest).

use std::fmt;

use crate::names::{ANON, Login, SYSTEM};

/// The identity behind a request or a change.
///
/// Code outside this crate (every backend) cannot make up a user or the server itself:
///
/// ```compile_fail,E0624
/// let forged = everlock_auth::Principal::system();
/// ```
///
/// ```compile_fail,E0624
/// let forged = everlock_auth::Principal::user("root".parse().unwrap());
/// ```
///
/// ```compile_fail,E0423
/// let forged = everlock_auth::SystemAuthority(());
/// ```
///
/// ```compile_fail,E0624
/// let forged = everlock_auth::SystemAuthority::mint();
/// ```
///
/// What it can do: act as `anon`, as the user that authentication returns, or as the server
/// through the [`SystemAuthority`] it was handed (only the binary is):
///
/// ```
/// use everlock_auth::{Auth, LoginError, Principal, SystemAuthority};
///
/// assert!(Principal::anon().is_anon());
///
/// async fn login(auth: &Auth, password: &str) -> Result<Principal, LoginError> {
///     auth.verify_password("alice", password, std::net::Ipv4Addr::LOCALHOST.into())
///         .await
/// }
///
/// fn as_server(authority: &SystemAuthority) -> Principal {
///     authority.principal()
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(pub(crate) Who);

/// The kinds of principal; private so that nobody outside this crate can name one into
/// existence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Who {
    /// No credentials were presented.
    Anon,
    /// An authenticated user.
    User(Login),
    /// The server itself (bootstrap, provisioning); never the result of a login.
    System,
}

impl Principal {
    /// The anonymous principal: what a request without credentials acts as.
    pub const fn anon() -> Principal {
        Principal(Who::Anon)
    }

    /// A user principal; only authentication (inside this crate) creates one.
    pub(crate) fn user(login: Login) -> Principal {
        Principal(Who::User(login))
    }

    /// The server itself; only a [`SystemAuthority`] or this crate creates one.
    pub(crate) const fn system() -> Principal {
        Principal(Who::System)
    }

    /// Whether this is the anonymous principal.
    pub fn is_anon(&self) -> bool {
        self.0 == Who::Anon
    }

    /// Whether this is the server itself.
    pub fn is_system(&self) -> bool {
        self.0 == Who::System
    }

    /// The login of a user principal.
    pub fn login(&self) -> Option<&Login> {
        match &self.0 {
            Who::User(login) => Some(login),
            Who::Anon | Who::System => None,
        }
    }

    /// The name recorded in commits and logs.
    pub fn name(&self) -> &str {
        match &self.0 {
            Who::Anon => ANON,
            Who::User(login) => login.as_str(),
            Who::System => SYSTEM,
        }
    }

    /// A user principal for tests, without authentication.
    ///
    /// # Panics
    /// When `login` is not a valid login (tests only).
    #[cfg(any(test, feature = "test-util"))]
    #[allow(
        clippy::expect_used,
        reason = "a test helper: a bad login is a test bug"
    )]
    pub fn test_user(login: &str) -> Principal {
        Principal::user(login.parse().expect("a valid test login"))
    }

    /// The system principal for tests.
    #[cfg(any(test, feature = "test-util"))]
    pub fn test_system() -> Principal {
        Principal::system()
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The right to act as the server itself: provisioning zero-config instances and other work
/// nobody asked for by logging in. Not `Clone`: the binary gets one from
/// `Auth::open_with_authority` and gives it to the host, which never hands it on.
#[derive(Debug)]
pub struct SystemAuthority(());

impl SystemAuthority {
    /// Minted only by `Auth::open_with_authority` (and tests).
    pub(crate) fn mint() -> SystemAuthority {
        SystemAuthority(())
    }

    /// The system principal, to act with.
    pub fn principal(&self) -> Principal {
        Principal::system()
    }

    /// An authority for tests.
    #[cfg(any(test, feature = "test-util"))]
    pub fn for_tests() -> SystemAuthority {
        SystemAuthority::mint()
    }
}
