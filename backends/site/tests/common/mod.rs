//! Shared helpers of the site backend's in-process tests: a site built on a `TestEnv`, files
//! committed straight into its store, and one-shot requests through its router.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;

use everlock_backend_site_http::{KIND, build};
use everlock_host::InstanceStore;
use everlock_host::auth::{AdminPassword, Principal};
use everlock_host::axum::Router;
use everlock_host::axum::body::Body;
use everlock_host::http::{Request, Response};
use everlock_host::storage::{CommitInfo, CommitMeta, Op};
use everlock_host::test_util::TestEnv;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A site under test.
pub(crate) struct TestSite {
    pub(crate) env: TestEnv,
    pub(crate) router: Router,
    pub(crate) store: InstanceStore,
    pub(crate) commands: Option<Arc<dyn everlock_host::InstanceCommands>>,
    pub(crate) admin: Principal,
}

impl TestSite {
    /// A public site named `name` with `settings` (TOML), with users admin, alice (no grants)
    /// and anon reader on the site unless `private`.
    pub(crate) async fn new(name: &str, settings: &str, private: bool) -> TestSite {
        Self::with_prefix(name, settings, private, "/").await
    }

    pub(crate) async fn with_prefix(
        name: &str,
        settings: &str,
        private: bool,
        prefix: &str,
    ) -> TestSite {
        let env = TestEnv::new().await;
        env.auth
            .bootstrap("admin", AdminPassword::Given("admin-pw".into()))
            .await
            .unwrap();
        let admin = Principal::test_user("admin");
        env.auth
            .add_user(&admin, "alice", "alice-pw")
            .await
            .unwrap();
        env.auth.add_user(&admin, "rita", "rita-pw").await.unwrap();
        env.auth.add_user(&admin, "will", "will-pw").await.unwrap();
        let path = format!("http/site/{name}");
        env.auth
            .grant(&admin, "rita", &path, "reader")
            .await
            .unwrap();
        env.auth
            .grant(&admin, "will", &path, "writer")
            .await
            .unwrap();
        if !private {
            env.auth
                .grant(&admin, "anon", &path, "reader")
                .await
                .unwrap();
        }
        let ctx = env.context(KIND, name, "site.example", prefix);
        let store = ctx.store.clone();
        let table: everlock_host::toml::Table = settings.parse().unwrap();
        let backend = build(ctx, &table).unwrap_or_else(|e| panic!("{e}"));
        let router = backend.http_router().unwrap();
        let commands = backend.commands();
        TestSite {
            env,
            router,
            store,
            commands,
            admin,
        }
    }

    /// Commits `files` as the whole content change (puts only).
    pub(crate) async fn write(&self, files: &[(&str, &[u8])]) -> CommitInfo {
        let ops = files
            .iter()
            .map(|(p, b)| Op::PutBytes {
                path: (*p).to_owned(),
                bytes: b.to_vec(),
            })
            .collect();
        self.store
            .get()
            .await
            .unwrap()
            .commit(ops, Vec::new(), CommitMeta::new("test", "write"))
            .await
            .unwrap()
    }

    /// Sends a request.
    pub(crate) async fn send(&self, req: Request<Body>) -> Response<Body> {
        self.router.clone().oneshot(req).await.unwrap()
    }

    /// GET `path` with extra headers; returns the response with its body collected.
    pub(crate) async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Response<()>, Vec<u8>) {
        self.request("GET", path, headers).await
    }

    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Response<()>, Vec<u8>) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "site.example");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        collect(self.send(b.body(Body::empty()).unwrap()).await).await
    }
}

/// Splits a response into its head and its collected body.
pub(crate) async fn collect(resp: Response<Body>) -> (Response<()>, Vec<u8>) {
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (Response::from_parts(parts, ()), bytes)
}

/// `Authorization: Basic ...` for `login:password`.
pub(crate) fn basic(login: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
    )
}

/// A header value as text.
pub(crate) fn header<'a>(resp: &'a Response<()>, name: &str) -> &'a str {
    resp.headers().get(name).map_or("", |v| v.to_str().unwrap())
}

/// A tar archive of regular files.
pub(crate) fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A gzip-compressed tar archive of regular files.
pub(crate) fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar(files)).unwrap();
    gz.finish().unwrap()
}

/// A tar archive with one raw entry whose name and type are written as given, bypassing the
/// tar crate's own path checks (to build hostile archives).
pub(crate) fn raw_tar(
    name: &[u8],
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
    }
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, data).unwrap();
    b.into_inner().unwrap()
}

/// The site's console commands.
pub(crate) fn commands(site: &TestSite) -> Arc<dyn everlock_host::InstanceCommands> {
    site.commands.clone().unwrap()
}
