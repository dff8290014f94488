//! The web UI through the router: who sees which repositories, the tag table, escaping, the
//! Basic challenge for anonymous viewers, and `ui = false`.

use super::*;

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn repositories_and_tags_are_shown_to_those_who_may_read_them() {
    let reg = Reg::new().await;
    let (d, _) = reg.push_image("team/app", "v1", "one").await;
    reg.push_image("private", "latest", "two").await;

    let r = reg.req("GET", "/ui/", None, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate").starts_with("Basic"),
        "{:?}",
        r.headers
    );

    // bob reads team/* only.
    let r = reg.call("GET", "/ui/", BOB).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/html"));
    let page = text(&r);
    assert!(
        page.contains("<a href=\"/ui/r/team/app\">team/app</a>"),
        "{page}"
    );
    assert!(!page.contains("private"), "{page}");
    assert!(page.contains("signed in as bob"), "{page}");

    let r = reg
        .req(
            "GET",
            "/ui/r/team/app",
            Some(BOB),
            &[("host", "reg.example")],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let page = text(&r);
    assert!(page.contains("<th scope=\"row\">v1</th>"), "{page}");
    assert!(
        page.contains(&format!("<code title=\"{d}\">{}…</code>", &d[..19])),
        "{page}"
    );
    assert!(
        page.contains("value=\"docker pull reg.example/team/app:v1\""),
        "{page}"
    );
    assert!(page.contains("<html lang=\"en\">") && page.contains("name=\"viewport\""));
    // Another user's repository is simply not found; so is nonsense.
    for path in ["/ui/r/private", "/ui/r/Bad..Name", "/ui/elsewhere"] {
        let r = reg.call("GET", path, BOB).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    let r = reg.call("POST", "/ui/", BOB).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // Nothing under `/v2/` is the UI: `_ui` is no pseudo-repository.
    let r = reg.call("GET", "/v2/_ui/", BOB).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!text(&r).contains("<html"), "{}", text(&r));
    // The registry API is untouched.
    let r = reg.call("GET", "/v2/team/app/tags/list", BOB).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_ui_can_be_turned_off() {
    let reg = Reg::with_settings("ui = false").await;
    let r = reg.call("GET", "/ui/", ADMIN).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_registry_claims_ui_only_when_it_is_on() {
    // The settings declare the claim, so validation sees it before anything is built.
    let prefixes = |settings: &str| {
        let table: everlock_host::toml::Table = settings.parse().unwrap();
        crate::check(&table)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(prefixes(""), ["/ui"]);
    assert!(prefixes("ui = false").is_empty());
}
