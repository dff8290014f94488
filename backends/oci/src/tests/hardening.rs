//! Regression tests of the hardening issue: upload session limits, unknown session ids, a
//! full disk, and the anonymous ping.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use everlock_host::InstanceStore;
use everlock_host::storage::StoreManager;

use super::*;

/// A request whose answer may be a 5xx (`Reg::req` treats those as test failures).
async fn raw(
    reg: &Reg,
    method: &str,
    uri: &str,
    who: Option<(&str, &str)>,
    body: impl Into<Body>,
) -> Reply {
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri);
    if let Some((u, p)) = who {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        b = b.header("authorization", format!("Basic {token}"));
    }
    let response = reg
        .router
        .clone()
        .oneshot(b.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

async fn start_upload(reg: &Reg, repo: &str) -> Reply {
    reg.req(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        Some(ALICE),
        &[],
        Body::empty(),
    )
    .await
}

fn upload_files(store: &Store) -> usize {
    std::fs::read_dir(store.dir().join("uploads"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn open_upload_sessions_are_capped_per_repository() {
    let reg = Reg::with_settings("max-open-uploads = 3").await;
    let mut locations = Vec::new();
    for _ in 0..3 {
        let r = start_upload(&reg, "team/app").await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        locations.push(r.header("location").to_owned());
    }
    let r = start_upload(&reg, "team/app").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.code(), "TOOMANYREQUESTS");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    let store = reg.store().await;
    assert_eq!(
        store.uploads().await.unwrap().len(),
        3,
        "the refusal made no row"
    );
    assert_eq!(upload_files(&store), 3, "the refusal made no file");
    // Other repositories have their own budget, and single-request pushes open no session.
    assert_eq!(
        start_upload(&reg, "team/other").await.status,
        StatusCode::ACCEPTED
    );
    reg.push_blob("team/app", b"monolithic").await;
    // A cancelled session frees its place.
    let r = reg
        .req("DELETE", &locations[0], Some(ALICE), &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        start_upload(&reg, "team/app").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        start_upload(&reg, "team/app").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(crate::settings::Settings::default().max_open_uploads, 1000);
}

#[tokio::test]
async fn unknown_upload_ids_get_404_and_create_no_state() {
    let reg = Reg::new().await;
    for i in 0..20u32 {
        let id = format!("{:032x}", 0xdead_0000 + i);
        let loc = format!("/v2/team/app/blobs/uploads/{id}");
        let digest = OciDigest::sha256_of(b"x");
        for (method, uri, body) in [
            ("PATCH", loc.clone(), b"data".to_vec()),
            ("PUT", format!("{loc}?digest={digest}"), b"x".to_vec()),
            ("GET", loc.clone(), Vec::new()),
            ("DELETE", loc.clone(), Vec::new()),
        ] {
            let r = reg.req(method, &uri, Some(ALICE), &[], body).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
            assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN", "{method} {uri}");
        }
    }
    // A real session of another repository is unknown here, and stays untouched.
    let loc = start_upload(&reg, "team/other")
        .await
        .header("location")
        .to_owned();
    let id = loc.rsplit('/').next().unwrap();
    let r = reg
        .req(
            "PATCH",
            &format!("/v2/team/app/blobs/uploads/{id}"),
            Some(ALICE),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    let store = reg.store().await;
    let sessions = store.uploads().await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].offset, 0);
    assert_eq!(upload_files(&store), 1);
}

#[tokio::test]
async fn anonymous_ping_is_200_when_anon_may_read_something() {
    let reg = Reg::new().await;
    let admin = Principal::test_user(ADMIN.0);
    let ping = || reg.req("GET", "/v2/", None, &[], Body::empty());
    assert_eq!(ping().await.status, StatusCode::UNAUTHORIZED);
    // Readable elsewhere only: still a challenge here.
    reg.env
        .auth
        .grant(&admin, "anon", "http/oci/other", "reader")
        .await
        .unwrap();
    assert_eq!(ping().await.status, StatusCode::UNAUTHORIZED);
    // One readable repository is enough (a grant below the instance) ...
    reg.env
        .auth
        .grant(&admin, "anon", "http/oci/default/library", "reader")
        .await
        .unwrap();
    let r = ping().await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({}));
    // ... and the challenge stays, so containers/image keeps sending credentials to push.
    assert!(r.header("www-authenticate").starts_with("Basic realm="));
    assert!(
        reg.env
            .auth
            .revoke(&admin, "anon", "http/oci/default/library")
            .await
            .unwrap()
    );
    assert_eq!(ping().await.status, StatusCode::UNAUTHORIZED);
    // The instance itself, as `/users grant anon http/oci/default reader` does.
    reg.env
        .auth
        .grant(&admin, "anon", "http/oci/default", "reader")
        .await
        .unwrap();
    assert_eq!(ping().await.status, StatusCode::OK);
    // Anonymous pulls then work; pushes still need credentials.
    reg.push_image("lib/app", "v1", "anon").await;
    let r = reg
        .req("GET", "/v2/lib/app/manifests/v1", None, &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = reg
        .req(
            "POST",
            "/v2/lib/app/blobs/uploads/",
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Logged-in users are unaffected.
    let r = reg.req("GET", "/v2/", Some(BOB), &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// A tmpfs mounted for a test, unmounted when dropped (even when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after a visible SKIP) when mounting is impossible, e.g. without root; under
    /// `CI` that is a failure instead.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "cannot mount a tmpfs under CI: {why}"
                );
                eprintln!("SKIP: cannot mount a tmpfs (needs root): {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file open: detach lazily so the mount never leaks.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Bytes allocated to every file under `dir`.
fn allocated(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_drops_the_partial_upload_and_recovers() {
    let Some(disk) = Tmpfs::mount("40m") else {
        return;
    };
    // The registry's store on the 40 MiB volume; users stay on the ordinary temp dir.
    let mut reg = Reg::new().await;
    let mut ctx = reg.env.context(crate::KIND, "default", "localhost", "/v2");
    let data = disk.path().join("data");
    ctx.store = InstanceStore::new(
        StoreManager::new(&data),
        "oci-http-default".parse().unwrap(),
    );
    let table = everlock_host::toml::Table::new();
    reg.router = crate::build(ctx, &table).unwrap().http_router().unwrap();

    let r = raw(
        &reg,
        "POST",
        "/v2/big/blobs/uploads/",
        Some(ALICE),
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").to_owned();
    let baseline = allocated(&data);
    let r = raw(
        &reg,
        "PATCH",
        &loc,
        Some(ALICE),
        vec![0x5a; 60 * 1024 * 1024],
    )
    .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{:?}", r.body);
    assert_eq!(r.header("content-type"), "application/json");
    let message = r.json()["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("storage full"), "{message}");
    assert!(!message.contains("corrupt"), "{message}");
    // The partial 40 MB is gone at once, not at the next append or the expiry.
    let after = allocated(&data);
    eprintln!(
        "full disk: {baseline} bytes allocated before the 60 MiB PATCH, {after} after its 507"
    );
    assert!(
        after < baseline + 2 * 1024 * 1024,
        "{after} bytes allocated after the failed PATCH (baseline {baseline})"
    );
    // The session is still usable, and cancelling it works.
    let r = raw(&reg, "GET", &loc, Some(ALICE), Body::empty()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = raw(&reg, "DELETE", &loc, Some(ALICE), Body::empty()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    // A single-request push of the same size is refused the same way and leaves nothing.
    let d = OciDigest::sha256_of(&[0x5a; 10]);
    let r = raw(
        &reg,
        "POST",
        &format!("/v2/big/blobs/uploads/?digest={d}"),
        Some(ALICE),
        vec![0x5a; 60 * 1024 * 1024],
    )
    .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{:?}", r.body);
    assert!(allocated(&data) < baseline + 2 * 1024 * 1024);
    // Pushes work again without a restart.
    reg.push_image("big", "v1", "after the full disk").await;
    let r = reg
        .req(
            "GET",
            "/v2/big/manifests/v1",
            Some(ALICE),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    drop(reg);
    drop(disk);
}
