//! Markdown layouts render off the async workers under a per-page budget: a runaway layout
//! gets a clear 500 while other sites (and the site's other pages) keep answering.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure"
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestSite;
use everlock_host::http::StatusCode;

/// Three nested loops of 100,000 iterations: 10^15 steps, hours without a budget.
const RUNAWAY: &[u8] = b"{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}";

async fn site(name: &str, settings: &str) -> TestSite {
    let s = TestSite::new(name, settings, false).await;
    s.write(&[
        ("index.md", b"# Home\n\nFine.\n"),
        ("slow.md", b"+++\nlayout = \"runaway\"\n+++\n# Slow\n"),
        ("layouts/runaway.html", RUNAWAY),
    ])
    .await;
    s
}

#[tokio::test]
async fn a_runaway_layout_answers_500_and_the_other_pages_still_render() {
    let s = site("md", "mode = \"markdown\"").await;
    let started = Instant::now();
    let (r, body) = s.get("/slow", &[]).await;
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("rendering budget"), "{text}");
    assert!(
        took < Duration::from_secs(20),
        "stopped only after {took:?}"
    );
    let (r, body) = s.get("/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("Fine."));
    // The failure is not cached as a page: it fails again, still with the clear message.
    assert_eq!(
        s.get("/slow", &[]).await.0.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

/// One async worker only: if a render ran on it, nothing else could run until it ended.
#[tokio::test(flavor = "current_thread")]
async fn other_sites_answer_fast_while_a_runaway_layout_renders() {
    // A budget large enough that the runaway page renders for a few seconds.
    let bad = Arc::new(site("bad", "mode = \"markdown\"\nrender-fuel = 20000000").await);
    let good = site("good", "mode = \"markdown\"").await;
    let slow = {
        let bad = bad.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (r, _) = bad.get("/slow", &[]).await;
            (r.status(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut answered = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let (r, body) = good.get("/", &[]).await;
        let took = started.elapsed();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(String::from_utf8(body).unwrap().contains("Fine."));
        assert!(took < Duration::from_secs(1), "another site took {took:?}");
        answered += took;
    }
    assert!(
        !slow.is_finished(),
        "the runaway render should still be running"
    );
    let (status, took) = slow.await.unwrap();
    eprintln!("runaway page: {status} after {took:?}; other site answered 5 times in {answered:?}");
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}
