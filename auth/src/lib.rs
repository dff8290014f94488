//! Identity and access for Everlock: users, groups, grants, the `anon` principal, password
//! and SSH-key credentials, HTTP Basic authentication and the one authorization function.
//!
//! Everything is persisted in the `everlock-users` store; every change is a commit that
//! records the acting principal.
//!
//! # Layout
//! - `action`: what a request wants to do (read, write, delete).
//! - `access`: access paths, roles, grants.
//! - `names`, `principal`: logins, group names, who is acting.
//! - `model`: the directory and `authorize` / `is_system_admin`.
//! - `password`, `sshkey`: credentials; `policy`: the minimum length of new passwords.
//! - `basic`: the `Authorization` header parser.
//! - `cache`, `throttle`: the verified-credential cache and failed-login throttling.
//! - `service`: the shared `Auth` handle and persistence.
//! - `admin`: the administration API used by the console and the bootstrap.
//! - `scoped`: grants within one instance's root (delete, make private).
//! - `selfservice`: a user's own password and SSH keys, without an administrator.
//! - `recover`: offline password recovery by the binary's `SystemAuthority`.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod access;
mod access_control;
mod action;
mod admin;
mod basic;
mod cache;
mod error;
mod model;
mod names;
mod password;
mod policy;
mod principal;
mod recover;
mod reload;
mod scoped;
mod selfservice;
mod service;
mod sshkey;
mod throttle;

pub use access::{AccessPath, Grant, Role};
pub use access_control::AccessControl;
pub use action::Action;
pub use admin::{AdminPassword, GrantSource, GroupSummary, UserSummary};
pub use basic::{Credentials, Malformed, parse_authorization};
pub use error::{AuthError, PasswordTooShort};
pub use model::{Directory, Group, User};
pub use names::{ANON, GroupName, Login, SYSTEM};
pub use password::{DEFAULT_MIN_PASSWORD_CHARS, MAX_PASSWORD_BYTES, check_min_length};
pub use principal::{Principal, SystemAuthority};
pub use selfservice::OwnKey;
pub use service::{Auth, AuthOptions, LoginError, USERS_STORE, WeakAuth};
pub use sshkey::SshPublicKey;
pub use throttle::ThrottlePolicy;
