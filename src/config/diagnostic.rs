//! Configuration errors that name the file, the line, the key and the fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem can be pinned to a place in the file.
    pub position: Option<(usize, usize)>,
    /// Dotted key path, e.g. `portal[0].upstream`.
    pub key: String,
    pub message: String,
    /// What would be valid.
    pub help: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one file, reported together so an operator fixes them in one pass.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// A file that could not be read at all.
    pub fn unreadable(path: &Path, what: &str, e: &std::io::Error, help: &str) -> Self {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            position: None,
            key: String::new(),
            message: format!("cannot read the {what}: {e}"),
            help: Some(help.to_string()),
        }])
    }
}

/// Finds where a key path sits in the source text, so validation errors can point at a line.
pub struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
    doc: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Locator<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Self {
            file,
            text,
            doc: toml_edit::Document::parse(text).ok(),
        }
    }

    pub fn file(&self) -> &Path {
        self.file
    }

    /// 1-based (line, column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.len(), |nl| before.len() - nl - 1)
            + 1;
        (line, col)
    }

    /// Span of the value at `path` (e.g. `["portal", "0", "upstream"]`), or of the
    /// deepest parent that exists, so a missing key points at its table.
    pub fn span_of(&self, path: &[&str]) -> Option<Range<usize>> {
        find_item(self.doc.as_ref()?.as_item(), path)
    }

    /// Turn a TOML/serde error into a located message, with a "did you mean" for unknown keys.
    pub fn parse_error(&self, text: &str, e: &toml::de::Error) -> ConfigError {
        let loc = self;
        let span = e.span();
        let position = span.clone().map(|s| loc.line_col(s.start));
        let at = span
            .map(|s| text[s].trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty() && s.len() < 80 && !s.contains('\n'))
            .unwrap_or_default();
        let message = e.message().trim().to_string();
        let help = unknown_field_help(&message).or_else(|| {
            Some("see config/reference.toml for every key with its meaning and default".to_string())
        });
        ConfigError {
            file: loc.file().to_path_buf(),
            position,
            key: at,
            message,
            help,
        }
    }

    /// Build an error for a key path like `portal[0].upstream`.
    pub fn error(
        &self,
        key: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) -> ConfigError {
        let parts = split_key(key);
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        ConfigError {
            file: self.file.to_path_buf(),
            position: self.span_of(&refs).map(|s| self.line_col(s.start)),
            key: key.to_string(),
            message: message.into(),
            help,
        }
    }
}

/// serde says "unknown field `adress`, expected one of `address`, `tls_cert`": suggest the closest.
fn unknown_field_help(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (bad, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let best = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(bad, c), *c))
        .min()?;
    if best.0 <= 3 {
        Some(format!("did you mean `{}`?", best.1))
    } else {
        Some(format!("valid keys here: {}", candidates.join(", ")))
    }
}

fn find_item(item: &toml_edit::Item, path: &[&str]) -> Option<Range<usize>> {
    use toml_edit::Item;
    let Some((head, tail)) = path.split_first() else {
        return item.span();
    };
    match item {
        Item::Table(t) => find_in_table(t, head, tail),
        Item::ArrayOfTables(a) => {
            let t = a.get(head.parse().ok()?)?;
            match tail.split_first() {
                Some((h, rest)) => find_in_table(t, h, rest).or(t.span()),
                None => t.span(),
            }
        }
        Item::Value(v) => find_value(v, path),
        Item::None => None,
    }
}

fn find_in_table(t: &toml_edit::Table, head: &str, tail: &[&str]) -> Option<Range<usize>> {
    let (k, v) = t.get_key_value(head)?;
    find_item(v, tail).or(v.span()).or(k.span())
}

fn find_value(v: &toml_edit::Value, path: &[&str]) -> Option<Range<usize>> {
    use toml_edit::Value;
    let Some((head, tail)) = path.split_first() else {
        return v.span();
    };
    match v {
        Value::Array(a) => {
            let x = a.get(head.parse().ok()?)?;
            find_value(x, tail).or(x.span())
        }
        Value::InlineTable(t) => {
            let (k, x) = t.get_key_value(head)?;
            find_item(x, tail).or(x.span()).or(k.span())
        }
        _ => None,
    }
}

/// `portal[0].hosts[2]` -> `["portal", "0", "hosts", "2"]`
fn split_key(key: &str) -> Vec<String> {
    key.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
