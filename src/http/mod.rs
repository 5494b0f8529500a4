//! The one reader of request parameters: the query, cookies and a streamed form body read
//! exactly as the portal's language reads them (PHP 8 by default), so that what the gateway
//! checks is what the portal script will see. Declared per profile (`[request]`); checked
//! against the real PHP runtime by `tests/gateway/php_params.rs`.
//!
//! Only the values of names the caller asks for are kept (a patient id, paging names, login
//! fields): a body of any size streams through with bounded memory.

mod body;
mod form;
mod multipart;
mod spec;
pub mod target;

use std::collections::{BTreeMap, BTreeSet};

pub use body::BodyReader;
pub use target::{normalise as normalise_target, Target, TargetError};

/// The media type of urlencoded forms.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// The media type of a `Content-Type` value as PHP's SAPI cuts it: up to the first `;`, `,`
/// or space (so `application/x-www-form-urlencoded, x` is a form to PHP).
pub fn media_type(value: &str) -> &str {
    &value[..value.find([';', ',', ' ']).unwrap_or(value.len())]
}

/// Whether a `Content-Type` value names `media`: cut as PHP cuts it, case and surrounding
/// whitespace ignored. The body reader matches [`media_type`] exactly, as PHP does; the login
/// reader and the hold use this, which also names a form for a portal that trims the type, so
/// they never read less of a body than the portal does.
pub fn is_media_type(value: &str, media: &str) -> bool {
    media_type(value.trim_start())
        .trim_end()
        .eq_ignore_ascii_case(media)
}

pub use spec::{build, Language, RequestSection, RequestSpec};

/// Largest value or name the reader keeps; a wanted one past it makes the request
/// unreadable (the caller refuses it rather than guess).
pub const MAX_KEPT: usize = 64 * 1024;

/// A top-level variable as the script sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Scalar(Vec<u8>),
    /// `name[]=…`, `name[k]=…`: an array, never a scalar the detector could read.
    Array,
}

/// Which names to keep: `None` keeps every top-level name, whatever its size (the
/// differential test); named ones are kept up to [`MAX_KEPT`].
#[derive(Debug, Clone, Default)]
pub struct Wanted(pub Option<BTreeSet<Vec<u8>>>);

impl Wanted {
    pub fn all() -> Self {
        Self(None)
    }

    /// The longest name or value kept before the request is unreadable.
    pub(crate) fn cap(&self) -> usize {
        if self.0.is_some() {
            MAX_KEPT
        } else {
            usize::MAX
        }
    }

    pub fn names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self(Some(
            names.into_iter().map(|n| n.as_bytes().to_vec()).collect(),
        ))
    }

    fn wants(&self, name: &[u8]) -> bool {
        self.0.as_ref().is_none_or(|s| s.contains(name))
    }
}

/// One superglobal (`$_GET`, `$_POST`, `$_COOKIE`, `$_REQUEST`), top level, wanted names only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    pub map: BTreeMap<Vec<u8>, Value>,
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name.as_bytes())
    }

    /// The scalar value of `name`, as text (lossy for bytes that are not UTF-8).
    pub fn scalar(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Value::Scalar(v) => Some(String::from_utf8_lossy(v).into_owned()),
            Value::Array => None,
        }
    }

    /// The variables as a query string of folded names, for matchers that read a query: each
    /// scalar once, arrays as `name[]=` (which a PHP-style matcher never reads as a value).
    pub fn to_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.map {
            let k = String::from_utf8_lossy(k);
            match v {
                Value::Scalar(v) => out.append_pair(&k, &String::from_utf8_lossy(v)),
                Value::Array => out.append_pair(&format!("{k}[]"), ""),
            };
        }
        out.finish()
    }
}

/// PHP's `php_url_decode`: `+` is a space, `%XX` a byte, a stray `%` stays.
pub fn url_decode(raw: &[u8], plus: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' if plus => out.push(b' '),
            b'%' if i + 2 < raw.len() => match (hex(raw[i + 1]), hex(raw[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Registers `name = value` as `php_register_variable_ex` does, at the top level: the name
/// cut at NUL, leading spaces dropped, ` ` and `.` folded to `_`; `name[…]` makes an array;
/// a `[` never closed folds to `_`; nesting past the limit removes the whole variable.
/// Returns the folded top-level name the value landed under, if any.
pub fn register(
    vars: &mut Vars,
    wanted: &Wanted,
    name: &[u8],
    value: &[u8],
    nesting: usize,
    first_wins: bool,
) {
    let name = name.split(|b| *b == 0).next().unwrap_or(&[]);
    let start = name.iter().position(|b| *b != b' ').unwrap_or(name.len());
    let name = &name[start..];
    let mut base = Vec::with_capacity(name.len());
    let mut bracket = None;
    for (i, b) in name.iter().enumerate() {
        match b {
            b' ' | b'.' => base.push(b'_'),
            b'[' => {
                bracket = Some(i);
                break;
            }
            b => base.push(*b),
        }
    }
    if base.is_empty() {
        return;
    }
    let Some(open) = bracket else {
        return plain(vars, wanted, base, value, first_wins);
    };
    // The index chain: each level needs its `]`; after a `]` only a `[` continues.
    let mut level = 0;
    let mut at = open;
    loop {
        level += 1;
        if level > nesting {
            vars.map.remove(&base);
            return;
        }
        let Some(close) = name[at + 1..].iter().position(|b| *b == b']') else {
            if level == 1 {
                // Not an index: the `[` and what follows fold into the plain name.
                base.push(b'_');
                base.extend(name[at + 1..].iter().map(|b| match b {
                    b' ' | b'.' | b'[' => b'_',
                    b => *b,
                }));
                return plain(vars, wanted, base, value, first_wins);
            }
            return;
        };
        if level == 1 && wanted.wants(&base) {
            vars.map.insert(base.clone(), Value::Array);
        }
        at = at + 1 + close + 1;
        if name.get(at) != Some(&b'[') {
            return;
        }
    }
}

fn plain(vars: &mut Vars, wanted: &Wanted, base: Vec<u8>, value: &[u8], first_wins: bool) {
    if !wanted.wants(&base) || (first_wins && vars.map.contains_key(&base)) {
        return;
    }
    vars.map.insert(base, Value::Scalar(value.to_vec()));
}

/// Whether the script reads every pair of this query: past `max_input_vars` pairs it stops,
/// so the gateway's rules, which read them all, could meet a decoy the script never sees.
pub fn reads_whole_query(spec: &RequestSpec, query: &[u8]) -> bool {
    query_pieces(spec, query).count() <= spec.max_input_vars
}

/// A query's pairs as `treat_data` splits them: on the separator bytes, empty pieces skipped.
fn query_pieces<'a>(spec: &'a RequestSpec, query: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    query
        .split(|b| spec.arg_separator.contains(b))
        .filter(|p| !p.is_empty())
}

/// `$_GET` from a query string (`treat_data`): split on the separator bytes, empty pieces
/// skipped; past `max_input_vars` pieces the rest is dropped.
pub fn read_query(spec: &RequestSpec, query: &[u8], wanted: &Wanted) -> Vars {
    let mut vars = Vars::default();
    for (n, piece) in query_pieces(spec, query).enumerate() {
        if n >= spec.max_input_vars {
            break;
        }
        spec.add_pair(&mut vars, wanted, piece, false);
    }
    vars
}

/// `$_COOKIE` from a `Cookie` header: `;`-separated, leading spaces of names skipped, names
/// not decoded, values decoded without `+`, and the first of a repeated name kept.
pub fn read_cookies(spec: &RequestSpec, header: &[u8], wanted: &Wanted) -> Vars {
    let mut vars = Vars::default();
    let pieces = header.split(|b| *b == b';').filter(|p| !p.is_empty());
    for (n, piece) in pieces.enumerate() {
        if n >= spec.max_input_vars {
            break;
        }
        let skip = piece
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(piece.len());
        let piece = &piece[skip..];
        if piece.is_empty() || piece[0] == b'=' {
            continue;
        }
        spec.add_pair(&mut vars, wanted, piece, true);
    }
    vars
}

/// `$_REQUEST`: the superglobals merged in `request_order`, later ones overriding (two
/// arrays merge, staying an array); for a `first` portal the earlier ones stay.
pub fn merge_request(spec: &RequestSpec, get: &Vars, post: &Vars, cookie: &Vars) -> Vars {
    let mut out = Vars::default();
    for c in spec.request_order.chars() {
        let src = match c.to_ascii_uppercase() {
            'G' => get,
            'P' => post,
            'C' => cookie,
            _ => continue,
        };
        for (k, v) in &src.map {
            // Servlet-like portals keep the first value of a name, the query's before the body's.
            if spec.language == Language::First && out.map.contains_key(k) {
                continue;
            }
            out.map.insert(k.clone(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests;

/// A raw (decoded) name as PHP registers it at the top level: the folded name and whether it
/// makes an array; `None` for a name PHP drops (empty once folded). The one folding every
/// reader of names in the gateway uses (matchers, the login reader, block rules).
pub fn php_field(name: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut probe = Vars::default();
    register(&mut probe, &Wanted::all(), name, b"", usize::MAX, false);
    probe
        .map
        .into_iter()
        .next()
        .map(|(k, v)| (k, v == Value::Array))
}

/// The top-level name a raw (decoded) name registers under in PHP, if any.
pub(crate) fn top_name(name: &[u8]) -> Option<Vec<u8>> {
    php_field(name).map(|(k, _)| k)
}

/// What a PHP script sees of one request, top level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Superglobals {
    pub get: Vars,
    pub post: Vars,
    pub cookie: Vars,
    pub request: Vars,
    /// A wanted name or value was too long to keep (see [`BodyReader::unreadable`]).
    pub unreadable: bool,
}

/// A whole request as the portal receives it.
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a> {
    pub method: &'a str,
    pub query: &'a [u8],
    pub cookie: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Reads a whole request at once (tests, and callers that hold the body); the body is fed
/// in `chunk`-byte pieces, as a stream would bring it.
pub fn read_all(spec: &RequestSpec, wanted: &Wanted, raw: Raw<'_>, chunk: usize) -> Superglobals {
    let Raw {
        method,
        query,
        cookie,
        content_type,
        body,
    } = raw;
    let mut reader = BodyReader::new(
        spec,
        wanted.clone(),
        method,
        content_type,
        Some(body.len() as u64),
    );
    for piece in body.chunks(chunk.max(1)) {
        reader.feed(piece);
    }
    reader.finish();
    let get = read_query(spec, query, wanted);
    let cookie = cookie.map_or_else(Vars::default, |c| read_cookies(spec, c, wanted));
    let post = reader.post().clone();
    let request = merge_request(spec, &get, &post, &cookie);
    Superglobals {
        get,
        post,
        cookie,
        request,
        unreadable: reader.unreadable(),
    }
}
