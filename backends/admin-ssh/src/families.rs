//! The instance families the console offers, read from the backend registry: every kind
//! whose factory declares a [`ConsoleFamily`] gets `/<word> list|create|set|unset|delete`
//! and its maintenance commands, without console code of its own.

use everlock_host::{ConsoleFamily, KindInfo};

/// One backend kind's console family: the kind, where its grants live, and its declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    kind: &'static str,
    access_root: Option<&'static str>,
    console: &'static ConsoleFamily,
}

impl Scope {
    /// A scope for `kind` with the grants under `access_root` and the declaration `console`.
    pub const fn new(
        kind: &'static str,
        access_root: Option<&'static str>,
        console: &'static ConsoleFamily,
    ) -> Scope {
        Scope {
            kind,
            access_root,
            console,
        }
    }

    /// The backend kind.
    pub fn kind(self) -> &'static str {
        self.kind
    }

    /// The access-path root of the kind's instances (`<root>/<instance>`), if it has one.
    pub fn access_root(self) -> Option<&'static str> {
        self.access_root
    }

    /// The command word without `/`, e.g. `oci`.
    pub fn name(self) -> &'static str {
        self.console.word
    }

    /// The kind's declaration.
    pub fn console(self) -> &'static ConsoleFamily {
        self.console
    }

    /// The help family.
    pub fn family(self) -> Family {
        Family::Kind(self)
    }
}

/// Every command family the console knows: the built-in ones and one per declaring kind.
#[derive(Debug, Clone, Default)]
pub struct Families {
    kinds: Vec<Scope>,
}

impl Families {
    /// The families of every kind in `kinds` (in kind order) that declares one.
    pub fn from_kinds(all: impl IntoIterator<Item = KindInfo>) -> Families {
        let mut kinds: Vec<Scope> = Vec::new();
        for f in all {
            let Some(console) = f.console else {
                continue;
            };
            // Two kinds claiming one word would make the second unreachable; the first (in
            // kind order) keeps it, and a built-in family word is never shadowed.
            let taken = kinds.iter().any(|s| s.name() == console.word)
                || Family::BUILT_IN.iter().any(|b| b.name() == console.word);
            if !taken {
                kinds.push(Scope::new(f.kind, f.access_root, console));
            }
        }
        Families { kinds }
    }

    /// Families from explicit scopes (tests and callers without a registry).
    pub fn from_scopes(kinds: Vec<Scope>) -> Families {
        Families { kinds }
    }

    /// Every family, in help order: users, groups, backends, the kinds, store, keys.
    pub fn all(&self) -> Vec<Family> {
        let mut all = vec![Family::Users, Family::Groups, Family::Backends];
        all.extend(self.kinds.iter().map(|s| Family::Kind(*s)));
        all.push(Family::Store);
        all.push(Family::Tls);
        all.push(Family::Keys);
        all
    }

    /// The family a word (with or without its `/`) names.
    pub fn parse(&self, word: &str) -> Option<Family> {
        let word = word.strip_prefix('/').unwrap_or(word);
        self.all().into_iter().find(|f| f.name() == word)
    }

    /// The top-level words, for completion.
    pub fn top_level(&self) -> Vec<String> {
        let mut words = vec!["/help".to_owned()];
        words.extend(self.all().iter().map(|f| format!("/{}", f.name())));
        words.push("/passwd".to_owned());
        words.push("/quit".to_owned());
        words.push("/exit".to_owned());
        words
    }

    /// `/users, /groups, ...` for the usage of an unknown command.
    pub fn summary(&self) -> String {
        let mut words = vec!["/help".to_owned()];
        words.extend(self.all().iter().map(|f| format!("/{}", f.name())));
        words.push("/passwd".to_owned());
        words.push("/quit".to_owned());
        format!("usage: {}", words.join(", "))
    }
}

/// A command family: `/users`, `/groups`, ..., or a backend kind's family such as `/oci`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/users`.
    Users,
    /// `/groups`.
    Groups,
    /// `/backends`.
    Backends,
    /// A backend kind's instances (`/oci`, `/site`, `/hello`), as its factory declares.
    Kind(Scope),
    /// `/store`.
    Store,
    /// `/tls`: certificates.
    Tls,
    /// `/keys`: the user's own SSH keys.
    Keys,
}

impl Family {
    /// The families built into the console.
    pub const BUILT_IN: [Family; 6] = [
        Family::Users,
        Family::Groups,
        Family::Backends,
        Family::Store,
        Family::Tls,
        Family::Keys,
    ];

    /// `users`, `groups`, ...
    pub fn name(self) -> &'static str {
        match self {
            Family::Users => "users",
            Family::Groups => "groups",
            Family::Backends => "backends",
            Family::Kind(scope) => scope.name(),
            Family::Store => "store",
            Family::Tls => "tls",
            Family::Keys => "keys",
        }
    }
}
