//! Tera layouts: built-in defaults that a site's own `layouts/*.html` override by name.
//!
//! Every template may extend `base.html`; pages use `single.html`, sections `list.html`, and a
//! page may pick another layout with `layout = "name"` in its front matter.

use std::collections::BTreeMap;

use tera::Tera;

/// The built-in layouts, so a site of bare `.md` files renders well.
pub const BUILTIN: [(&str, &str); 3] = [
    ("base.html", include_str!("../../layouts/base.html")),
    ("single.html", include_str!("../../layouts/single.html")),
    ("list.html", include_str!("../../layouts/list.html")),
];

/// Compiles the built-in layouts overridden by `user` (template name → source). A broken
/// user template is an error naming it.
pub fn compile(user: &BTreeMap<String, String>) -> Result<Tera, String> {
    let mut sources: BTreeMap<String, String> = BUILTIN
        .iter()
        .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
        .collect();
    for (name, source) in user {
        sources.insert(name.clone(), source.clone());
    }
    let mut tera = Tera::default();
    tera.add_raw_templates(sources).map_err(|e| describe(&e))?;
    Ok(tera)
}

/// Only the built-in layouts (always compiles; used when a site's own layouts are broken).
pub fn builtin() -> Tera {
    let mut tera = Tera::default();
    if let Err(e) = tera.add_raw_templates(BUILTIN) {
        tracing::error!("built-in site layouts do not compile: {}", describe(&e));
    }
    tera
}

/// A Tera error with its chain of causes on one line.
pub fn describe(err: &tera::Error) -> String {
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
    use super::*;

    #[test]
    fn builtins_compile_and_user_layouts_override() {
        let t = compile(&BTreeMap::new()).unwrap();
        assert!(t.get_template_names().any(|n| n == "single.html"));
        let mut user = BTreeMap::new();
        user.insert(
            "single.html".to_owned(),
            "{% extends \"base.html\" %}{% block content %}CUSTOM {{ page.content | safe }}{% endblock content %}".to_owned(),
        );
        let t = compile(&user).unwrap();
        let mut ctx = tera::Context::new();
        ctx.insert(
            "page",
            &serde_json::json!({"title": "T", "content": "<p>x</p>"}),
        );
        ctx.insert(
            "site",
            &serde_json::json!({"title": "S", "nav": [], "root": "/"}),
        );
        ctx.insert("highlight_css", "");
        let html = t.render("single.html", &ctx).unwrap();
        assert!(html.contains("CUSTOM <p>x</p>"), "{html}");
        user.insert("broken.html".to_owned(), "{% if %}".to_owned());
        assert!(compile(&user).unwrap_err().contains("broken.html"));
    }
}
