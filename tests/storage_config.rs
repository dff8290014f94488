//! `[storage]` objects/meta, `[storage.s3]` and `[storage.postgres]`: parsing, every
//! validation message, secrets kept out of `Debug` and the flag/env layer. What the binary
//! does with the section (`config check`, `serve`, the offline commands) is in
//! `storage_config_cli.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

use std::path::Path;

use everlock_host::config::{
    Config, ConfigOverrides, MetaStorage, ObjectStorage, Secret, StorageOverrides,
};

/// A complete multi-node section with both secrets in the file.
const FULL: &str = r#"
[storage]
objects = "s3"
meta = "postgres"
[storage.s3]
endpoint = "HTTPS://s3.example.com:9000/"
bucket = "everlock"
prefix = "prod/eu/"
region = "eu-central-1"
access-key-id = "AKIDEXAMPLE"
secret-access-key = "s3-very-secret"
[storage.postgres]
url = "postgres://everlock:pg-very-secret@db.example.com:5432/everlock"
"#;

/// A complete S3 section without the secret key.
const S3_NO_SECRET: &str = "[storage.s3]\nendpoint = \"https://s3.example.com\"\nbucket = \"everlock\"\naccess-key-id = \"AKID\"\n";

fn parse(text: &str) -> Config {
    Config::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn selection_error(text: &str) -> String {
    parse(text).storage.selection().unwrap_err().to_string()
}

#[test]
fn the_defaults_keep_files_and_sqlite() {
    let s = parse("").storage.selection().unwrap();
    assert_eq!(s.objects, ObjectStorage::File);
    assert_eq!(s.meta, MetaStorage::Sqlite);
    let s = parse("[storage]\nobjects = \"file\"\nmeta = \"sqlite\"\n")
        .storage
        .selection()
        .unwrap();
    assert_eq!(
        (s.objects, s.meta),
        (ObjectStorage::File, MetaStorage::Sqlite)
    );
}

#[test]
fn a_full_multi_node_section_parses() {
    let s = parse(FULL).storage.selection().unwrap();
    let ObjectStorage::S3(s3) = s.objects else {
        panic!("not s3: {:?}", s.objects)
    };
    assert_eq!(s3.endpoint.as_str(), "https://s3.example.com:9000");
    assert_eq!(s3.bucket.as_str(), "everlock");
    assert_eq!(s3.prefix.as_str(), "prod/eu");
    assert_eq!(s3.region, "eu-central-1");
    assert_eq!(s3.access_key_id, "AKIDEXAMPLE");
    assert_eq!(s3.secret_access_key.expose(), "s3-very-secret");
    assert!(!s3.allow_http);
    let MetaStorage::Postgres(pg) = s.meta else {
        panic!("not postgres: {:?}", s.meta)
    };
    assert_eq!(
        pg.url.expose(),
        "postgres://everlock:pg-very-secret@db.example.com:5432/everlock"
    );
    assert_eq!(pg.password, None);

    // s3 + sqlite (one node, bytes in object storage) is valid too; region defaults.
    let one_node =
        format!("[storage]\nobjects = \"s3\"\n{S3_NO_SECRET}secret-access-key = \"x\"\n");
    let s = parse(&one_node).storage.selection().unwrap();
    assert_eq!(s.meta, MetaStorage::Sqlite);
    let ObjectStorage::S3(s3) = s.objects else {
        panic!()
    };
    assert_eq!(s3.region, "us-east-1");
    assert_eq!(s3.prefix.as_str(), "");
}

#[test]
fn every_validation_error_has_its_exact_text() {
    let s3_ok = format!("{S3_NO_SECRET}secret-access-key = \"x\"\n");
    let cases: Vec<(String, &str)> = vec![
        (
            "[storage]\nobjects = \"s3\"\n".into(),
            "[storage] objects = \"s3\" needs a [storage.s3] section (endpoint, bucket, access-key-id, secret-access-key)",
        ),
        (
            format!("[storage]\nobjects = \"file\"\n{s3_ok}"),
            "[storage.s3] is configured but [storage] objects = \"file\"; set objects = \"s3\" or remove [storage.s3]",
        ),
        (
            "[storage.postgres]\nurl = \"postgres://h/db\"\n".into(),
            "[storage.postgres] is configured but [storage] meta = \"sqlite\"; set meta = \"postgres\" or remove [storage.postgres]",
        ),
        (
            "[storage]\nmeta = \"postgres\"\n[storage.postgres]\nurl = \"postgres://h/db\"\n".into(),
            "[storage] meta = \"postgres\" needs objects = \"s3\": nodes sharing the metadata must share the object bytes too, and \"file\" keeps them on one node's disk",
        ),
        (
            format!("[storage]\nobjects = \"s3\"\nmeta = \"postgres\"\n{s3_ok}"),
            "[storage] meta = \"postgres\" needs [storage.postgres] url = \"postgres://user@host/database\"",
        ),
        (
            format!("[storage]\nobjects = \"s3\"\nmeta = \"postgres\"\n{s3_ok}[storage.postgres]\n"),
            "[storage] meta = \"postgres\" needs [storage.postgres] url = \"postgres://user@host/database\"",
        ),
        (
            "[storage]\nobjects = \"s3\"\n[storage.s3]\nbucket = \"b12\"\n".into(),
            "[storage.s3] endpoint is required when objects = \"s3\"",
        ),
        (
            "[storage]\nobjects = \"s3\"\n[storage.s3]\nendpoint = \"https://x\"\n".into(),
            "[storage.s3] bucket is required when objects = \"s3\"",
        ),
        (
            "[storage]\nobjects = \"s3\"\n[storage.s3]\nendpoint = \"https://x\"\nbucket = \"b12\"\naccess-key-id = \" \"\n".into(),
            "[storage.s3] access-key-id is required when objects = \"s3\"",
        ),
        (
            format!("[storage]\nobjects = \"s3\"\n{s3_ok}region = \"\"\n"),
            "[storage.s3] region is required when objects = \"s3\"",
        ),
        (
            format!("[storage]\nobjects = \"s3\"\n{S3_NO_SECRET}"),
            "[storage.s3] secret-access-key is required: set it in the file or in EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY",
        ),
        (
            format!("[storage]\nobjects = \"s3\"\n{S3_NO_SECRET}secret-access-key = \"\"\n"),
            "[storage.s3] secret-access-key is required: set it in the file or in EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY",
        ),
        (
            "[storage]\nobjects = \"s3\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:8333\"\nbucket = \"b12\"\naccess-key-id = \"k\"\nsecret-access-key = \"s\"\n".into(),
            "[storage.s3] endpoint http://127.0.0.1:8333 is plain HTTP: set allow-http = true to send credentials and data unencrypted, or use https://",
        ),
        (
            "[storage]\nobjects = \"s3\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:8333\"\nbucket = \"b12\"\naccess-key-id = \"k\"\nsecret-access-key = \"s\"\nallow-http = false\n".into(),
            "[storage.s3] endpoint http://127.0.0.1:8333 is plain HTTP: set allow-http = true to send credentials and data unencrypted, or use https://",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(selection_error(&text), expected, "for:\n{text}");
    }
    // allow-http = true makes the same endpoint acceptable.
    let http = "[storage]\nobjects = \"s3\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:8333\"\nbucket = \"b12\"\naccess-key-id = \"k\"\nsecret-access-key = \"s\"\nallow-http = true\n";
    assert!(parse(http).storage.selection().is_ok());
}

#[test]
fn malformed_values_fail_at_their_line_with_their_text() {
    let cases = [
        (
            "[storage]\nobjects = \"gcs\"\n",
            "invalid config file t.toml: line 2, column 11: unknown variant `gcs`, expected `file` or `s3`",
        ),
        (
            "[storage]\nmeta = \"mysql\"\n",
            "invalid config file t.toml: line 2, column 8: unknown variant `mysql`, expected `sqlite` or `postgres`",
        ),
        (
            "[storage.s3]\nendpoint = \"ftp://x\"\n",
            "invalid config file t.toml: line 2, column 12: invalid S3 endpoint `ftp://x`: the scheme must be https:// or http://",
        ),
        (
            "[storage.s3]\nendpoint = \"https://key:secret@x\"\n",
            "invalid config file t.toml: line 2, column 12: invalid S3 endpoint `https://key:secret@x`: credentials in the URL are not allowed; use access-key-id and secret-access-key",
        ),
        (
            "[storage.s3]\nbucket = \"Bad_Bucket\"\n",
            "invalid config file t.toml: line 2, column 10: invalid S3 bucket `Bad_Bucket`: use 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
        ),
        (
            "[storage.s3]\nprefix = \"/abs\"\n",
            "invalid config file t.toml: line 2, column 10: invalid S3 prefix `/abs`: use printable ASCII segments separated by '/', without a leading '/', empty, '.' or '..' segments",
        ),
        (
            "[storage.s3]\nsecret-key = \"x\"\n",
            "invalid config file t.toml: line 2, column 1: unknown field `secret-key`, expected one of `endpoint`, `bucket`, `prefix`, `region`, `access-key-id`, `secret-access-key`, `allow-http`",
        ),
        (
            "[storage.postgres]\nurl = \"mysql://u:hunter2@h/db\"\n",
            "invalid config file t.toml: line 2, column 7: invalid PostgreSQL url `mysql://u:***@h/db`: expected postgres://user@host[:port]/database",
        ),
        (
            "[storage.postgres]\npassword = \"hunter2\"\n",
            "invalid config file t.toml: line 2, column 1: unknown field `password`, expected `url` or `max-connections`",
        ),
    ];
    for (text, expected) in cases {
        let err = Config::parse(text, Path::new("t.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, expected, "for:\n{text}");
    }
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let mut config = parse(FULL);
    ConfigOverrides {
        storage: StorageOverrides {
            postgres_password: Some(Secret::new("env-pg-secret")),
            ..StorageOverrides::default()
        },
        ..ConfigOverrides::default()
    }
    .apply(&mut config);
    let selection = config.storage.selection().unwrap();
    for text in [
        format!("{config:?}"),
        format!("{selection:?}"),
        format!("{config:#?}"),
    ] {
        for secret in ["s3-very-secret", "pg-very-secret", "env-pg-secret"] {
            assert!(!text.contains(secret), "{secret} leaked into: {text}");
        }
        assert!(text.contains("***"), "{text}");
        // The rest stays visible: it is what an operator debugs with.
        assert!(text.contains("AKIDEXAMPLE"), "{text}");
        assert!(text.contains("everlock:***@db.example.com:5432"), "{text}");
    }
    assert_eq!(format!("{:?}", Secret::new("x")), "***");
    // Errors about a URL show it redacted, including a `password=` parameter.
    let err = Config::parse(
        "[storage.postgres]\nurl = \"postgres://u:hunter2@h/db?password=hunter3 x\"\n",
        Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(!err.contains("hunter"), "{err}");
}

#[test]
fn the_flag_and_env_layer_reaches_every_key() {
    let mut config = parse("[storage]\nmaintenance-grace-secs = 5\n");
    let o = StorageOverrides {
        maintenance_grace_secs: Some(7),
        objects: Some("s3".parse().unwrap()),
        meta: Some("postgres".parse().unwrap()),
        s3_endpoint: Some("http://127.0.0.1:8333".parse().unwrap()),
        s3_bucket: Some("flag-bucket".parse().unwrap()),
        s3_prefix: Some("p".parse().unwrap()),
        s3_region: Some("r1".into()),
        s3_access_key_id: Some("id".into()),
        s3_allow_http: Some(true),
        s3_secret_access_key: Some(Secret::new("env-s3")),
        postgres_url: Some("postgresql://everlock@db/everlock".parse().unwrap()),
        postgres_password: Some(Secret::new("env-pg")),
    };
    ConfigOverrides {
        storage: o,
        ..ConfigOverrides::default()
    }
    .apply(&mut config);
    assert_eq!(config.storage.grace().as_secs(), 7);
    let s = config.storage.selection().unwrap();
    let (ObjectStorage::S3(s3), MetaStorage::Postgres(pg)) = (s.objects, s.meta) else {
        panic!("not s3+postgres")
    };
    assert_eq!(s3.endpoint.as_str(), "http://127.0.0.1:8333");
    assert!(s3.allow_http);
    assert_eq!(
        (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_str()),
        ("flag-bucket", "p", "r1")
    );
    assert_eq!(s3.access_key_id, "id");
    assert_eq!(s3.secret_access_key.expose(), "env-s3");
    assert_eq!(pg.url.expose(), "postgresql://everlock@db/everlock");
    assert_eq!(pg.password.unwrap().expose(), "env-pg");
}

#[test]
fn environment_secrets_override_the_file_but_never_create_a_section() {
    let secrets = ConfigOverrides {
        storage: StorageOverrides {
            s3_secret_access_key: Some(Secret::new("from-env")),
            postgres_password: Some(Secret::new("pg-env")),
            ..StorageOverrides::default()
        },
        ..ConfigOverrides::default()
    };
    // Exported for every process on a file-backed server: harmless.
    let mut plain = parse("");
    secrets.apply(&mut plain);
    assert!(plain.storage.s3.is_none() && plain.storage.postgres.is_none());
    assert!(plain.storage.selection().is_ok());
    // With a section, the environment wins over the file (flags > env > file).
    let mut full = parse(FULL);
    secrets.apply(&mut full);
    let s = full.storage.selection().unwrap();
    let (ObjectStorage::S3(s3), MetaStorage::Postgres(pg)) = (s.objects, s.meta) else {
        panic!()
    };
    assert_eq!(s3.secret_access_key.expose(), "from-env");
    assert_eq!(pg.password.unwrap().expose(), "pg-env");
}
