//! Who owns which store, and how many SSH consoles may run: checks over the whole resolved
//! configuration that no single instance can make on its own.
//!
//! A store is an instance's whole world: its content, its history and what it serves. Two
//! instances on one store would overwrite each other's content, and an instance on a reserved
//! store would serve (and replace) the user directory or the host's own configuration. The SSH
//! frontend hands every session to one console, so a second SSH instance could never be
//! reached and would only make it ambiguous which console a login lands in.

use std::collections::BTreeMap;

use super::{ConfigError, ResolvedInstance};
use crate::api::Frontend;

/// Stores that belong to the server itself and never to an instance: the user directory and
/// the host's runtime configuration.
pub const RESERVED_STORES: &[&str] = &[everlock_auth::USERS_STORE, SYSTEM_STORE];

/// The store holding the host's runtime configuration.
pub const SYSTEM_STORE: &str = "everlock-system";

/// Refuses reserved stores, stores shared by two instances, and more than one SSH instance.
pub fn check_ownership(instances: &[ResolvedInstance]) -> Result<(), ConfigError> {
    let mut owners: BTreeMap<&str, String> = BTreeMap::new();
    let mut ssh: Option<String> = None;
    for inst in instances {
        let who = format!("{}/{}", inst.kind, inst.name);
        let store = inst.store.as_str();
        if RESERVED_STORES.contains(&store) {
            return Err(ConfigError::ReservedStore {
                store: store.to_owned(),
                instance: who,
            });
        }
        if let Some(first) = owners.insert(store, who.clone()) {
            return Err(ConfigError::SharedStore {
                store: store.to_owned(),
                first,
                second: who,
            });
        }
        if inst.frontend == Frontend::Ssh
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

    fn inst(kind: &'static str, name: &str, store: &str, frontend: Frontend) -> ResolvedInstance {
        ResolvedInstance {
            kind,
            frontend,
            name: name.parse().unwrap(),
            vhosts: vec!["localhost".parse().unwrap()],
            prefix: "/".parse().unwrap(),
            store: store.parse().unwrap(),
            settings: toml::Table::new(),
            https_redirect: None,
        }
    }

    #[test]
    fn distinct_stores_and_one_console_pass() {
        let all = [
            inst("site-http", "a", "site-http-a", Frontend::Http),
            inst("oci-http", "a", "oci-http-a", Frontend::Http),
            inst("admin-ssh", "console", "admin-ssh-console", Frontend::Ssh),
        ];
        check_ownership(&all).unwrap();
    }

    #[test]
    fn reserved_stores_are_refused() {
        for reserved in RESERVED_STORES {
            let err = check_ownership(&[inst("site-http", "x", reserved, Frontend::Http)])
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
        let err = check_ownership(&[
            inst("site-http", "a", "shared", Frontend::Http),
            inst("oci-http", "b", "shared", Frontend::Http),
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
        let err = check_ownership(&[
            inst("admin-ssh", "one", "s1", Frontend::Ssh),
            inst("admin-ssh", "two", "s2", Frontend::Ssh),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "admin-ssh/two is a second SSH instance besides admin-ssh/one; the SSH frontend serves exactly one"
        );
    }
}
