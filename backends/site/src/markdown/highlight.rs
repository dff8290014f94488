//! Syntax highlighting of fenced code blocks with syntect (pure-Rust fancy-regex engine).
//!
//! Output is class-based (`<span class="...">`) plus one stylesheet per theme, so the HTML
//! survives the sanitiser (which keeps `class` but drops `style`).

use std::sync::LazyLock;

use syntect::highlighting::ThemeSet;
use syntect::html::{ClassStyle, ClassedHTMLGenerator, css_for_theme_with_class_style};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// The class prefix keeps syntect's classes (`keyword`, `string`, ...) from clashing with a
/// layout's own CSS.
const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);
static THEMES: LazyLock<ThemeSet> = LazyLock::new(ThemeSet::load_defaults);

/// Whether syntect ships a theme with this name.
pub fn theme_exists(name: &str) -> bool {
    THEMES.themes.contains_key(name)
}

/// The names of the built-in themes.
pub fn theme_names() -> Vec<&'static str> {
    THEMES.themes.keys().map(String::as_str).collect()
}

/// The stylesheet for `theme`, empty if the theme is unknown.
pub fn css(theme: &str) -> String {
    THEMES
        .themes
        .get(theme)
        .and_then(|t| css_for_theme_with_class_style(t, STYLE).ok())
        .unwrap_or_default()
}

/// Highlights `code` written in `lang` (a fence info string's first word), or `None` when the
/// language is unknown, so the caller falls back to plain escaped text.
pub fn highlight(code: &str, lang: &str) -> Option<String> {
    let syntax = SYNTAXES
        .find_syntax_by_token(lang)
        .or_else(|| SYNTAXES.find_syntax_by_extension(lang))?;
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, &SYNTAXES, STYLE);
    for line in LinesWithEndings::from(code) {
        generator
            .parse_html_for_line_which_includes_newline(line)
            .ok()?;
    }
    Some(generator.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_known_languages_only() {
        let html = highlight("fn main() {}\n", "rust").unwrap();
        assert!(html.contains("class=\"hl-"), "{html}");
        assert!(highlight("x", "no-such-language").is_none());
        assert!(css("InspiredGitHub").contains(".hl-"));
        assert!(theme_exists("InspiredGitHub"));
    }
}
