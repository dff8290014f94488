//! Layouts: Jinja-syntax templates (minijinja) with built-in defaults that a site's own
//! `layouts/*.html` override by name.
//!
//! Every template may extend `base.html`; pages use `single.html`, sections `list.html`, and a
//! page may pick another layout with `layout = "name"` in its front matter. The variables are
//! `site`, `page`, `section`, `paginator`, `taxonomy` and `highlight_css` (documented in the
//! README).
//!
//! Layouts are written by site authors, so one author's layout must never stall the server
//! for everyone else. minijinja charges *fuel* for every instruction and for the data a
//! template creates (about one fuel per 64 bytes), and stops a render whose fuel runs out; a
//! budget therefore bounds both the time and the memory of a render. (Tera, the engine used
//! before, has no such budget: a runaway layout could only be abandoned on its thread, never
//! stopped.)

use std::collections::BTreeMap;

use minijinja::value::{Serde, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

/// The built-in layouts, so a site of bare `.md` files renders well.
pub const BUILTIN: [(&str, &str); 3] = [
    ("base.html", include_str!("../../layouts/base.html")),
    ("single.html", include_str!("../../layouts/single.html")),
    ("list.html", include_str!("../../layouts/list.html")),
];

/// Why a layout did not render.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LayoutError {
    /// The render used up its fuel: the layout does too much work (or loops without end).
    #[error("layout {template} ran past its rendering budget of {fuel} fuel")]
    OverBudget {
        /// The template that was rendered.
        template: String,
        /// The budget it had.
        fuel: u64,
    },
    /// Any other render error (an undefined variable, a bad filter, a missing template).
    #[error("layout {template}: {message}")]
    Failed {
        /// The template that was rendered.
        template: String,
        /// minijinja's message.
        message: String,
    },
}

/// A compiled set of layouts with a per-render fuel budget.
#[derive(Debug)]
pub struct Layouts {
    env: Environment<'static>,
    fuel: u64,
}

impl Layouts {
    /// Compiles the built-in layouts overridden by `user` (template name → source). A broken
    /// user template is an error naming it.
    pub fn compile(
        user: &BTreeMap<String, String>,
        fuel: u64,
    ) -> Result<Layouts, minijinja::Error> {
        let mut layouts = Layouts::empty(fuel);
        for (name, source) in BUILTIN {
            if !user.contains_key(name) {
                layouts
                    .env
                    .add_template_owned(name.to_owned(), source.to_owned())?;
            }
        }
        for (name, source) in user {
            layouts
                .env
                .add_template_owned(name.clone(), source.clone())?;
        }
        Ok(layouts)
    }

    /// Only the built-in layouts (used when a site's own layouts are broken).
    pub fn builtin(fuel: u64) -> Layouts {
        Layouts::compile(&BTreeMap::new(), fuel).unwrap_or_else(|e| {
            tracing::error!("built-in site layouts do not compile: {e}");
            Layouts::empty(fuel)
        })
    }

    fn empty(fuel: u64) -> Layouts {
        let mut env = Environment::new();
        // Like Tera before: printing or iterating an undefined value is an error (so the
        // built-in fallback renders instead), but `{% if x %}` on an undefined `x` is false.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_fuel(Some(fuel));
        // One-line errors: they go into deploy responses and log lines.
        env.set_debug(false);
        Layouts { env, fuel }
    }

    /// Whether a template named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Renders `template` with `context` (a JSON object of the template variables).
    pub fn render(
        &self,
        template: &str,
        context: &serde_json::Value,
    ) -> Result<String, LayoutError> {
        let failed = |e: minijinja::Error| {
            if e.kind() == ErrorKind::OutOfFuel {
                LayoutError::OverBudget {
                    template: template.to_owned(),
                    fuel: self.fuel,
                }
            } else {
                LayoutError::Failed {
                    template: template.to_owned(),
                    message: describe(&e),
                }
            }
        };
        self.env
            .get_template(template)
            .map_err(failed)?
            .render(Value::from(Serde(context)))
            .map_err(failed)
    }
}

/// A minijinja error with its chain of causes on one line.
fn describe(err: &minijinja::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        reason = "test code: a panic is a test failure"
    )]

    use super::*;

    const FUEL: u64 = 1_000_000;

    fn context() -> serde_json::Value {
        serde_json::json!({
            "page": {"title": "T", "content": "<p>x</p>", "taxonomies": {"tags": ["a", "b"]}},
            "site": {"title": "S", "nav": [{"name": "Docs", "url": "/docs/", "active": true}],
                     "root": "/", "taxonomies": ["tags"]},
            "highlight_css": "",
        })
    }

    #[test]
    fn builtins_compile_and_user_layouts_override() {
        let t = Layouts::compile(&BTreeMap::new(), FUEL).unwrap();
        assert!(t.has("single.html") && !t.has("custom.html"));
        let html = t.render("single.html", &context()).unwrap();
        assert!(html.contains("<title>T · S</title>"), "{html}");
        assert!(html.contains("aria-current=\"page\">Docs</a>"), "{html}");
        assert!(
            html.contains("tags: <a href=\"&#x2f;tags/a/\">a</a>, <a"),
            "{html}"
        );
        let mut user = BTreeMap::new();
        user.insert(
            "single.html".to_owned(),
            "{% extends \"base.html\" %}{% block content %}CUSTOM {{ page.content | safe }}{% endblock content %}".to_owned(),
        );
        let t = Layouts::compile(&user, FUEL).unwrap();
        let html = t.render("single.html", &context()).unwrap();
        assert!(html.contains("CUSTOM <p>x</p>"), "{html}");
        user.insert("broken.html".to_owned(), "{% if %}".to_owned());
        assert!(
            Layouts::compile(&user, FUEL)
                .unwrap_err()
                .to_string()
                .contains("broken.html")
        );
    }

    #[test]
    fn undefined_values_fail_to_print_but_are_false_in_conditions() {
        let mut user = BTreeMap::new();
        user.insert(
            "a.html".to_owned(),
            "{% if page.nope %}x{% else %}ok{% endif %}".to_owned(),
        );
        user.insert("b.html".to_owned(), "{{ page.nope.deeper }}".to_owned());
        let t = Layouts::compile(&user, FUEL).unwrap();
        assert_eq!(t.render("a.html", &context()).unwrap(), "ok");
        assert!(matches!(
            t.render("b.html", &context()),
            Err(LayoutError::Failed { .. })
        ));
    }

    #[test]
    fn a_quarter_of_the_default_budget_renders_a_listing_of_10000_pages() {
        let budget = crate::settings::DEFAULT_RENDER_FUEL / 4;
        let t = Layouts::compile(&BTreeMap::new(), budget).unwrap();
        let pages: Vec<serde_json::Value> = (0..10_000)
            .map(|i| {
                serde_json::json!({"title": format!("Page {i}"), "url": format!("/p/{i}"),
                                   "date": "2024-01-01", "description": "About this page"})
            })
            .collect();
        let mut ctx = context();
        ctx["section"] = serde_json::json!({ "pages": pages });
        ctx["paginator"] = serde_json::Value::Null;
        let html = t.render("list.html", &ctx).unwrap();
        assert!(html.contains("Page 9999"));
    }

    #[test]
    fn runaway_layouts_are_stopped_by_their_budget() {
        let mut user = BTreeMap::new();
        // 10^15 iterations without output, and a string that doubles 60 times: each would
        // run for hours or exhaust memory without a budget.
        user.insert(
            "loops.html".to_owned(),
            "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}".to_owned(),
        );
        user.insert(
            "memory.html".to_owned(),
            "{% set ns = namespace(s=\"ab\") %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}".to_owned(),
        );
        let t = Layouts::compile(&user, FUEL).unwrap();
        for name in ["loops.html", "memory.html"] {
            let started = std::time::Instant::now();
            let err = t.render(name, &context()).unwrap_err();
            assert!(
                matches!(err, LayoutError::OverBudget { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("budget"), "{err}");
            assert!(
                started.elapsed().as_secs() < 5,
                "{name} took {:?}",
                started.elapsed()
            );
        }
    }
}
