//! Tab completion: command families, their sub-commands, and the names that follow them
//! (logins, group names, instance names, backend kinds, roles, grant paths, help topics).
//! Logins and group names are offered to administrators only, who may list them anyway; to
//! anyone else completion would enumerate the directory that `/users list` refuses.

use everlock_host::HostAdmin;

use crate::families::Families;
use crate::families::Family;

/// The roles a grant takes.
const ROLES: [&str; 3] = ["reader", "writer", "owner"];

/// Candidates for the last word of `before` (the line up to the cursor). The editor keeps
/// only those that start with what was typed. `admin`: whether the user is a system
/// administrator.
pub fn candidates(host: &dyn HostAdmin, admin: bool, before: &str) -> Vec<String> {
    let families = Families::from_kinds(host.kinds());
    let words: Vec<&str> = before.split(' ').collect();
    let kind = |word: &str| match families.parse(word).filter(|_| word.starts_with('/')) {
        Some(Family::Kind(scope)) => Some(scope.kind()),
        _ => None,
    };
    let names = Names {
        host,
        families: &families,
        admin,
    };
    match words.as_slice() {
        [_] => families.top_level(),
        ["/help", _] => families.all().iter().map(|f| f.name().to_owned()).collect(),
        [family, _] => families
            .parse(family)
            .filter(|_| family.starts_with('/'))
            .map(Family::subcommands)
            .unwrap_or_default(),
        ["/users" | "/groups", ..] => names.directory(&words),
        ["/backends", "enable" | "disable", ..] => {
            host.kinds().iter().map(|k| k.kind.to_owned()).collect()
        }
        [family, sub, _] if *sub != "create" && *sub != "list" && kind(family).is_some() => {
            kind(family).map_or_else(Vec::new, |k| instance_names(host, k))
        }
        ["/store", sub, _] if *sub != "list" => host.store_names(),
        ["/store", "retention", _, _] => owned(&["keep-all", "keep-commits=", "purge-after="]),
        _ => Vec::new(),
    }
}

fn owned(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The names completion draws from.
struct Names<'a> {
    host: &'a dyn HostAdmin,
    families: &'a Families,
    admin: bool,
}

impl Names<'_> {
    /// The arguments of `/users` and `/groups` sub-commands, by position.
    fn directory(&self, words: &[&str]) -> Vec<String> {
        match words {
            ["/users", "key", _] => owned(&["add", "remove"]),
            ["/users", "key", _, _] => self.logins(),
            [
                "/users",
                "remove" | "passwd" | "grant" | "revoke" | "grants",
                _,
            ] => self.logins(),
            [
                "/groups",
                "remove" | "assign" | "unassign" | "grant" | "revoke",
                _,
            ] => self.groups(),
            ["/groups", "assign" | "unassign", _, _] => self.logins(),
            ["/users" | "/groups", "grant" | "revoke", _, _] => self.paths(),
            ["/users" | "/groups", "grant", _, _, _] => owned(&ROLES),
            _ => Vec::new(),
        }
    }

    fn logins(&self) -> Vec<String> {
        if !self.admin {
            return Vec::new();
        }
        self.host
            .auth()
            .directory()
            .users
            .keys()
            .map(ToString::to_string)
            .collect()
    }

    fn groups(&self) -> Vec<String> {
        if !self.admin {
            return Vec::new();
        }
        self.host
            .auth()
            .directory()
            .groups
            .keys()
            .map(ToString::to_string)
            .collect()
    }

    /// Grant paths: everything (`*/*/*`), and for each kind with an access root its
    /// wildcard and each of its instances (`http/oci/*`, `http/oci/default`).
    fn paths(&self) -> Vec<String> {
        let mut paths = vec!["*/*/*".to_owned()];
        let instances = self.host.instances();
        for family in self.families.all() {
            let Family::Kind(scope) = family else {
                continue;
            };
            let Some(root) = scope.access_root() else {
                continue;
            };
            paths.push(format!("{root}/*"));
            let mut names: Vec<String> = instances
                .iter()
                .filter(|i| i.kind == scope.kind())
                .map(|i| format!("{root}/{}", i.name))
                .collect();
            names.sort();
            paths.extend(names);
        }
        paths
    }
}

fn instance_names(host: &dyn HostAdmin, kind: &str) -> Vec<String> {
    let mut names: Vec<String> = host
        .instances()
        .into_iter()
        .filter(|i| i.kind == kind)
        .map(|i| i.name.to_string())
        .collect();
    names.sort();
    names
}
