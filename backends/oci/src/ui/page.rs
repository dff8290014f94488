//! The UI's HTML: one small stylesheet, semantic markup (landmarks, headings, a table with
//! header cells and a caption), readable on a phone (the table scrolls sideways inside its
//! own box), every dynamic string escaped.

use std::fmt::Write as _;

use everlock_host::auth::Principal;

use super::TagRow;
use crate::names::Name;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff;line-height:1.5}\
header,main{padding:0 1rem;max-width:72rem;margin:auto}header{border-bottom:1px solid #ccc}\
a{color:#0645ad}code{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}\
th{background:#f3f3f3}input.pull{width:100%;min-width:16rem;font-family:ui-monospace,monospace}\
ul.repos li{margin:.3rem 0}caption{text-align:left;font-weight:600;padding:.4rem 0}";

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Everlock registry</title><style>{STYLE}</style></head>\
         <body>{body}</body></html>\n",
        esc(title)
    )
}

fn header(base: &str, who: &Principal) -> String {
    let viewer = if who.is_anon() {
        "anonymous".to_owned()
    } else {
        esc(who.name())
    };
    format!(
        "<header><p><a href=\"{}/\">Everlock registry</a> · signed in as {viewer}</p></header>",
        esc(base)
    )
}

/// A page with one message.
pub(crate) fn message(title: &str, text: &str) -> String {
    document(
        title,
        &format!("<main><h1>{}</h1><p>{}</p></main>", esc(title), esc(text)),
    )
}

/// The repositories the viewer may read.
pub(crate) fn repositories(base: &str, who: &Principal, names: &[String]) -> String {
    let mut body = header(base, who);
    body.push_str("<main><h1>Repositories</h1>");
    if names.is_empty() {
        body.push_str("<p>No repository you may read.</p>");
    } else {
        body.push_str("<ul class=\"repos\">");
        for n in names {
            let _ = write!(
                body,
                "<li><a href=\"{}/r/{}\">{}</a></li>",
                esc(base),
                esc(n),
                esc(n)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("</main>");
    document("Repositories", &body)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {name}")
    }
}

/// `sha256:` and the first 12 hex digits, enough to tell digests apart on a small screen; the
/// full digest is the element's title.
fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}…", hex.get(..12).unwrap_or(hex)),
        _ => d.to_owned(),
    }
}

/// One repository's tags.
pub(crate) fn repository(
    base: &str,
    host: &str,
    who: &Principal,
    name: &Name,
    rows: &[TagRow],
) -> String {
    let mut body = header(base, who);
    let _ = write!(
        body,
        "<main><h1>{}</h1><div class=\"scroll\"><table><caption>Tags of {}</caption><thead><tr>\
         <th scope=\"col\">Tag</th><th scope=\"col\">Size</th><th scope=\"col\">Created</th>\
         <th scope=\"col\">Platforms</th><th scope=\"col\">Digest</th>\
         <th scope=\"col\">Referrers</th><th scope=\"col\">Pull</th></tr></thead><tbody>",
        esc(name.as_str()),
        esc(name.as_str())
    );
    for r in rows {
        let platforms = if r.platforms.is_empty() {
            "–".to_owned()
        } else {
            r.platforms
                .iter()
                .map(|p| esc(p))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let referrers = if r.referrers.is_empty() {
            "–".to_owned()
        } else {
            r.referrers
                .iter()
                .map(|(kind, d)| format!("<span title=\"{}\">{}</span>", esc(d), esc(kind)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let pull = format!("docker pull {host}/{}:{}", name.as_str(), r.tag);
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{tag}</th><td>{size}</td><td>{created}</td><td>{platforms}</td>\
             <td><code title=\"{digest}\">{short}</code></td><td>{referrers}</td>\
             <td><label>Pull command for {tag}<input class=\"pull\" readonly value=\"{pull}\"></label></td></tr>",
            tag = esc(&r.tag),
            size = human(r.size),
            created = esc(r.created.as_deref().unwrap_or("–")),
            digest = esc(&r.digest),
            short = esc(&short_digest(&r.digest)),
            pull = esc(&pull),
        );
    }
    body.push_str("</tbody></table></div></main>");
    document(name.as_str(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sizes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024), "5.0 MiB");
    }
}
