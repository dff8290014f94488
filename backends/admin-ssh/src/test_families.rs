//! Console declarations standing in for the registry, site and hello kinds, whose crates this
//! one does not depend on; they mirror what those factories declare.

use everlock_host::{CommandHelp, ConsoleFamily, OptionSpec, OptionValue};

use crate::families::{Families, Scope};

/// `/oci`, as `oci-http` declares it.
pub(crate) const OCI: ConsoleFamily = ConsoleFamily {
    word: "oci",
    noun: "registry",
    default_prefix: Some("/v2"),
    create_options: &[OptionSpec {
        key: "allow-delete",
        summary: "<true|false>",
        required: false,
        allowed: &[],
        value: OptionValue::Bool,
    }],
    public_by_default: false,
    owner_on_create: false,
    commands: &[CommandHelp {
        name: "gc",
        args: "[--untagged] [--dry-run] [--grace-secs N]",
        summary: "gc",
    }],
};

/// `/site`, as `site-http` declares it.
pub(crate) const SITE: ConsoleFamily = ConsoleFamily {
    word: "site",
    noun: "site",
    default_prefix: None,
    create_options: &[
        OptionSpec {
            key: "mode",
            summary: "<mode>",
            required: true,
            allowed: &["markdown", "html"],
            value: OptionValue::Text,
        },
        OptionSpec {
            key: "keep-deploys",
            summary: "<count>",
            required: false,
            allowed: &[],
            value: OptionValue::Integer,
        },
    ],
    public_by_default: true,
    owner_on_create: true,
    commands: &[
        CommandHelp {
            name: "history",
            args: "",
            summary: "history",
        },
        CommandHelp {
            name: "rollback",
            args: "<commit>",
            summary: "rollback",
        },
    ],
};

/// `/hello`, as the example `hello-http` declares it.
pub(crate) const HELLO: ConsoleFamily = ConsoleFamily {
    word: "hello",
    noun: "hello page",
    default_prefix: None,
    create_options: &[
        OptionSpec {
            key: "greeting",
            summary: "<text>",
            required: false,
            allowed: &[],
            value: OptionValue::Text,
        },
        OptionSpec {
            key: "private",
            summary: "<true|false>",
            required: false,
            allowed: &[],
            value: OptionValue::Bool,
        },
    ],
    public_by_default: false,
    owner_on_create: false,
    commands: &[],
};

/// The `/oci` scope.
pub(crate) fn oci() -> Scope {
    Scope::new("oci-http", Some("http/oci"), &OCI)
}

/// The `/site` scope.
pub(crate) fn site() -> Scope {
    Scope::new("site-http", Some("http/site"), &SITE)
}

/// The families of the three stand-in kinds.
pub(crate) fn families() -> Families {
    Families::from_scopes(vec![
        Scope::new("hello-http", Some("http/hello"), &HELLO),
        oci(),
        site(),
    ])
}
