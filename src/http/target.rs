//! Request-target normalisation: the one canonical path that policy judges and the portal
//! receives. Anything two servers could read two ways is rejected instead of guessed.
//!
//! Rules, in order: absolute-form targets are split into authority and path; the path must
//! start with `/`; `;parameters` are dropped from every segment; each segment is
//! percent-decoded once; an encoded `/`, `\`, control byte or second layer of encoding
//! (`%2561`) is refused; the decoded bytes must be valid UTF-8 (this refuses overlong
//! forms such as `%C0%AF`); empty and `.` segments vanish and `..` climbs (never above `/`).
//! The query string is checked for control bytes but otherwise forwarded untouched.

use std::borrow::Cow;
use std::fmt;

/// A request target after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Canonical, decoded path, always starting with `/`.
    pub path: String,
    /// Raw query string without the `?`, if any.
    pub query: Option<String>,
    /// Authority of an absolute-form target (`GET http://host/path`), lower-cased.
    pub authority: Option<String>,
}

/// Why a target was refused; the text is safe to log (it never echoes the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    Empty,
    NotOriginForm,
    UserInfo,
    Fragment,
    Backslash,
    ControlByte,
    BadPercent,
    EncodedSeparator,
    DoubleEncoding,
    InvalidUtf8,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty request target",
            Self::NotOriginForm => "request target is neither a path nor an http(s) URL",
            Self::UserInfo => "credentials in the request target",
            Self::Fragment => "fragment in the request target",
            Self::Backslash => "backslash in the path",
            Self::ControlByte => "control byte in the request target",
            Self::BadPercent => "malformed percent-encoding",
            Self::EncodedSeparator => "encoded slash or backslash in the path",
            Self::DoubleEncoding => "double percent-encoding in the path",
            Self::InvalidUtf8 => "path is not valid UTF-8 (overlong or truncated sequence)",
        })
    }
}

impl Target {
    /// The path re-encoded for the wire, followed by the query: what the portal receives.
    pub fn to_uri(&self) -> String {
        let mut out = String::with_capacity(
            self.path.len() + 1 + self.query.as_ref().map_or(0, |q| q.len() + 1),
        );
        encode_path_into(&self.path, &mut out);
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

/// Normalise a raw request target (the second word of the request line).
pub fn normalise(raw: &str) -> Result<Target, TargetError> {
    if raw.is_empty() {
        return Err(TargetError::Empty);
    }
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(TargetError::ControlByte);
    }
    if raw.contains('#') {
        return Err(TargetError::Fragment);
    }
    let (authority, rest) = split_absolute_form(raw)?;
    let (raw_path, query) = match rest.as_ref().split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest.as_ref(), None),
    };
    if !raw_path.starts_with('/') {
        return Err(TargetError::NotOriginForm);
    }
    if raw_path.contains('\\') {
        return Err(TargetError::Backslash);
    }
    if let Some(q) = query {
        check_query(q)?;
    }
    let path = normalise_path(raw_path)?;
    Ok(Target {
        path,
        query: query.map(str::to_string),
        authority,
    })
}

fn split_absolute_form(raw: &str) -> Result<(Option<String>, Cow<'_, str>), TargetError> {
    if raw.starts_with('/') {
        return Ok((None, Cow::Borrowed(raw)));
    }
    let lower_prefix = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let after_scheme = if lower_prefix.starts_with("http://") {
        &raw[7..]
    } else if lower_prefix.starts_with("https://") {
        &raw[8..]
    } else {
        return Err(TargetError::NotOriginForm);
    };
    let end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..end];
    if authority.contains('@') {
        return Err(TargetError::UserInfo);
    }
    if authority.is_empty() {
        return Err(TargetError::NotOriginForm);
    }
    let rest = &after_scheme[end..];
    // `http://host` and `http://host?x` have the path `/`.
    let rest = if rest.starts_with('/') {
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(format!("/{rest}"))
    };
    Ok((Some(authority.to_ascii_lowercase()), rest))
}

fn check_query(q: &str) -> Result<(), TargetError> {
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (hi, lo) = (b.get(i + 1).copied(), b.get(i + 2).copied());
            match (hi.and_then(hex), lo.and_then(hex)) {
                (Some(h), Some(l)) if h * 16 + l < 0x20 || h * 16 + l == 0x7f => {
                    return Err(TargetError::ControlByte)
                }
                _ => {}
            }
        }
        i += 1;
    }
    Ok(())
}

fn normalise_path(raw_path: &str) -> Result<String, TargetError> {
    let mut out: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    // The first element is the empty string before the leading `/`.
    for raw_seg in raw_path.split('/').skip(1) {
        let without_params = raw_seg.split(';').next().unwrap_or("");
        let seg = decode_segment(without_params)?;
        trailing_slash = false;
        match seg.as_str() {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                out.pop();
                trailing_slash = true;
            }
            _ => out.push(seg),
        }
    }
    let mut path = String::with_capacity(raw_path.len());
    for seg in &out {
        path.push('/');
        path.push_str(seg);
    }
    if path.is_empty() || trailing_slash {
        path.push('/');
    }
    Ok(path)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_segment(seg: &str) -> Result<String, TargetError> {
    if !seg.contains('%') {
        return Ok(seg.to_string());
    }
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut percent = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) else {
            return Err(TargetError::BadPercent);
        };
        let v = h * 16 + l;
        match v {
            b'/' | b'\\' => return Err(TargetError::EncodedSeparator),
            0..=0x1f | 0x7f => return Err(TargetError::ControlByte),
            _ => out.push(v),
        }
        percent |= v == b'%';
        i += 3;
    }
    // Judged on the decoded segment, not the raw one: `%25%32%65` decodes to `%2e` as surely
    // as `%252e` does, and a portal that decodes again would read `.`. Only a decoded `%25`
    // can leave a `%` in `out`, so most segments skip the scan.
    let escape = |w: &[u8]| w[0] == b'%' && hex(w[1]).is_some() && hex(w[2]).is_some();
    if percent && out.windows(3).any(escape) {
        return Err(TargetError::DoubleEncoding);
    }
    String::from_utf8(out).map_err(|_| TargetError::InvalidUtf8)
}

/// Percent-encode everything but unreserved characters, a few safe sub-delimiters and `/`.
/// `;` stays encoded so no server downstream can take it for a parameter delimiter.
fn encode_path_into(path: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in path.as_bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests;
