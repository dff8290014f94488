//! `[storage]` through the real binary: `config check` on the documented multi-node example,
//! secrets from the environment, `serve` stopping with one line on unreachable shared storage
//! or a password on the command line, and the offline commands refusing shared storage. The
//! parsing and validation of the same section is in `storage_config.rs`.

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

/// A complete S3 section without the secret key.
const S3_NO_SECRET: &str = "[storage.s3]\nendpoint = \"https://s3.example.com\"\nbucket = \"everlock\"\naccess-key-id = \"AKID\"\n";

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
