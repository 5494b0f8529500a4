//! Every source of configuration is folded into one TOML document before validation, as River
//! does: a file or an embedded default first, then the command line's overrides, each a dotted
//! key (`listener.0.address`). Whatever a source says meets the same checks, and the validated
//! [`Config`] is never edited afterwards (the demo's database path once escaped the checks that
//! derive the alert store's path from it).

use std::path::{Path, PathBuf};

use super::diagnostic::{ConfigError, ConfigErrors};
use super::Config;

/// The sources of one configuration, in the order they are folded.
pub struct Layers {
    path: PathBuf,
    text: String,
    overrides: Vec<(String, toml::Value)>,
    demo: bool,
}

impl Layers {
    /// A configuration file; relative paths in it are read from its folder.
    pub fn file(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::unreadable(
                path,
                "file",
                &e,
                "check the path given with -c/--config and its permissions",
            )
        })?;
        Ok(Self::text(path, text))
    }

    /// TOML text, named `path` in messages (`config/demo.toml (embedded)`).
    pub fn text(path: &Path, text: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            text: text.into(),
            overrides: Vec::new(),
            demo: false,
        }
    }

    /// The embedded demo: the only configuration that may run without a factor key ring.
    pub fn demo(mut self) -> Self {
        self.demo = true;
        self
    }

    /// Override one key: `section.key`, with array entries by index (`portal.0.upstream`).
    pub fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.overrides.push((key.to_string(), value.into()));
        self
    }

    /// Fold the sources and validate the result.
    pub fn validate(self) -> Result<Config, ConfigErrors> {
        if self.overrides.is_empty() {
            return super::validate::parse_and_validate(&self.path, &self.text, self.demo);
        }
        let mut doc: toml::Table = toml::from_str(&self.text).map_err(|e| {
            let loc = super::diagnostic::Locator::new(&self.path, &self.text);
            ConfigErrors(vec![loc.parse_error(&self.text, &e)])
        })?;
        for (key, value) in &self.overrides {
            set(&mut doc, key, value.clone()).map_err(|why| {
                ConfigErrors(vec![ConfigError {
                    file: self.path.clone(),
                    position: None,
                    key: key.clone(),
                    message: format!("cannot apply the command-line override: {why}"),
                    help: Some("overrides name `section.key`, list entries by index".into()),
                }])
            })?;
        }
        // Validated as one document: its messages name the folded keys.
        let folded = toml::to_string(&doc).expect("a TOML table serialises");
        let name = format!("{} + command line", self.path.display());
        let base = self.path.parent().unwrap_or(Path::new("."));
        super::validate::parse_and_validate_in(Path::new(&name), base, &folded, self.demo)
    }
}

/// Set `value` at the dotted `key` of `doc`; tables on the way are made, array entries must
/// exist.
fn set(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().ok_or("empty key")?;
    let mut here = doc;
    let mut i = 0;
    while i < path.len() {
        let part = path[i];
        let next = here
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = match next {
            toml::Value::Table(t) => t,
            toml::Value::Array(items) => {
                let index: usize = path
                    .get(i + 1)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| format!("`{part}` is a list: name an entry by its index"))?;
                i += 1;
                match items.get_mut(index) {
                    Some(toml::Value::Table(t)) => t,
                    _ => return Err(format!("`{part}` has no entry {index}")),
                }
            }
            _ => return Err(format!("`{part}` is not a section")),
        };
        i += 1;
    }
    here.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests;
