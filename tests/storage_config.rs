//! `[storage]` objects/meta, `[storage.s3]` and `[storage.postgres]`: parsing, every
//! validation message, secrets kept out of `Debug`, the flag/env layer, `config check` on the
//! documented example, and `serve` refusing storage this build does not have yet.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::everlock_bin;
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

// ---- The real binary ----

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let file = dir.join("everlock.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// The commented multi-node block of examples/everlock.toml, uncommented.
fn documented_block() -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/everlock.toml"
    ))
    .unwrap();
    let block: Vec<&str> = example
        .lines()
        .skip_while(|l| !l.starts_with("# objects = \"s3\""))
        .take_while(|l| l.starts_with("# "))
        .map(|l| &l[2..])
        .collect();
    assert!(block.len() >= 10, "the block is missing: {block:?}");
    format!("[storage]\n{}\n", block.join("\n"))
}

#[test]
fn config_check_accepts_the_documented_multi_node_example() {
    let dir = tempfile::tempdir().unwrap();
    let text = documented_block();
    // Every key of [storage.s3] and [storage.postgres] is documented there.
    for key in [
        "objects",
        "meta",
        "endpoint",
        "bucket",
        "prefix",
        "region",
        "access-key-id",
        "secret-access-key",
        "allow-http",
        "url",
    ] {
        assert!(
            text.contains(&format!("\n{key} = ")),
            "{key} undocumented:\n{text}"
        );
    }
    let file = write(dir.path(), &text);
    let out = Command::new(everlock_bin())
        .args(["config", "check"])
        .arg(&file)
        .env_remove("EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{text}", stderr(&out));
}

#[test]
fn config_check_takes_the_secret_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        &format!("[storage]\nobjects = \"s3\"\n{S3_NO_SECRET}"),
    );
    let check = |env: Option<&str>| {
        let mut cmd = Command::new(everlock_bin());
        cmd.args(["config", "check"]).arg(&file);
        match env {
            Some(v) => cmd.env("EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY", v),
            None => cmd.env_remove("EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY"),
        };
        cmd.output().unwrap()
    };
    let out = check(None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: [storage.s3] secret-access-key is required: set it in the file or in EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY\n"
    );
    let out = check(Some("from-env"));
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Runs `serve` on `config` with `env`, expecting a refusal before anything starts.
fn serve_refusal(config: &str, env: &[(&str, &str)], args: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), config);
    let mut cmd = Command::new(everlock_bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--frontend-http-listen-http",
            "off",
            "--frontend-http-listen-https",
            "off",
        ])
        .args(["--frontend-ssh-listen", "off", "--metrics-listen", "off"])
        .args(args)
        .stdin(std::process::Stdio::null());
    for var in ["EVERLOCK_STORAGE_OBJECTS", "EVERLOCK_STORAGE_META"] {
        cmd.env_remove(var);
    }
    let child = cmd
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (wait_briefly(child), dir)
}

/// The output of a process that must exit on its own; one still running after 20 s (a server
/// that started instead of refusing) is killed and fails the test instead of hanging it.
fn wait_briefly(mut child: std::process::Child) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("the server started instead of refusing: {}", stderr(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Shared storage (S3 + PostgreSQL) on loopback ports nothing listens on, with secrets in the
/// file that no message may show.
fn unreachable_shared() -> String {
    let closed = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    format!(
        "[storage]\nobjects = \"s3\"\nmeta = \"postgres\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:{}\"\nallow-http = true\nbucket = \"everlock\"\naccess-key-id = \"AKIDEXAMPLE\"\nsecret-access-key = \"s3-very-secret\"\n[storage.postgres]\nurl = \"postgres://everlock:pg-very-secret@127.0.0.1:{}/everlock\"\n",
        closed(),
        closed()
    )
}

#[test]
fn serve_on_unreachable_shared_storage_stops_with_one_line() {
    let (out, _dir) = serve_refusal(&unreachable_shared(), &[], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        !err.contains("very-secret"),
        "a secret reached the message: {err}"
    );
}

#[test]
fn serve_takes_storage_from_the_environment_and_flags() {
    // Only the environment names S3: the refusal proves the variables reach the server.
    let env = [
        ("EVERLOCK_STORAGE_OBJECTS", "s3"),
        ("EVERLOCK_STORAGE_S3_ENDPOINT", "http://127.0.0.1:8333"),
        ("EVERLOCK_STORAGE_S3_BUCKET", "everlock"),
        ("EVERLOCK_STORAGE_S3_ACCESS_KEY_ID", "AKID"),
        ("EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY", "env-secret"),
    ];
    let (out, _dir) = serve_refusal("", &env, &[]);
    assert_eq!(
        stderr(&out),
        "error: [storage.s3] endpoint http://127.0.0.1:8333 is plain HTTP: set allow-http = true to send credentials and data unencrypted, or use https://\n"
    );
    // With plain HTTP allowed the server goes on to check the bucket, which nothing serves.
    let (out, _dir) = serve_refusal("", &env, &["--storage-s3-allow-http"]);
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "error: invalid object storage: bucket everlock at http://127.0.0.1:8333 is unusable: "
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("env-secret"), "{err}");
    // Flags reach the section too: meta from the command line, objects left at "file".
    let (out, _dir) = serve_refusal(
        "",
        &[("EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY", "env-secret")],
        &[
            "--storage-meta",
            "postgres",
            "--storage-postgres-url",
            "postgres://everlock@db/everlock",
        ],
    );
    assert_eq!(
        stderr(&out),
        "error: [storage] meta = \"postgres\" needs objects = \"s3\": nodes sharing the metadata must share the object bytes too, and \"file\" keeps them on one node's disk\n"
    );
}

#[test]
fn a_password_on_the_command_line_is_refused() {
    let (out, _dir) = serve_refusal(
        "",
        &[],
        &[
            "--storage-postgres-url",
            "postgres://everlock:hunter2@db/everlock",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err,
        "error: --storage-postgres-url must not carry a password (command lines are visible to every user): put it in EVERLOCK_STORAGE_POSTGRES_PASSWORD\n"
    );
    // The same URL from the environment is fine: the server goes on to reach the storage,
    // which nothing serves here, and says so in one line without the password.
    let (out, _dir) = serve_refusal(
        "",
        &[
            (
                "EVERLOCK_STORAGE_POSTGRES_URL",
                "postgres://everlock:hunter2@127.0.0.1:9/everlock",
            ),
            ("EVERLOCK_STORAGE_OBJECTS", "s3"),
            ("EVERLOCK_STORAGE_META", "postgres"),
            ("EVERLOCK_STORAGE_S3_ENDPOINT", "http://127.0.0.1:9"),
            ("EVERLOCK_STORAGE_S3_ALLOW_HTTP", "true"),
            ("EVERLOCK_STORAGE_S3_BUCKET", "everlock"),
            ("EVERLOCK_STORAGE_S3_ACCESS_KEY_ID", "AKID"),
            ("EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY", "s"),
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn offline_commands_refuse_shared_storage_but_store_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), &unreachable_shared());
    let run = |command: &[&str]| {
        Command::new(everlock_bin())
            .arg("--config")
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(command)
            .env_remove("EVERLOCK_STORAGE_OBJECTS")
            .env_remove("EVERLOCK_STORAGE_META")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    for command in [
        &["oci", "gc", "default", "--dry-run"][..],
        &["backup", "/nonexistent/backup"],
        &["users", "passwd", "admin"],
    ] {
        let out = run(command);
        assert_eq!(out.status.code(), Some(1), "{command:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "error: this command does not yet support [storage] objects = \"s3\" and meta = \"postgres\" (only `everlock store` and `everlock serve` do); refusing to run rather than work on local files\n",
            "{command:?}"
        );
        assert!(!dir.path().join("data").exists(), "{command:?}");
    }
    // `everlock store` works on the configured storage: here it fails to reach it, in one
    // line that shows no secret.
    let out = run(&["store", "list"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("very-secret"), "{err}");
}

#[test]
fn offline_commands_other_than_store_refuse_s3_objects() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = format!(
        "[storage]\nobjects = \"s3\"\n{S3_NO_SECRET}secret-access-key = \"s3-very-secret\"\n"
    );
    let file = write(dir.path(), &s3);
    for command in [
        &["oci", "gc", "default", "--dry-run"][..],
        &["backup", "/nonexistent/backup"],
        &["users", "passwd", "admin"],
    ] {
        let out = Command::new(everlock_bin())
            .arg("--config")
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(command)
            .env_remove("EVERLOCK_STORAGE_OBJECTS")
            .env_remove("EVERLOCK_STORAGE_META")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{command:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "error: this command does not yet support [storage] objects = \"s3\" (only `everlock store` and `everlock serve` do); refusing to run rather than work on local files\n",
            "{command:?}"
        );
        assert!(!dir.path().join("data").exists(), "{command:?}");
    }
}
