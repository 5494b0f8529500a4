//! The profile's `[request]` section: which language reads the portal's requests, and the
//! limits it applies (PHP's ini settings that change what a script sees).

use serde::Deserialize;

use super::{register, url_decode, Vars, Wanted};
use crate::policy::matcher::QueryReading;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// PHP 8: names folded, arrays, the last of a repeat wins, `$_POST` only for POST.
    Php,
    /// Names as sent, the first of a repeat wins (many Java servlet containers), no arrays.
    First,
}

/// How the portal reads requests, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub language: Language,
    pub max_input_vars: usize,
    pub max_input_nesting_level: usize,
    /// Bodies declared longer than this are not parsed at all (PHP: `$_POST` stays empty).
    pub post_max_size: u64,
    /// `max_multipart_body_parts`; PHP's default is `max_input_vars + max_file_uploads`.
    pub max_multipart_body_parts: usize,
    /// `$_REQUEST`'s sources, later overriding (`request_order`).
    pub request_order: String,
    /// `arg_separator.input`: each byte separates query pairs.
    pub arg_separator: Vec<u8>,
}

impl RequestSpec {
    /// PHP 8's defaults (and `request_order = "GP"`, as php.ini-production sets it).
    pub fn php() -> Self {
        Self {
            language: Language::Php,
            max_input_vars: 1000,
            max_input_nesting_level: 64,
            post_max_size: 8 * 1024 * 1024,
            max_multipart_body_parts: 1000 + 20,
            request_order: "GP".into(),
            arg_separator: b"&".to_vec(),
        }
    }

    /// The default for a profile's `query_reading`.
    pub fn for_reading(reading: QueryReading) -> Self {
        match reading {
            QueryReading::Last => Self::php(),
            QueryReading::First => Self {
                language: Language::First,
                ..Self::php()
            },
        }
    }

    /// One `name=value` piece (`=` optional), decoded and registered; a cookie's name is
    /// not decoded and its value keeps `+` (PHP 8's `PARSE_COOKIE`).
    pub(super) fn add_pair(&self, vars: &mut Vars, wanted: &Wanted, piece: &[u8], cookie: bool) {
        let (name, value) = match piece.iter().position(|b| *b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &b""[..]),
        };
        let name = if cookie {
            name.to_vec()
        } else {
            url_decode(name, true)
        };
        let value = url_decode(value, !cookie);
        self.add(vars, wanted, &name, &value, cookie);
    }

    /// Registers a decoded pair the language's way; `first_wins`: cookies in PHP.
    pub(super) fn add(
        &self,
        vars: &mut Vars,
        wanted: &Wanted,
        name: &[u8],
        value: &[u8],
        first_wins: bool,
    ) {
        match self.language {
            Language::Php => register(
                vars,
                wanted,
                name,
                value,
                self.max_input_nesting_level,
                first_wins,
            ),
            Language::First => {
                if !name.is_empty() && wanted.wants(name) && !vars.map.contains_key(name) {
                    vars.map
                        .insert(name.to_vec(), super::Value::Scalar(value.to_vec()));
                }
            }
        }
    }
}

/// `[request]` in a profile.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RequestSection {
    pub language: Option<String>,
    pub max_input_vars: Option<i64>,
    pub max_input_nesting_level: Option<i64>,
    pub post_max_size: Option<String>,
    pub max_multipart_body_parts: Option<i64>,
    pub request_order: Option<String>,
    pub arg_separator_input: Option<String>,
}

type Report<'a> = &'a mut dyn FnMut(&str, String, &str);

/// Validates `[request]`; without one, the default of the profile's `query_reading`. A
/// language that disagrees with `query_reading` is an error: matchers and the reader must
/// read repeats the same way.
pub fn build(
    section: Option<&RequestSection>,
    reading: QueryReading,
    err: Report<'_>,
) -> RequestSpec {
    let mut spec = RequestSpec::for_reading(reading);
    let Some(s) = section else {
        return spec;
    };
    match s.language.as_deref() {
        None => {}
        Some("php") if reading == QueryReading::Last => spec.language = Language::Php,
        Some("first") if reading == QueryReading::First => spec.language = Language::First,
        Some(l @ ("php" | "first")) => err(
            "request.language",
            format!("`{l}` reads repeated parameters unlike `query_reading`"),
            "use \"php\" with query_reading = \"last\", \"first\" with \"first\"",
        ),
        Some(l) => err(
            "request.language",
            format!("unknown language `{l}`"),
            "use \"php\" (PHP 8) or \"first\" (first of a repeat wins, names as sent)",
        ),
    }
    let mut count = |key: &str, v: Option<i64>, max: i64, slot: &mut usize| match v {
        None => {}
        Some(n) if (1..=max).contains(&n) => *slot = n as usize,
        Some(n) => err(
            &format!("request.{key}"),
            format!("{n} is out of range"),
            &format!("use 1 to {max}, as the portal's php.ini sets it"),
        ),
    };
    count(
        "max_input_vars",
        s.max_input_vars,
        1_000_000,
        &mut spec.max_input_vars,
    );
    spec.max_multipart_body_parts = spec.max_input_vars + 20;
    count(
        "max_input_nesting_level",
        s.max_input_nesting_level,
        10_000,
        &mut spec.max_input_nesting_level,
    );
    count(
        "max_multipart_body_parts",
        s.max_multipart_body_parts,
        1_000_000,
        &mut spec.max_multipart_body_parts,
    );
    if let Some(size) = &s.post_max_size {
        match ini_size(size) {
            Some(n) if n > 0 => spec.post_max_size = n,
            _ => err(
                "request.post_max_size",
                format!("`{size}` is not a size"),
                "write it as php.ini does: \"8M\", \"512K\", \"1G\" or bytes",
            ),
        }
    }
    if let Some(order) = &s.request_order {
        // Cookies in `$_REQUEST` would let a browser cookie choose the patient the portal
        // shows; the gateway does not read them there yet, so it does not pretend to.
        if order.chars().any(|c| c.eq_ignore_ascii_case(&'c')) {
            err(
                "request.request_order",
                format!("`{order}` puts cookies in $_REQUEST, which Vigie does not read"),
                "set request_order = \"GP\" in the portal's php.ini (php.ini-production's value) and here",
            );
        } else if order.chars().all(|c| "GPgp".contains(c)) {
            spec.request_order = order.to_ascii_uppercase();
        } else {
            err(
                "request.request_order",
                format!("`{order}` has letters other than G and P"),
                "use php.ini's request_order, e.g. \"GP\"",
            );
        }
    }
    if let Some(sep) = &s.arg_separator_input {
        if sep.is_empty() {
            err(
                "request.arg_separator_input",
                "empty".into(),
                "use \"&\" (PHP's default) or the portal's setting, e.g. \"&;\"",
            );
        } else {
            spec.arg_separator = sep.as_bytes().to_vec();
        }
    }
    spec
}

/// A php.ini size: digits with an optional K, M or G (case ignored).
fn ini_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 1 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}
