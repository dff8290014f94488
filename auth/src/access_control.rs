//! What a backend may do with the directory: authenticate a request and authorize an action.
//!
//! Backends receive this handle in their build context, never [`Auth`] itself: `Auth` also
//! carries the directory administration (adding users, granting roles), and a backend that
//! held it could act on that API with any principal a request authenticated as, including an
//! administrator's. Administration reaches only the console, through the host's `HostAdmin`
//! capability.

use std::net::IpAddr;

use crate::access::AccessPath;
use crate::action::Action;
use crate::principal::Principal;
use crate::service::{Auth, LoginError};

/// Authentication and authorization against the shared directory, and nothing else; cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct AccessControl {
    auth: Auth,
}

impl AccessControl {
    /// Authenticates an HTTP request from its raw `Authorization` header value (no header is
    /// `anon`), with the same throttling and credential cache as every other login.
    pub async fn authenticate_http(
        &self,
        header: Option<&[u8]>,
        remote: IpAddr,
    ) -> Result<Principal, LoginError> {
        self.auth.authenticate_http(header, remote).await
    }

    /// Whether `principal` may do `action` on `resource`: the one authorization function.
    pub fn authorize(&self, principal: &Principal, resource: &AccessPath, action: Action) -> bool {
        self.auth.authorize(principal, resource, action)
    }

    /// Whether `principal` may do `action` on `resource` or on at least one thing below it (a
    /// registry asks this before it knows which repository a client wants).
    pub fn authorize_within(
        &self,
        principal: &Principal,
        resource: &AccessPath,
        action: Action,
    ) -> bool {
        self.auth
            .directory()
            .authorize_within(principal, resource, action)
    }
}

impl Auth {
    /// The authentication-and-authorization handle a backend receives.
    pub fn access_control(&self) -> AccessControl {
        AccessControl { auth: self.clone() }
    }
}
