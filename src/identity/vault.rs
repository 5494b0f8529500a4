//! The cookie vault: the portal's session cookies live server-side. These pure functions decide
//! which cookies cross the gateway in each direction.

/// One cookie the portal set, as kept in the vault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VaultedCookie {
    pub name: String,
    pub value: String,
}

/// Split a `Cookie:` header into pairs; pieces without `=` are dropped.
pub fn parse_cookie_header(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        Some((k.trim(), v.trim()))
    })
}

/// The browser's cookies for the portal: everything except the gateway's own cookies and the
/// portal's session cookies (a browser-supplied copy of those is never trusted, under any
/// spelling the portal reads as theirs: [`reads_as`]), after the vaulted session cookies.
/// Before login, `only` names the browser cookies the portal may see (a CSRF cookie): a
/// portal's "remember me" cookie must not sign anyone in there.
pub fn upstream_cookie_header<'a>(
    browser: impl Iterator<Item = &'a str>,
    gateway_cookies: &[String],
    session_cookies: &[String],
    vault: &[VaultedCookie],
    only: Option<&[String]>,
) -> Option<String> {
    let mut out = String::new();
    let mut push = |k: &str, v: &str| {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    };
    // The vault's first: a portal that keeps the first of a name (PHP), or reads only so many
    // (`max_input_vars`), finds its session however many cookies the browser sends.
    for c in vault {
        push(&c.name, &c.value);
    }
    for header in browser {
        for (k, v) in parse_cookie_header(header) {
            let named = only.is_none_or(|names| names.iter().any(|n| n == k));
            let hidden = |names: &[String]| reads_as(k, names) || carries(v, names);
            if named && !hidden(gateway_cookies) && !hidden(session_cookies) {
                push(k, v);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether the portal may read a browser cookie named `name` as one of `names`. PHP registers
/// `a.b`, `a b` and `a[b` as `a_b`, and `a[x]` as the array `a`, and keeps the first of two:
/// an exact comparison let `portal.sid=<stolen id>` go first and become `$_COOKIE['portal_sid']`.
/// Case and percent-encoding are ignored too (some runtimes do): no legitimate cookie differs
/// from one of these names only by case or by those bytes.
fn reads_as(name: &str, names: &[String]) -> bool {
    let fold = |n: &str| crate::policy::matcher::php_name(n).0.to_ascii_lowercase();
    // PHP before 8.0.24 also percent-decoded cookie names (`portal%5Fsid`).
    let decoded =
        String::from_utf8_lossy(&crate::http::url_decode(name.as_bytes(), false)).into_owned();
    let spellings = [fold(name), fold(&decoded)];
    names.iter().any(|n| {
        n.eq_ignore_ascii_case(name) || spellings.iter().any(|s| !s.is_empty() && *s == fold(n))
    })
}

/// Whether a value smuggles one of `names` to a reader that also splits cookies on commas
/// (RFC 2965's): `lang=fr, portal_sid=<stolen id>`.
fn carries(value: &str, names: &[String]) -> bool {
    value.split(',').skip(1).any(|piece| {
        piece
            .split_once('=')
            .is_some_and(|(k, _)| reads_as(k.trim(), names))
    })
}

/// What a portal `Set-Cookie` means for the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetCookie {
    /// A session cookie set or replaced.
    Store(VaultedCookie),
    /// A session cookie deleted (empty value, `Max-Age=0` or an expiry in the past).
    Delete(String),
}

/// If `header` sets one of `session_cookies`, what it does to the vault.
pub fn classify_set_cookie(header: &str, session_cookies: &[String]) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.trim().split_once('=')?;
    let name = name.trim();
    if !session_cookies.iter().any(|s| s == name) {
        return None;
    }
    let value = value.trim();
    let deleted = value.is_empty()
        || value.eq_ignore_ascii_case("deleted")
        || parts.any(|attr| {
            let attr = attr.trim();
            let lower = attr.to_ascii_lowercase();
            lower == "max-age=0"
                || lower.starts_with("max-age=-")
                || (lower.starts_with("expires=") && lower.contains("1970"))
        });
    Some(if deleted {
        SetCookie::Delete(name.to_string())
    } else {
        SetCookie::Store(VaultedCookie {
            name: name.to_string(),
            value: value.to_string(),
        })
    })
}

/// Apply a vault change.
pub fn apply(vault: &mut Vec<VaultedCookie>, change: SetCookie) {
    match change {
        SetCookie::Store(c) => {
            vault.retain(|v| v.name != c.name);
            vault.push(c);
        }
        SetCookie::Delete(name) => vault.retain(|v| v.name != name),
    }
}

#[cfg(test)]
mod tests;
