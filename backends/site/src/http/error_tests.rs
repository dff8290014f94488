//! How each reason a request fails becomes a status, and that no internal detail reaches the
//! client.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use everlock_host::http::{Method, StatusCode, header};
use everlock_host::storage::StorageError;
use http_body_util::BodyExt as _;

use super::ServeError;
use crate::markdown::layout::{LayoutError, Layouts};
use crate::markdown::pool::RenderError;
use crate::markdown::site::ReadError;

/// The error of rendering a site's own `single.html` with `source` and `fuel`.
fn layout_error(source: &str, fuel: u64) -> LayoutError {
    let user = BTreeMap::from([("single.html".to_owned(), source.to_owned())]);
    let layouts = Layouts::compile(&user, fuel).unwrap();
    layouts
        .render("single.html", &serde_json::json!({}))
        .unwrap_err()
}

async fn text(e: &ServeError) -> String {
    let body = e.response().into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[test]
fn an_unreachable_database_is_503_with_retry_after() {
    let r = ServeError::Storage(StorageError::Unavailable("connection refused".into())).response();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), "1");
}

#[test]
fn a_database_failure_is_500() {
    let r = ServeError::Storage(StorageError::Database("permission denied".into())).response();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.headers().get(header::RETRY_AFTER).is_none());
}

/// Reading a page's source while the database is down is the same outage as reading the file
/// list: 503 and a retry, not a 500 that blames the site (the old pipeline answered 500).
#[tokio::test]
async fn an_unreachable_database_while_rendering_is_503() {
    let e = ServeError::Render(RenderError::Read(ReadError::Storage(
        StorageError::Unavailable("connection refused".into()),
    )));
    let r = e.response();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(text(&e).await, "storage unavailable; retry\n");
}

/// A layout that fails is a 500 that says so, without the template's error text (the old
/// pipeline called it a "storage error").
#[tokio::test]
async fn a_render_failure_is_500_without_its_internals() {
    let e = ServeError::Render(RenderError::Layout(layout_error(
        "{{ secret_detail.x }}",
        1000,
    )));
    assert!(matches!(
        e,
        ServeError::Render(RenderError::Layout(LayoutError::Failed { .. }))
    ));
    // The log line names the template and what went wrong; the response names neither.
    assert!(
        e.chain().contains("single.html: undefined"),
        "{}",
        e.chain()
    );
    assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = text(&e).await;
    assert_eq!(body, "this page could not be rendered\n");
    assert!(!body.contains("single.html"), "{body}");
    assert!(!body.contains("undefined"), "{body}");
    let e = ServeError::Render(RenderError::Read(ReadError::NotUtf8("a.md".into())));
    assert_eq!(text(&e).await, "this page could not be rendered\n");
}

#[tokio::test]
async fn a_layout_over_budget_tells_the_author_to_simplify() {
    let e = ServeError::Render(RenderError::Layout(layout_error(
        "{% for i in range(100000) %}{{ i }}{% endfor %}",
        100,
    )));
    assert!(matches!(
        e,
        ServeError::Render(RenderError::Layout(LayoutError::OverBudget { .. }))
    ));
    assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text(&e).await.contains("rendering budget"));
}

#[tokio::test]
async fn client_mistakes_are_4xx() {
    let e = ServeError::NotFound;
    assert_eq!(e.status(), StatusCode::NOT_FOUND);
    assert!(!e.is_server_fault());
    assert_eq!(text(&e).await, "not found\n");
    let e = ServeError::MethodNotAllowed(Method::DELETE);
    let r = e.response();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers().get(header::ALLOW).unwrap(), "GET, HEAD");
    assert!(!e.is_server_fault());
}

#[test]
fn content_that_cannot_be_opened_is_a_storage_error() {
    let e = ServeError::Content(std::io::Error::other("gone"));
    assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e.is_server_fault());
}

/// A render job that panics is a render failure whose log line keeps the panic's message (the
/// old `Worker(String)` kept only a copy of the text, and no cause).
#[tokio::test]
async fn a_panicking_render_is_500_and_its_cause_is_logged() {
    let pool = crate::markdown::pool::RenderPool::default();
    let err = pool
        .run(|| -> String { std::panic::panic_any("layout engine bug") })
        .await
        .unwrap_err();
    assert!(matches!(err, RenderError::Worker(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    let e = ServeError::Render(err);
    assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e.chain().contains("layout engine bug"), "{}", e.chain());
    assert_eq!(text(&e).await, "this page could not be rendered\n");
}
