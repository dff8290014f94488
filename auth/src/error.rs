//! The auth crate's error type.

use crate::action::Action;

/// Everything that can go wrong in `everlock-auth`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A login or group name breaks the naming rule.
    #[error(
        "invalid {what} `{value}`: use 1-32 lowercase letters, digits and `-`, starting with a letter or digit"
    )]
    InvalidName {
        /// `login` or `group name`.
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// The name is reserved for a built-in principal.
    #[error("`{0}` is reserved")]
    Reserved(String),
    /// An access path is malformed.
    #[error("invalid access path `{path}`: {reason}")]
    InvalidPath {
        /// The rejected path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Not one of reader, writer, owner.
    #[error("invalid role `{0}`: expected reader, writer or owner")]
    InvalidRole(String),
    /// A password is empty or longer than bcrypt can take without truncating.
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    /// A new password is shorter than the configured minimum.
    #[error(transparent)]
    TooShort(#[from] PasswordTooShort),
    /// An SSH public key could not be parsed.
    #[error("invalid SSH public key: {0}")]
    InvalidKey(String),
    /// The user does not exist.
    #[error("no user '{0}'")]
    NoSuchUser(String),
    /// The group does not exist.
    #[error("no group '{0}'")]
    NoSuchGroup(String),
    /// The user already exists.
    #[error("user '{0}' already exists")]
    UserExists(String),
    /// The group already exists.
    #[error("group '{0}' already exists")]
    GroupExists(String),
    /// No such key on the user.
    #[error("user '{login}' has no key {fingerprint}")]
    NoSuchKey {
        /// The user.
        login: String,
        /// The fingerprint asked for.
        fingerprint: String,
    },
    /// The operation is not allowed on the built-in `anon` principal.
    #[error("the built-in 'anon' user {0}")]
    Anon(&'static str),
    /// The acting principal may not do this.
    #[error("permission denied: {principal} may not {action} {what}")]
    Forbidden {
        /// Who tried.
        principal: String,
        /// What they tried.
        action: Action,
        /// On what.
        what: String,
    },
    /// `anon` would still read a path that was asked to become private, through a wider
    /// grant that only the operator may narrow.
    #[error("{path} stays readable by anon through its grant on {via}; revoke that first")]
    StillPublic {
        /// The path asked to become private.
        path: String,
        /// The wider grant pattern.
        via: String,
    },
    /// The change would leave no system administrator.
    #[error("refusing to remove the last system administrator")]
    LastAdmin,
    /// A persisted record could not be decoded.
    #[error("corrupt record {path} in the users store: {reason}")]
    Corrupt {
        /// The store path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The users store failed.
    #[error("users store: {0}")]
    Storage(#[from] everlock_storage::StorageError),
    /// bcrypt failed for a reason other than a wrong password.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A new password shorter than the configured minimum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password too short: use at least {min} characters")]
pub struct PasswordTooShort {
    /// The minimum in force, in characters.
    pub min: usize,
}
