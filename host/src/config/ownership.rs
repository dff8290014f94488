//! Who owns which store, and how many SSH consoles may run: checks over the whole resolved
//! configuration that no single instance can make on its own.
//!
//! A store is an instance's whole world: its content, its history and what it serves. Two
//! instances on one store would overwrite each other's content, and an instance on a reserved
//! store would serve (and replace) the user directory or the host's own configuration. The SSH
//! frontend hands every session to one console, so a second SSH instance could never be
//! reached and would only make it ambiguous which console a login lands in.

use std::collections::BTreeMap;

use super::ConfigError;
use crate::api::InstanceSpec;

/// Stores that belong to the server itself and never to an instance: the user directory and
/// the host's runtime configuration.
pub const RESERVED_STORES: &[&str] = &[everlock_auth::USERS_STORE, SYSTEM_STORE];

/// The store holding the host's runtime configuration.
pub const SYSTEM_STORE: &str = "everlock-system";

/// Refuses reserved stores, stores shared by two instances, and more than one SSH instance
/// (`is_ssh` says which instances are of an SSH kind).
pub(super) fn check_ownership(
    instances: &[InstanceSpec],
    is_ssh: impl Fn(&InstanceSpec) -> bool,
) -> Result<(), ConfigError> {
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut ssh: Option<String> = None;
    for inst in instances {
        let who = inst.id();
        let store_name = inst.store_name();
        let store = store_name.as_str();
        if RESERVED_STORES.contains(&store) {
            return Err(ConfigError::ReservedStore {
                store: store.to_owned(),
                instance: who,
            });
        }
        if let Some(first) = owners.insert(store.to_owned(), who.clone()) {
            return Err(ConfigError::SharedStore {
                store: store.to_owned(),
                first,
                second: who,
            });
        }
        if is_ssh(inst)
            && let Some(first) = ssh.replace(who.clone())
        {
            return Err(ConfigError::SecondSsh { first, second: who });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(kind: &str, name: &str, store: &str) -> InstanceSpec {
        InstanceSpec {
            store: Some(store.parse().unwrap()),
            ..InstanceSpec::parse(kind, name, &["localhost"], "/").unwrap()
        }
    }

    /// The SSH kinds of these tests are the ones named `*-ssh`.
    fn check(all: &[InstanceSpec]) -> Result<(), ConfigError> {
        check_ownership(all, |i| i.kind.ends_with("-ssh"))
    }

    #[test]
    fn distinct_stores_and_one_console_pass() {
        let all = [
            inst("site-http", "a", "site-http-a"),
            inst("oci-http", "a", "oci-http-a"),
            inst("admin-ssh", "console", "admin-ssh-console"),
        ];
        check(&all).unwrap();
    }

    #[test]
    fn reserved_stores_are_refused() {
        for reserved in RESERVED_STORES {
            let err = check(&[inst("site-http", "x", reserved)])
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "instance site-http/x may not use store `{reserved}`: it is reserved for the server"
                )
            );
        }
    }

    #[test]
    fn a_store_shared_by_two_instances_is_refused() {
        let err = check(&[
            inst("site-http", "a", "shared"),
            inst("oci-http", "b", "shared"),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "store `shared` is used by both site-http/a and oci-http/b; every instance needs its own store"
        );
    }

    #[test]
    fn a_second_ssh_console_is_refused() {
        let err = check(&[
            inst("admin-ssh", "one", "s1"),
            inst("admin-ssh", "two", "s2"),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "admin-ssh/two is a second SSH instance besides admin-ssh/one; the SSH frontend serves exactly one"
        );
    }
}
