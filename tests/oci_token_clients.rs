//! Docker token authentication with more real clients (issue #15 item 5): oras-py, podman
//! and the Docker CLI (with its daemon) log in, push and pull through an `auth = "token"`
//! instance over HTTPS the way they do against Docker Hub; anonymous tokens pull what `anon`
//! may read and nothing else.
//!
//! Each client is optional locally (a visible SKIP) and required under `CI`:
//! oras-py lives in the CI venv (`/opt/everlock-ci/venv/bin/pip install oras==0.2.43`),
//! podman and dockerd come from Debian (`podman`, `docker.io`).

#![cfg(feature = "backend-oci-http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
#[path = "support/dockerd.rs"]
mod dockerd;
mod oci_common;
#[path = "support/token_registry.rs"]
mod token_registry;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::{have_binary, skip};
use oci_common::{ALICE, Layout, PULLER, cert_dir};
use token_registry::{Registry, start};

/// The Python of the CI venv, where oras-py is installed.
const VENV_PYTHON: &str = "/opt/everlock-ci/venv/bin/python3";
/// The oras-py driver script.
const ORAS_SCRIPT: &str = include_str!("support/oras_token.py");

/// Runs `cmd`, feeding `stdin`, and prints what it said (shown when the test fails).
fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let started = Instant::now();
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "{:?}: {} in {:.1?}\n{}{}",
        cmd,
        out.status,
        started.elapsed(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether the venv's Python can import oras-py (a SKIP, or a failure under `CI`, if not).
fn have_oras_py() -> bool {
    let ok = Command::new(VENV_PYTHON)
        .args(["-c", "import oras.client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip("oras-py is not installed in /opt/everlock-ci/venv (pip install oras==0.2.43)");
    }
    ok
}

/// Runs the oras-py driver as `user` (anonymous with `None`) with a private home.
fn oras(reg: &Registry, user: Option<(&str, &str)>, args: &[&str]) -> Output {
    let script = reg.work.join("oras_token.py");
    std::fs::write(&script, ORAS_SCRIPT).unwrap();
    let home = reg
        .work
        .join(format!("oras-home-{}", user.map_or("anon", |u| u.0)));
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(VENV_PYTHON);
    cmd.arg(&script)
        .args(args)
        .env("HOME", &home)
        .env("REQUESTS_CA_BUNDLE", &reg.ca)
        .env_remove("EVERLOCK_USER")
        .env_remove("EVERLOCK_PASSWORD");
    if let Some((login, password)) = user {
        cmd.env("EVERLOCK_USER", login)
            .env("EVERLOCK_PASSWORD", password);
    }
    run(&mut cmd, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_py_pushes_and_pulls_through_tokens() {
    if !have_oras_py() {
        return;
    }
    let reg = start().await;
    let artifact_dir = reg.work.join("artifact");
    std::fs::create_dir_all(&artifact_dir).unwrap();
    let artifact = artifact_dir.join("notes.txt");
    let bytes = b"an artifact pushed by oras-py through a token\n".repeat(100);
    std::fs::write(&artifact, &bytes).unwrap();
    let artifact = artifact.to_str().unwrap();

    for repo in ["team/art", "public/art"] {
        let target = format!("{}/{repo}:v1", reg.host);
        let out = oras(&reg, Some(ALICE), &["push", &target, artifact]);
        assert!(out.status.success(), "{}", reg.server.log());
    }
    // A reader pulls with credentials, anon pulls what it may read; the bytes survive.
    for (user, repo) in [(Some(PULLER), "team/art"), (None, "public/art")] {
        let outdir = reg.work.join(format!("pulled-{}", repo.replace('/', "-")));
        let target = format!("{}/{repo}:v1", reg.host);
        let out = oras(&reg, user, &["pull", &target, outdir.to_str().unwrap()]);
        assert!(out.status.success(), "{}", reg.server.log());
        assert_eq!(std::fs::read(outdir.join("notes.txt")).unwrap(), bytes);
    }
    // Anonymous pulls of a repository anon may not read, and pushes by a reader, fail.
    let outdir = reg.work.join("denied");
    let target = format!("{}/team/art:v1", reg.host);
    let out = oras(&reg, None, &["pull", &target, outdir.to_str().unwrap()]);
    assert!(!out.status.success(), "anon must not pull team/art");
    assert!(!outdir.join("notes.txt").exists());
    let target = format!("{}/team/art:v2", reg.host);
    let out = oras(&reg, Some(PULLER), &["push", &target, artifact]);
    assert!(!out.status.success(), "a reader must not push");
}

/// The image ID (config digest) a `pull` or `inspect` printed: the last non-empty line.
fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// podman with private storage (`vfs`, which needs no overlay mounts), auth file and home
/// under `work`.
fn podman(work: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(work.join("podman/root"))
        .arg("--runroot")
        .arg(work.join("podman/run"))
        .args(["--storage-driver", "vfs", "--events-backend", "file"])
        .args(args)
        .env("REGISTRY_AUTH_FILE", work.join("podman-auth.json"))
        .env("HOME", work)
        .env("XDG_RUNTIME_DIR", work.join("podman/xdg"))
        .current_dir(work);
    std::fs::create_dir_all(work.join("podman/xdg")).unwrap();
    run(&mut cmd, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_logs_in_pushes_and_pulls_through_tokens() {
    if !have_binary("podman") {
        return;
    }
    let reg = start().await;
    let work = &reg.work;
    let certs = cert_dir(&reg.server.ca_pem(), work);
    let certs = certs.to_str().unwrap();
    let host = reg.host.as_str();
    // podman insists that an auth file it is pointed at exists.
    std::fs::write(work.join("podman-auth.json"), r#"{"auths":{}}"#).unwrap();
    let mut layout = Layout::new(&work.join("layout"));
    layout.image("amd64", b"pushed by podman through a token", Some("v1"));
    // Relative: podman names the image after the layout's path, which must be lower case.
    let out = podman(work, &["pull", "--quiet", "oci:layout:v1"], None);
    assert!(out.status.success());
    let id = last_line(&out);

    let login = |user: (&str, &str)| {
        let out = podman(
            work,
            &[
                "login",
                "--cert-dir",
                certs,
                "-u",
                user.0,
                "--password-stdin",
                host,
            ],
            Some(user.1),
        );
        assert!(out.status.success(), "{}", reg.server.log());
    };
    let push = |image: &str| {
        podman(work, &["tag", &id, image], None);
        podman(work, &["push", "--cert-dir", certs, image], None)
            .status
            .success()
    };
    let pull = |image: &str| {
        let out = podman(work, &["pull", "--quiet", "--cert-dir", certs, image], None);
        out.status.success().then(|| last_line(&out))
    };
    login(ALICE);
    for repo in ["team/pod", "public/pod"] {
        assert!(push(&format!("{host}/{repo}:v1")), "{}", reg.server.log());
    }
    let out = podman(work, &["rmi", "--force", &id], None);
    assert!(out.status.success());

    // Anonymous: anon's repository pulls, the same image comes back; team/ stays closed.
    assert!(podman(work, &["logout", host], None).status.success());
    assert_eq!(
        pull(&format!("{host}/public/pod:v1")).as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        pull(&format!("{host}/team/pod:v1")),
        None,
        "anon must not pull team/"
    );
    // A reader pulls but does not push.
    login(PULLER);
    assert_eq!(
        pull(&format!("{host}/team/pod:v1")).as_deref(),
        Some(id.as_str())
    );
    assert!(
        !push(&format!("{host}/team/pod:v2")),
        "a reader must not push"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_logs_in_pushes_and_pulls_through_tokens() {
    if !have_binary("dockerd") || !have_binary("docker") || !have_binary("skopeo") {
        return;
    }
    let reg = start().await;
    let work = &reg.work;
    let host = reg.host.as_str();
    let daemon = match dockerd::Dockerd::start(host) {
        Ok(d) => d,
        Err(why) => {
            skip(&format!("dockerd does not start here: {why}"));
            return;
        }
    };
    let config = work.join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let docker = |args: &[&str], stdin: Option<&str>| run(daemon.docker(&config).args(args), stdin);

    // The image enters the daemon as an archive skopeo writes from an OCI layout.
    let mut layout = Layout::new(&work.join("layout"));
    layout.image("amd64", b"pushed by docker through a token", Some("v1"));
    let archive = work.join("image.tar");
    let out = oci_common::skopeo(
        work,
        &[
            "copy",
            &format!("oci:{}:v1", layout.dir.display()),
            &format!("docker-archive:{}:{host}/team/dock:v1", archive.display()),
        ],
    );
    assert!(out.status.success());
    assert!(
        docker(&["load", "--input", archive.to_str().unwrap()], None)
            .status
            .success()
    );
    let inspect = |image: &str| {
        let out = docker(&["image", "inspect", "--format", "{{.Id}}", image], None);
        out.status.success().then(|| last_line(&out))
    };
    let id = inspect(&format!("{host}/team/dock:v1")).unwrap();

    let login = |user: (&str, &str)| {
        let out = docker(
            &["login", "-u", user.0, "--password-stdin", host],
            Some(user.1),
        );
        assert!(
            out.status.success(),
            "{}\n{}",
            reg.server.log(),
            daemon.log_tail()
        );
    };
    let push = |image: &str| {
        docker(&["tag", &id, image], None);
        docker(&["push", image], None).status.success()
    };
    let pull = |image: &str| {
        if !docker(&["pull", image], None).status.success() {
            return None;
        }
        inspect(image)
    };
    // The daemon checks credentials through the token endpoint: a wrong password fails (it
    // "succeeded" unchecked while the anonymous ping answered 200).
    let out = docker(
        &["login", "-u", ALICE.0, "--password-stdin", host],
        Some("not-the-password"),
    );
    assert!(!out.status.success(), "a wrong password must not log in");
    login(ALICE);
    for repo in ["team/dock", "public/dock"] {
        let ok = push(&format!("{host}/{repo}:v1"));
        assert!(ok, "{}\n{}", reg.server.log(), daemon.log_tail());
    }
    let out = docker(&["image", "rm", "--force", &id], None);
    assert!(out.status.success());

    assert!(docker(&["logout", host], None).status.success());
    assert_eq!(
        pull(&format!("{host}/public/dock:v1")).as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        pull(&format!("{host}/team/dock:v1")),
        None,
        "anon must not pull team/"
    );
    login(PULLER);
    assert_eq!(
        pull(&format!("{host}/team/dock:v1")).as_deref(),
        Some(id.as_str())
    );
    assert!(
        !push(&format!("{host}/team/dock:v2")),
        "a reader must not push"
    );
}
