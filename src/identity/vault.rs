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
/// spelling the portal reads as theirs: [`readings`]), after the vaulted session cookies.
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
    // The names no browser copy may reach the portal as, folded once for every cookie.
    let hidden: Vec<String> = gateway_cookies
        .iter()
        .chain(session_cookies)
        .map(|n| fold(n))
        .collect();
    let reads_hidden = |name: &str| readings(name).any(|r| hidden.contains(&r));
    for header in browser {
        for (k, v) in parse_cookie_header(header) {
            let named = only.is_none_or(|names| names.iter().any(|n| n == k));
            // A reader that also splits on commas (RFC 2965's) finds `portal_sid` in
            // `lang=fr, portal_sid=…` and in a name like `x, portal_sid`.
            let carried = || {
                (k.contains(',') || v.contains(','))
                    && format!("{k}={v}")
                        .split(',')
                        .any(|piece| reads_hidden(piece.split('=').next().unwrap_or("").trim()))
            };
            if named && !reads_hidden(k) && !carried() {
                push(k, v);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A cookie name as the portal may read it: PHP registers `a.b`, `a b` and `a[b` as `a_b`,
/// and `a[x]` as the array `a`, and keeps the first of two (an exact comparison let
/// `portal.sid=<stolen id>` go first and become `$_COOKIE['portal_sid']`); case is ignored
/// (some runtimes do). No legitimate cookie differs from a session cookie only by those.
fn fold(name: &str) -> String {
    crate::policy::matcher::php_name(name)
        .0
        .to_ascii_lowercase()
}

/// Every name the portal may read a cookie named `name` as: [`fold`]ed, and URL-decoded first
/// too (PHP before 8.0.24 decoded cookie names as a query's, `+` a space: `portal%5Fsid`,
/// `portal+sid`, `+portal_sid`).
fn readings(name: &str) -> impl Iterator<Item = String> + '_ {
    let decoded = name.contains(['%', '+']).then(|| {
        fold(&String::from_utf8_lossy(&crate::http::url_decode(
            name.as_bytes(),
            true,
        )))
    });
    std::iter::once(fold(name))
        .chain(decoded)
        .filter(|r| !r.is_empty())
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
