//! Request matching shared by policy rules and portal profiles' endpoint classes: a path
//! pattern on the normalised path, methods, and query parameters read the way the portal
//! reads them (threat model 23-25). Pure; compiled once from config.

use regex::Regex;

/// How the portal reads a parameter given twice: PHP keeps the last, many Java servlets the
/// first. Matching must agree with the portal, or `raw=view&raw=export` walks past a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryReading {
    #[default]
    Last,
    First,
}

#[derive(Debug, Clone)]
pub enum PathPattern {
    Any,
    /// `*` within one segment, `**` across segments, `?` one character.
    Glob(String, Regex),
    Regex(String, Regex),
}

impl PathPattern {
    /// Compile a glob; `case_insensitive` for portals that treat `/Admin` as `/admin`.
    pub fn glob(pattern: &str, case_insensitive: bool) -> Result<Self, String> {
        let mut re = String::from(if case_insensitive { "(?i)^" } else { "^" });
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    re.push_str(".*");
                }
                '*' => re.push_str("[^/]*"),
                '?' => re.push_str("[^/]"),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        Regex::new(&re)
            .map(|r| PathPattern::Glob(pattern.to_string(), r))
            .map_err(|e| e.to_string())
    }

    pub fn regex(pattern: &str, case_insensitive: bool) -> Result<Self, String> {
        let full = if case_insensitive {
            format!("(?i){pattern}")
        } else {
            pattern.to_string()
        };
        Regex::new(&full)
            .map(|r| PathPattern::Regex(pattern.to_string(), r))
            .map_err(|e| e.to_string())
    }

    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Any => true,
            PathPattern::Glob(_, r) | PathPattern::Regex(_, r) => r.is_match(path),
        }
    }

    /// The pattern as written, for messages.
    pub fn source(&self) -> &str {
        match self {
            PathPattern::Any => "**",
            PathPattern::Glob(s, _) | PathPattern::Regex(s, _) => s,
        }
    }
}

/// A query condition: the parameter as the portal reads it must match (`*`: any value, but
/// present; otherwise exact, with `*` wildcards inside).
#[derive(Debug, Clone)]
pub struct QueryCondition {
    pub name: String,
    pub value: String,
    compiled: Option<Regex>,
}

impl QueryCondition {
    pub fn new(name: &str, value: &str) -> Self {
        let compiled = (value.contains('*') && value != "*").then(|| {
            let re = value
                .split('*')
                .map(regex::escape)
                .collect::<Vec<_>>()
                .join(".*");
            // `*` spans any byte, a line break too: `ajax_export_x%0A` is still an export.
            Regex::new(&format!("(?s)^{re}$")).expect("escaped literal pieces")
        });
        Self {
            name: name.to_string(),
            value: value.to_string(),
            compiled,
        }
    }

    pub fn matches(&self, got: Option<&str>) -> bool {
        match (got, &self.compiled) {
            (None, _) => false,
            (Some(_), _) if self.value == "*" => true,
            (Some(v), Some(re)) => re.is_match(v),
            (Some(v), None) => v == self.value,
        }
    }
}

/// The value of `name` as the portal's script reads it from a query, by the one reader
/// ([`crate::http`], compared with PHP 8): PHP folds `a.b` and `a b` into `a_b`, and a
/// later `name[]` makes `name` an array (no value to match). Every pair is read: a query
/// longer than the script reads never reaches the portal ([`crate::http::reads_whole_query`]),
/// and views the gateway built (body and query merged) may hold more names than one query.
pub fn param(query: Option<&str>, name: &str, reading: QueryReading) -> Option<String> {
    static SPECS: std::sync::LazyLock<[crate::http::RequestSpec; 2]> =
        std::sync::LazyLock::new(|| {
            [QueryReading::Last, QueryReading::First].map(|r| crate::http::RequestSpec {
                max_input_vars: usize::MAX,
                ..crate::http::RequestSpec::for_reading(r)
            })
        });
    let spec = &SPECS[(reading == QueryReading::First) as usize];
    let wanted = crate::http::Wanted::names([name]);
    crate::http::read_query(spec, query.unwrap_or("").as_bytes(), &wanted).scalar(name)
}

/// A parameter name as PHP registers it: cut at a NUL byte, leading spaces dropped, ` ` and
/// `.` turned into `_`; `name[…]` is the array `name` (the flag), while a `[` without a
/// closing `]` becomes `_` too. PHP's own folding, from the one reader ([`crate::http`]).
pub fn php_name(raw: &str) -> (String, bool) {
    match crate::http::php_field(raw.as_bytes()) {
        // Folding only cuts and replaces ASCII bytes: the name stays UTF-8.
        Some((name, array)) => (String::from_utf8_lossy(&name).into_owned(), array),
        None => (String::new(), false),
    }
}

/// Path, methods and query conditions; every given one must hold.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub path: PathPattern,
    /// Upper case; empty = any. `GET` also covers `HEAD` (the same resource).
    pub methods: Vec<String>,
    pub query: Vec<QueryCondition>,
}

impl Matcher {
    pub fn any() -> Self {
        Self {
            path: PathPattern::Any,
            methods: Vec::new(),
            query: Vec::new(),
        }
    }

    pub fn matches(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        reading: QueryReading,
    ) -> bool {
        let method_ok = self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m == method || (m == "GET" && method == "HEAD"));
        method_ok
            && self.path.matches(path)
            && self
                .query
                .iter()
                .all(|c| c.matches(param(query, &c.name, reading).as_deref()))
    }

    /// Whether every request this matcher takes is also taken by `wider` (conservative: only
    /// when each condition of `wider` is absent or the same).
    pub fn within(&self, wider: &Matcher) -> bool {
        let everything = |p: &PathPattern| {
            matches!(p, PathPattern::Any)
                || matches!(p, PathPattern::Glob(s, _) if s == "/**" || s == "**")
        };
        let path = everything(&wider.path)
            || (wider.path.source() == self.path.source() && !everything(&self.path));
        let methods = wider.methods.is_empty()
            || (!self.methods.is_empty() && self.methods.iter().all(|m| wider.methods.contains(m)));
        let query = wider.query.iter().all(|w| {
            self.query
                .iter()
                .any(|q| q.name == w.name && (q.value == w.value || w.value == "*"))
        });
        path && methods && query
    }
}

#[cfg(test)]
mod tests;
