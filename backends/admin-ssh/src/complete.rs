//! Tab completion: command families, their sub-commands, and the names that follow them
//! (instance names, backend kinds, help topics).

use everlock_host::Host;

use crate::help::{Family, TOP_LEVEL};

/// Candidates for the last word of `before` (the line up to the cursor). The editor keeps
/// only those that start with what was typed.
pub fn candidates(host: &Host, before: &str) -> Vec<String> {
    let words: Vec<&str> = before.split(' ').collect();
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
    match words.as_slice() {
        [_] => owned(TOP_LEVEL.to_vec()),
        ["/help", _] => Family::ALL.iter().map(|f| f.name().to_owned()).collect(),
        [family, _] => Family::parse(family)
            .filter(|_| family.starts_with('/'))
            .map(|f| owned(f.subcommands()))
            .unwrap_or_default(),
        ["/users", "key", _] => owned(vec!["add", "remove"]),
        ["/backends", "enable" | "disable", ..] => {
            host.registry().kinds().map(str::to_owned).collect()
        }
        ["/oci", sub, _] if *sub != "create" && *sub != "list" => instance_names(host, "oci-http"),
        ["/site", sub, _] if *sub != "create" && *sub != "list" => {
            instance_names(host, "site-http")
        }
        ["/store", sub, _] if *sub != "list" => host.store_names(),
        ["/store", "retention", _, _] => owned(vec!["keep-all", "keep-commits=", "purge-after="]),
        _ => Vec::new(),
    }
}

fn instance_names(host: &Host, kind: &str) -> Vec<String> {
    let mut names: Vec<String> = host
        .instances()
        .into_iter()
        .filter(|i| i.kind == kind)
        .map(|i| i.name)
        .collect();
    names.sort();
    names
}
