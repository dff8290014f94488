//! Front matter: a `+++` TOML or `---` YAML block at the top of a Markdown page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A page's front matter; every key is optional and unknown keys are rejected (put your own
/// values under `extra`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    /// The page title (else the first `# heading`, else the file name).
    #[serde(default)]
    pub title: Option<String>,
    /// A one-line description.
    #[serde(default)]
    pub description: Option<String>,
    /// A date, shown in section listings and used to sort them (newest first).
    #[serde(default)]
    pub date: Option<DateValue>,
    /// Drafts are neither served nor listed.
    #[serde(default)]
    pub draft: bool,
    /// A layout in `layouts/` to use instead of `single.html` / `list.html` (without `.html`).
    #[serde(default)]
    pub layout: Option<String>,
    /// Sort key in section listings (ascending, before the date).
    #[serde(default)]
    pub weight: Option<i64>,
    /// Tags, available to templates.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Terms of other taxonomies declared in `site.toml` (`{ category = ["howto"] }`).
    #[serde(default)]
    pub taxonomies: BTreeMap<String, Vec<String>>,
    /// Free-form values for templates (`page.extra.x`).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A date written as a TOML datetime or as text.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum DateValue {
    /// `date = 2024-05-01` in TOML.
    Toml(everlock_host::toml::value::Datetime),
    /// `date: "2024-05-01"` in YAML, or a TOML string.
    Text(String),
}

impl DateValue {
    /// The date as text (`2024-05-01`).
    pub fn text(&self) -> String {
        match self {
            DateValue::Toml(d) => d.to_string(),
            DateValue::Text(s) => s.clone(),
        }
    }
}

/// Why a page's front matter block was not understood; the message names the format.
#[derive(Debug, thiserror::Error)]
pub enum FrontMatterError {
    /// The opening fence has no closing one.
    #[error("front matter opened with {0} is never closed")]
    Unclosed(&'static str),
    /// A `+++` block that is not valid TOML for a front matter.
    #[error("TOML front matter: {0}")]
    Toml(#[from] everlock_host::toml::de::Error),
    /// A `---` block that is not valid YAML for a front matter.
    #[error("YAML front matter: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// Splits `source` into its front matter and body. A page without a front matter block has
/// the default one; a malformed block is an error naming the format.
pub fn split(source: &str) -> Result<(FrontMatter, &str), FrontMatterError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    for (fence, toml) in [("+++", true), ("---", false)] {
        let Some(rest) = source.strip_prefix(fence) else {
            continue;
        };
        let Some(rest) = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\n'))
        else {
            continue;
        };
        let Some((block, body)) = find_closing(rest, fence) else {
            return Err(FrontMatterError::Unclosed(fence));
        };
        let front = if toml {
            everlock_host::toml::from_str(block)?
        } else if block.trim().is_empty() {
            FrontMatter::default()
        } else {
            serde_norway::from_str(block)?
        };
        return Ok((front, body));
    }
    Ok((FrontMatter::default(), source))
}

/// Finds a line consisting of `fence` only; returns the block before it and the text after it.
fn find_closing<'a>(text: &'a str, fence: &str) -> Option<(&'a str, &'a str)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']) == fence {
            let block = text.get(..offset)?;
            let body = text.get(offset + line.len()..)?;
            return Some((block, body));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_yaml_front_matter() {
        let (f, body) = split(
            "+++\ntitle = \"Hi\"\ndate = 2024-05-01\nweight = 2\ntaxonomies = { category = [\"howto\"] }\n+++\n# Body\n",
        )
        .unwrap();
        assert_eq!(f.taxonomies["category"], ["howto"]);
        assert_eq!(f.title.as_deref(), Some("Hi"));
        assert_eq!(f.date.unwrap().text(), "2024-05-01");
        assert_eq!(f.weight, Some(2));
        assert_eq!(body, "# Body\n");
        let (f, body) =
            split("---\r\ntitle: Yaml page\ndraft: true\ntags: [a, b]\n---\r\nText").unwrap();
        assert_eq!(f.title.as_deref(), Some("Yaml page"));
        assert!(f.draft);
        assert_eq!(f.tags, ["a", "b"]);
        assert_eq!(body, "Text");
        let (f, body) = split("No front matter\n---\n").unwrap();
        assert!(f.title.is_none());
        assert_eq!(body, "No front matter\n---\n");
    }

    #[test]
    fn malformed_front_matter_is_an_error() {
        let err = split("+++\ntitle = \n+++\n").unwrap_err();
        assert!(matches!(err, FrontMatterError::Toml(_)), "{err:?}");
        assert!(err.to_string().starts_with("TOML front matter: "), "{err}");
        let err = split("---\ntitel: x\n---\n").unwrap_err();
        assert!(matches!(err, FrontMatterError::Yaml(_)), "{err:?}");
        assert!(err.to_string().contains("titel"), "{err}");
        assert_eq!(
            split("+++\ntitle = \"x\"\n").unwrap_err().to_string(),
            "front matter opened with +++ is never closed"
        );
    }
}
