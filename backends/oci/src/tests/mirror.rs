//! The pull-through mirror against an upstream that is another registry of this crate served
//! on a loopback port (Basic credentials), with every upstream request recorded: cold pulls
//! fetch, warm pulls do not, a stopped upstream still leaves cached content, concurrent cold
//! pulls fetch a blob once, pushes are refused.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use everlock_host::axum::extract::Request as AxumRequest;
use everlock_host::axum::middleware::{Next, from_fn};
use everlock_host::axum::response::IntoResponse as _;

use super::*;

/// An upstream registry on a loopback port that logs `METHOD path` of every request and
/// delays blob GETs, so concurrent cold pulls really overlap.
struct Upstream {
    reg: Reg,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    /// When set, every request is answered 503 (connections the server already accepted
    /// outlive the listener, so aborting it alone would not take the upstream down).
    down: Arc<AtomicBool>,
    /// When set, `Range` headers are dropped, as by an upstream that always sends it all.
    no_ranges: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        Self::start_with("").await
    }

    /// An upstream serving with `settings`; `reg` (what tests push through) stays a Basic
    /// registry on the same store, so pushes work whatever the served authentication is.
    async fn start_with(settings: &str) -> Upstream {
        let reg = Reg::new().await;
        let served = Reg::router(&reg.env, settings);
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        let down = Arc::new(AtomicBool::new(false));
        let is_down = down.clone();
        let no_ranges = Arc::new(AtomicBool::new(false));
        let drop_ranges = no_ranges.clone();
        let router = served.layer(from_fn(move |mut req: AxumRequest, next: Next| {
            let seen = seen.clone();
            let is_down = is_down.clone();
            let drop_ranges = drop_ranges.clone();
            async move {
                if is_down.load(Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                // A ranged request is logged with its range, so `count` of the plain line
                // counts whole fetches only.
                let mut line = format!("{} {}", req.method(), req.uri().path());
                if let Some(range) = req.headers().get("range") {
                    line = format!("{line} {}", range.to_str().unwrap());
                    if drop_ranges.load(Ordering::SeqCst) {
                        req.headers_mut().remove("range");
                    }
                }
                let slow = line.starts_with("GET ") && line.contains("/blobs/sha256:");
                seen.lock().unwrap().push(line);
                if slow {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                next.run(req).await
            }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            everlock_host::axum::serve(listener, router).await.unwrap();
        });
        Upstream {
            reg,
            port,
            log,
            down,
            no_ranges,
            server,
        }
    }

    /// How many requests were `METHOD path` exactly.
    fn count(&self, line: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == line)
            .count()
    }

    fn total(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    async fn mirror(&self, extra: &str) -> Reg {
        Reg::with_settings(&format!(
            "upstream = \"http://127.0.0.1:{}\"\nupstream-username = \"alice\"\nupstream-password = \"alice-pw\"\n{extra}",
            self.port
        ))
        .await
    }
}

/// The config and layer digests of a manifest.
fn blobs_of(manifest: &[u8]) -> Vec<String> {
    let m: Value = serde_json::from_slice(manifest).unwrap();
    let mut out = vec![m["config"]["digest"].as_str().unwrap().to_owned()];
    for l in m["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().to_owned());
    }
    out
}

#[tokio::test]
async fn a_cold_pull_fetches_once_and_later_pulls_are_local() {
    let up = Upstream::start().await;
    let (digest, manifest) = up.reg.push_image("team/app", "v1", "one").await;
    let mirror = up.mirror("").await;

    let r = mirror.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(&r.body[..], &manifest[..], "the upstream's exact bytes");
    assert_eq!(r.header("docker-content-digest"), digest);
    for d in blobs_of(&manifest) {
        let uri = format!("/v2/team/app/blobs/{d}");
        let r = mirror.call("HEAD", &uri, BOB).await;
        assert_eq!(r.status, StatusCode::OK, "HEAD of a blob not yet fetched");
        let r = mirror.call("GET", &uri, BOB).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(OciDigest::sha256_of(&r.body).to_string(), d);
        assert_eq!(r.header("docker-content-digest"), d);
        // The blob was committed by the fetch's background task; the second pull is local.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let again = mirror.call("GET", &uri, BOB).await;
        assert_eq!(again.body, r.body);
        assert_eq!(up.count(&format!("GET {uri}")), 1, "{d} fetched once");
    }
    let before = up.total();
    let r = mirror
        .call("GET", &format!("/v2/team/app/manifests/{digest}"), BOB)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = mirror.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        up.total(),
        before,
        "within the TTL nothing is asked upstream"
    );
    // The mirror's store records where the content came from.
    let log = mirror.store().await.log(20).await.unwrap();
    assert!(log.iter().any(|c| c.principal == "bob"
        && c.message.contains("mirror manifest team/app:v1")
        && c.message.contains(&format!("127.0.0.1:{}", up.port))));
    up.server.abort();
}

#[tokio::test]
async fn a_moved_tag_is_seen_after_the_ttl_and_a_stopped_upstream_leaves_the_cache() {
    let up = Upstream::start().await;
    let (d1, _) = up.reg.push_image("team/app", "v1", "one").await;
    let mirror = up.mirror("upstream-tag-ttl-secs = 0").await;
    let r = mirror.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.header("docker-content-digest"), d1);
    // Unchanged upstream: a HEAD, no second GET of the manifest.
    let r = mirror.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.header("docker-content-digest"), d1);
    assert_eq!(up.count("GET /v2/team/app/manifests/v1"), 1);
    assert_eq!(up.count("HEAD /v2/team/app/manifests/v1"), 1);
    let (d2, _) = up.reg.push_image("team/app", "v1", "two").await;
    let r = mirror.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.header("docker-content-digest"), d2, "the moved tag");

    up.server.abort();
    up.down.store(true, Ordering::SeqCst);
    let r = mirror.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "cached content with upstream down"
    );
    assert_eq!(r.header("docker-content-digest"), d2);
    let r = mirror
        .call("GET", "/v2/team/app/manifests/never", BOB)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "MANIFEST_UNKNOWN");
    let missing = format!("/v2/team/app/blobs/sha256:{}", "5".repeat(64));
    let r = mirror.call("GET", &missing, BOB).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn concurrent_cold_pulls_of_a_blob_fetch_it_once() {
    let up = Upstream::start().await;
    let (_, manifest) = up.reg.push_image("team/app", "v1", "big").await;
    let layer = blobs_of(&manifest).pop().unwrap();
    let mirror = Arc::new(up.mirror("").await);
    let uri = format!("/v2/team/app/blobs/{layer}");
    let pulls: Vec<_> = (0..8)
        .map(|_| {
            let mirror = mirror.clone();
            let uri = uri.clone();
            tokio::spawn(async move { mirror.call("GET", &uri, BOB).await })
        })
        .collect();
    for p in pulls {
        let r = p.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(OciDigest::sha256_of(&r.body).to_string(), layer);
    }
    assert_eq!(
        up.count(&format!("GET {uri}")),
        1,
        "one upstream GET for 8 pulls"
    );
    up.server.abort();
}

#[tokio::test]
async fn a_mirror_refuses_pushes_unless_allowed_and_reads_stay_authorized() {
    let up = Upstream::start().await;
    up.reg.push_image("private/app", "v1", "p").await;
    let mirror = up.mirror("").await;
    let r = mirror
        .call("POST", "/v2/team/app/blobs/uploads/", ALICE)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "UNSUPPORTED");
    let r = mirror.put_manifest("team/app", "v1", b"{}".to_vec()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // bob may not read private/*: nothing is fetched for him.
    let before = up.total();
    let r = mirror
        .call("GET", "/v2/private/app/manifests/v1", BOB)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(up.total(), before);

    let open = up.mirror("allow-push = true").await;
    open.push_image("team/local", "v1", "local").await;
    let r = open.call("GET", "/v2/team/local/manifests/v1", BOB).await;
    assert_eq!(r.status, StatusCode::OK);
    up.server.abort();
}

#[tokio::test]
async fn a_cached_blob_is_linked_to_another_repository_only_if_upstream_has_it_there() {
    let up = Upstream::start().await;
    let (_, manifest) = up.reg.push_image("team/app", "v1", "one").await;
    let layer = blobs_of(&manifest).pop().unwrap();
    let mirror = up.mirror("").await;
    let r = mirror
        .call("GET", &format!("/v2/team/app/blobs/{layer}"), BOB)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The mirror holds the bytes, but upstream's team/other does not have them.
    let other = format!("/v2/team/other/blobs/{layer}");
    let r = mirror.call("GET", &other, BOB).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "never revealed through team/other"
    );
    // Once upstream has it there, it is linked from the cache: a HEAD, no second download.
    up.reg
        .call(
            "POST",
            &format!("/v2/team/other/blobs/uploads/?mount={layer}&from=team/app"),
            ALICE,
        )
        .await;
    let r = mirror.call("GET", &other, BOB).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(OciDigest::sha256_of(&r.body).to_string(), layer);
    assert_eq!(up.count(&format!("GET {other}")), 0);
    up.server.abort();
}

#[tokio::test]
async fn a_mirror_answers_the_upstream_bearer_challenge_with_a_token() {
    let up = Upstream::start_with("auth = \"token\"").await;
    let (digest, manifest) = up.reg.push_image("team/app", "v1", "one").await;
    let mirror = up.mirror("").await;
    let r = mirror.call("GET", "/v2/team/app/manifests/v1", BOB).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("docker-content-digest"), digest);
    for d in blobs_of(&manifest) {
        let r = mirror
            .call("GET", &format!("/v2/team/app/blobs/{d}"), BOB)
            .await;
        assert_eq!(OciDigest::sha256_of(&r.body).to_string(), d);
    }
    // One token for the repository, reused for the blobs while it is valid.
    assert_eq!(up.count("GET /v2/token"), 1, "{:?}", up.log.lock().unwrap());
    up.server.abort();
}

#[tokio::test]
async fn a_client_that_goes_away_mid_pull_still_leaves_the_blob_cached() {
    let up = Upstream::start().await;
    let big = vec![7u8; 4 * 1024 * 1024];
    let d = up.reg.push_blob("team/app", &big).await;
    let mirror = up.mirror("").await;
    let uri = format!("/v2/team/app/blobs/{d}");
    let token = base64::engine::general_purpose::STANDARD.encode("bob:bob-pw");
    let request = Request::builder()
        .uri(&uri)
        .header("authorization", format!("Basic {token}"))
        .body(Body::empty())
        .unwrap();
    let response = mirror.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    // The fetch goes on without the client and commits the blob.
    let link = format!("repos/team/app/_blobs/sha256/{}", &d["sha256:".len()..]);
    let store = mirror.store().await;
    for _ in 0..100 {
        if store.stat(&link).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.stat(&link).await.unwrap().is_some(), "cached");
    let r = mirror.call("GET", &uri, BOB).await;
    assert_eq!(r.body.len(), big.len());
    assert_eq!(up.count(&format!("GET {uri}")), 1);
    up.server.abort();
}

/// The ranged GETs of `uri` the upstream saw: the offsets asked for.
fn ranged_gets(up: &Upstream, uri: &str) -> Vec<u64> {
    let prefix = format!("GET {uri} bytes=");
    up.log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.trim_end_matches('-').parse().unwrap())
        .collect()
}

/// A store that takes no byte while the client pulls (its stage is held by a test hook)
/// must not hold the client back: the client gets the whole blob, nothing is committed yet,
/// and once the stage goes on the store reads what it lacks from upstream by a ranged GET
/// (or, from an upstream that ignores ranges, by a whole GET whose head it skips) and the
/// blob is committed intact.
async fn a_stalled_store_never_holds_the_client_back(upstream_ignores_ranges: bool) {
    let up = Upstream::start().await;
    up.no_ranges
        .store(upstream_ignores_ranges, Ordering::SeqCst);
    // Three times the store's lag window, so the store must leave the tee; the bytes never
    // repeat at a short period, so a misplaced offset cannot go unnoticed. The two variants
    // hold different blobs, since the hook holds a digest.
    let seed = u32::from(upstream_ignores_ranges);
    let big: Vec<u8> = (0..3 * crate::mirror::LAG)
        .map(|i| ((i ^ seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let d = up.reg.push_blob("team/app", &big).await;
    let digest = OciDigest::parse(&d).unwrap();
    crate::mirror::gate::hold(&digest);
    let mirror = up.mirror("").await;
    let uri = format!("/v2/team/app/blobs/{d}");

    let pulled = tokio::time::timeout(Duration::from_secs(20), mirror.call("GET", &uri, BOB))
        .await
        .expect("the client got the blob while the store took nothing");
    assert_eq!(pulled.status, StatusCode::OK);
    assert!(pulled.body == big, "the client's bytes are the blob");
    let link = format!("repos/team/app/_blobs/sha256/{}", &d["sha256:".len()..]);
    let store = mirror.store().await;
    assert!(
        store.stat(&link).await.unwrap().is_none(),
        "nothing committed yet"
    );

    crate::mirror::gate::release(&digest);
    for _ in 0..200 {
        if store.stat(&link).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(store.stat(&link).await.unwrap().is_some(), "committed");
    let offsets = ranged_gets(&up, &uri);
    assert_eq!(offsets.len(), 1, "{:?}", up.log.lock().unwrap());
    assert!(offsets[0] <= u64::from(crate::mirror::LAG), "{offsets:?}");
    assert_eq!(up.count(&format!("GET {uri}")), 1, "one whole fetch");
    up.down.store(true, Ordering::SeqCst);
    let r = mirror.call("GET", &uri, BOB).await;
    assert!(r.body == big, "served intact from the store");
    up.server.abort();
}

#[tokio::test]
async fn a_stalled_store_reads_the_rest_by_a_ranged_get() {
    a_stalled_store_never_holds_the_client_back(false).await;
}

#[tokio::test]
async fn a_stalled_store_skips_the_head_when_upstream_ignores_ranges() {
    a_stalled_store_never_holds_the_client_back(true).await;
}
