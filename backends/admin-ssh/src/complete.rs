//! Tab completion: command families, their sub-commands, and the names that follow them
//! (instance names, backend kinds, help topics).

use everlock_host::Host;

use crate::families::Families;
use crate::help::Family;

/// Candidates for the last word of `before` (the line up to the cursor). The editor keeps
/// only those that start with what was typed.
pub fn candidates(host: &Host, before: &str) -> Vec<String> {
    let families = Families::from_registry(host.registry());
    let words: Vec<&str> = before.split(' ').collect();
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
    let kind = |word: &str| match families.parse(word).filter(|_| word.starts_with('/')) {
        Some(Family::Kind(scope)) => Some(scope.kind()),
        _ => None,
    };
    match words.as_slice() {
        [_] => families.top_level(),
        ["/help", _] => families.all().iter().map(|f| f.name().to_owned()).collect(),
        [family, _] => families
            .parse(family)
            .filter(|_| family.starts_with('/'))
            .map(Family::subcommands)
            .unwrap_or_default(),
        ["/users", "key", _] => owned(vec!["add", "remove"]),
        ["/backends", "enable" | "disable", ..] => {
            host.registry().kinds().map(str::to_owned).collect()
        }
        [family, sub, _] if *sub != "create" && *sub != "list" && kind(family).is_some() => {
            kind(family).map_or_else(Vec::new, |k| instance_names(host, k))
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
