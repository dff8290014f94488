//! Docker token authentication end to end (issue #15 item 5), over HTTPS: skopeo pushes and
//! pulls through the token flow, `curl` follows the Bearer challenge by hand (realm, service,
//! scope → token → request), anonymous tokens pull what `anon` may read, and a pull-only
//! token is refused on push.

#![cfg(feature = "backend-oci-http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;
mod oci_common;
#[path = "support/token_registry.rs"]
mod token_registry;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::have_binary;
use oci_common::{ALICE, Layout, PULLER, cert_dir, skopeo};
use token_registry::start;

fn creds(user: (&str, &str)) -> String {
    format!("{}:{}", user.0, user.1)
}

/// `curl -s -i` with the server's CA; returns status, headers (lower-case names) and body.
fn curl(ca: &Path, args: &[&str]) -> (u16, HashMap<String, String>, String) {
    let out = Command::new("curl")
        .args(["-s", "-i", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// The `key="value"` parameters of a Bearer challenge.
fn challenge_params(value: &str) -> HashMap<String, String> {
    let rest = value.strip_prefix("Bearer ").unwrap();
    let mut out = HashMap::new();
    // Values are quoted and contain no quotes; commas inside quotes (pull,push) stay.
    for part in rest.split("\",") {
        let (k, v) = part.split_once('=').unwrap();
        out.insert(k.trim().to_owned(), v.trim_matches('"').to_owned());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_and_curl_follow_the_token_flow() {
    if !have_binary("skopeo") || !have_binary("curl") {
        return;
    }
    // anon may read public/*, nothing else.
    let reg = start().await;
    let (work, server, ca, host) = (
        reg.work.clone(),
        &reg.server,
        reg.ca.clone(),
        reg.host.clone(),
    );
    let certs = cert_dir(&server.ca_pem(), &work);
    let certs = certs.to_str().unwrap();
    let base = format!("https://{host}");

    // skopeo push and pull, each through a token.
    let mut layout = Layout::new(&work.join("layout"));
    let image = layout.image("amd64", b"token flow", Some("v1"));
    let src = format!("oci:{}:v1", layout.dir.display());
    for repo in ["team/app", "public/app"] {
        let out = skopeo(
            &work,
            &[
                "copy",
                "--dest-cert-dir",
                certs,
                "--dest-creds",
                &creds(ALICE),
                &src,
                &format!("docker://{host}/{repo}:v1"),
            ],
        );
        assert!(out.status.success(), "{}", server.log());
    }
    let pull = |creds: Option<String>, repo: &str, into: &str| {
        let dest = format!("oci:{}:v1", work.join(into).display());
        let src = format!("docker://{host}/{repo}:v1");
        let mut args = vec!["copy", "--src-cert-dir", certs];
        let c;
        if let Some(cr) = creds {
            c = cr;
            args.extend(["--src-creds", c.as_str()]);
        }
        args.extend([src.as_str(), dest.as_str()]);
        skopeo(&work, &args).status.success()
    };
    assert!(pull(Some(creds(PULLER)), "team/app", "pulled"));
    assert!(
        pull(None, "public/app", "anon"),
        "anonymous token for anon's repository"
    );
    assert!(
        !pull(None, "team/app", "denied"),
        "nothing for anon elsewhere"
    );
    // A pull-only user's token is refused on push.
    let out = skopeo(
        &work,
        &[
            "copy",
            "--dest-cert-dir",
            certs,
            "--dest-creds",
            &creds(PULLER),
            &src,
            &format!("docker://{host}/team/app:v2"),
        ],
    );
    assert!(!out.status.success(), "a pull token must not push");

    // curl, by hand: the challenge names realm, service and scope.
    let url = format!("{base}/v2/team/app/manifests/v1");
    let (status, headers, _) = curl(&ca, &[&url]);
    assert_eq!(status, 401);
    let c = challenge_params(&headers["www-authenticate"]);
    assert_eq!(c["realm"], format!("{base}/v2/token"));
    assert_eq!(c["service"], host);
    assert_eq!(c["scope"], "repository:team/app:pull");
    let token_url = format!(
        "{}?service={}&scope={}",
        c["realm"], c["service"], c["scope"]
    );
    let (status, _, body) = curl(&ca, &["-u", &creds(PULLER), &token_url]);
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Authorization: Bearer {}", token["token"].as_str().unwrap());
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let (status, headers, _) = curl(&ca, &["-H", &bearer, "-H", accept, &url]);
    assert_eq!(status, 200);
    assert_eq!(headers["docker-content-digest"], image.manifest_digest);
    // The same token does not push: 403 `insufficient_scope` (RFC 6750) naming the scope.
    let upload = format!("{base}/v2/team/app/blobs/uploads/");
    let (status, headers, _) = curl(&ca, &["-X", "POST", "-H", &bearer, &upload]);
    assert_eq!(status, 403);
    assert!(
        headers["www-authenticate"]
            .contains("scope=\"repository:team/app:pull,push\",error=\"insufficient_scope\"")
    );

    // Anonymous token for an anon-readable repository, with curl.
    let anon_url = format!("{base}/v2/token?service={host}&scope=repository:public/app:pull");
    let (status, _, body) = curl(&ca, &[&anon_url]);
    assert_eq!(status, 200);
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Authorization: Bearer {}", token["token"].as_str().unwrap());
    let (status, _, _) = curl(
        &ca,
        &[
            "-H",
            &bearer,
            "-H",
            accept,
            &format!("{base}/v2/public/app/manifests/v1"),
        ],
    );
    assert_eq!(status, 200);
}
