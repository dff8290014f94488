//! Reading an instance's `settings` table and finding it again in the file text.
//!
//! toml's `Spanned` cannot span a table that only exists implicitly, such as the `settings`
//! of `[[backends.k.instances.x.settings.webhooks]]` written without a
//! `[backends.k.instances.x.settings]` header: deserializing it fails with "expected a
//! borrowed string". So the settings are read as a plain table, and a settings error is
//! located afterwards by searching the source for the table's headers.

use serde::{Deserialize, Deserializer};

/// Deserializes an instance's `settings` as a plain table. The result keeps the
/// `Spanned` wrapper other modules construct, with an empty span: locations come from
/// [`settings_line`], never from the span.
pub(super) fn unspanned<'de, D>(
    deserializer: D,
) -> Result<Option<toml::Spanned<toml::Table>>, D::Error>
where
    D: Deserializer<'de>,
{
    let table = toml::Table::deserialize(deserializer)?;
    Ok(Some(toml::Spanned::new(0..0, table)))
}

/// The 1-based line where `kind`/`instance`'s settings are written in `text`: the
/// `[...settings]` header, else the first header below it (`[[...settings.webhooks]]`),
/// else the instance's own header. `None` when none of them appears.
pub(super) fn settings_line(text: &str, kind: &str, instance: &str) -> Option<usize> {
    let instance_path = format!("backends.{kind}.instances.{instance}");
    let settings_path = format!("{instance_path}.settings");
    let nested_prefix = format!("{settings_path}.");
    let headers: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, line)| header_path(line).map(|p| (i + 1, p)))
        .collect();
    let find = |wanted: &dyn Fn(&str) -> bool| {
        headers
            .iter()
            .find(|(_, path)| wanted(path))
            .map(|(line, _)| *line)
    };
    find(&|p| p == settings_path)
        .or_else(|| find(&|p| p.starts_with(&nested_prefix)))
        .or_else(|| find(&|p| p == instance_path))
}

/// The dotted key path of a table or array-of-tables header line, with whitespace and
/// quotes removed so `[ backends."k".instances.x ]` compares equal to its plain spelling.
fn header_path(line: &str) -> Option<String> {
    let line = line.trim_start();
    let (inner, close) = if let Some(rest) = line.strip_prefix("[[") {
        (rest, "]]")
    } else {
        (line.strip_prefix('[')?, "]")
    };
    let end = inner.find(close)?;
    let path = inner.get(..end)?;
    Some(
        path.chars()
            .filter(|c| !c.is_whitespace() && *c != '"' && *c != '\'')
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::api::{Backend, BackendContext, BackendFactory, BuildError, Frontend};
    use crate::config::Config;
    use crate::registry::Registry;
    use std::path::Path;

    fn check(t: &toml::Table) -> Result<Vec<crate::api::PathPrefix>, BuildError> {
        match t.keys().find(|k| *k != "webhooks") {
            Some(k) => Err(BuildError::Settings(format!("unknown field `{k}`"))),
            None => Ok(Vec::new()),
        }
    }
    fn build(_: BackendContext, _: &toml::Table) -> Result<Box<dyn Backend>, BuildError> {
        Err(BuildError::Settings("not built in these tests".into()))
    }
    static K: BackendFactory = BackendFactory {
        kind: "k-http",
        frontend: Frontend::Http,
        summary: "test kind",
        check,
        build,
        default_instances: Vec::new,
        example_settings: "",
        access_root: None,
        console: None,
    };

    fn load(text: &str) -> Result<Config, String> {
        let config = Config::parse(text, Path::new("t.toml")).map_err(|e| e.to_string())?;
        let registry = Registry::from_factories([&K]).unwrap();
        config
            .validate(&registry, Some(text))
            .map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// The shape that used to fail with "expected a borrowed string": an array of tables
    /// under `settings` with no `[...settings]` header of its own.
    #[test]
    fn array_of_tables_under_implicit_settings_loads() {
        let text = "[backends.k-http.instances.x]\nvhosts = [\"a.example\"]\n\n[[backends.k-http.instances.x.settings.webhooks]]\nurl = \"http://h/\"\n[[backends.k-http.instances.x.settings.webhooks]]\nurl = \"http://i/\"\n";
        let config = load(text).unwrap();
        let instances = config.backends["k-http"].instances.as_ref().unwrap();
        let settings = instances[&"x".parse().unwrap()].settings_table();
        assert_eq!(settings["webhooks"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn settings_errors_still_name_the_header_line() {
        let text = "[backends.k-http.instances.x]\nvhosts = [\"a.example\"]\n\n[backends.k-http.instances.x.settings]\ncolour = 1\n";
        let err = load(text).unwrap_err();
        assert!(err.contains("k-http/x (line 4, column 1)"), "{err}");
        assert!(err.contains("colour"), "{err}");
        let implicit = "[backends.k-http.instances.x]\nvhosts = [\"a.example\"]\n[backends.k-http.instances.x.settings.extra]\nb = 1\n";
        let err = load(implicit).unwrap_err();
        assert!(err.contains("k-http/x (line 3, column 1)"), "{err}");
    }

    #[test]
    fn explicit_header_is_found() {
        let text = "[backends.k.instances.x]\nvhosts = [\"a\"]\n\n[backends.k.instances.x.settings]\na = 1\n";
        assert_eq!(settings_line(text, "k", "x"), Some(4));
    }

    #[test]
    fn implicit_settings_point_at_the_first_nested_header() {
        let text = "[backends.k.instances.x]\nvhosts = [\"a\"]\n[[ backends.\"k\".instances.x.settings.webhooks ]]\nurl = \"u\"\n";
        assert_eq!(settings_line(text, "k", "x"), Some(3));
    }

    #[test]
    fn falls_back_to_the_instance_header_and_ignores_other_instances() {
        let text =
            "[backends.k.instances.xy.settings]\n[backends.k.instances.x]\nsettings = { a = 1 }\n";
        assert_eq!(settings_line(text, "k", "x"), Some(2));
        assert_eq!(settings_line(text, "k", "z"), None);
    }
}
