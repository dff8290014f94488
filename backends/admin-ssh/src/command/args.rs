//! The arguments of one sub-command, consumed with precise errors: the bottom of the family
//! grammars, which each family module (and the top-level dispatch) uses without reaching back
//! into `command`.

use crate::families::Family;
use crate::usage::{Mistake, UsageError};

/// Arguments of one sub-command, consumed with precise errors.
pub(super) struct Args<'a> {
    family: Family,
    sub: &'a str,
    words: Vec<&'a str>,
    /// Whether `--json` was given (sub-commands that list).
    pub(super) json: bool,
}

impl<'a> Args<'a> {
    pub(super) fn new(
        family: Family,
        sub: &'a str,
        words: &[&'a str],
        allow_json: bool,
    ) -> Result<Self, UsageError> {
        let mut args = Args {
            family,
            sub,
            words: Vec::new(),
            json: false,
        };
        for w in words {
            if *w == "--json" && allow_json {
                args.json = true;
            } else {
                args.words.push(w);
            }
        }
        Ok(args)
    }

    pub(super) fn error(&self, mistake: Mistake) -> UsageError {
        UsageError::new(mistake, self.family.usage_of(self.sub))
    }

    /// Exactly `names.len()` arguments.
    pub(super) fn exactly(&self, names: &[&str]) -> Result<Vec<String>, UsageError> {
        if let Some(missing) = names.get(self.words.len()) {
            return Err(self.error(Mistake::Missing((*missing).to_owned())));
        }
        if let Some(extra) = self.words.get(names.len()) {
            return Err(self.error(Mistake::Unexpected((*extra).to_owned())));
        }
        Ok(self.words.iter().map(|w| (*w).to_owned()).collect())
    }

    /// The first `names.len()` arguments and the rest.
    pub(super) fn at_least(
        &self,
        names: &[&str],
    ) -> Result<(Vec<String>, Vec<String>), UsageError> {
        if let Some(missing) = names.get(self.words.len()) {
            return Err(self.error(Mistake::Missing((*missing).to_owned())));
        }
        let (head, tail) = self.words.split_at(names.len());
        Ok((
            head.iter().map(|w| (*w).to_owned()).collect(),
            tail.iter().map(|w| (*w).to_owned()).collect(),
        ))
    }
}

pub(super) fn take2(v: Vec<String>) -> (String, String) {
    let mut it = v.into_iter();
    (it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

pub(super) fn take3(v: Vec<String>) -> (String, String, String) {
    let mut it = v.into_iter();
    (
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    )
}

pub(super) fn take1(v: Vec<String>) -> String {
    v.into_iter().next().unwrap_or_default()
}
