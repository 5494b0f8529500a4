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
/// portal's session cookies (a browser-supplied copy of those is never trusted), then the
/// vaulted session cookies appended. Before login, `only` names the browser cookies the portal
/// may see (a CSRF cookie): a portal's "remember me" cookie must not sign anyone in there.
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
    for header in browser {
        for (k, v) in parse_cookie_header(header) {
            let named = only.is_none_or(|names| names.iter().any(|n| n == k));
            if named
                && !gateway_cookies.iter().any(|g| g == k)
                && !session_cookies.iter().any(|s| s == k)
            {
                push(k, v);
            }
        }
    }
    for c in vault {
        push(&c.name, &c.value);
    }
    (!out.is_empty()).then_some(out)
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
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["PHPSESSID".into(), "mediboard".into()]
    }

    #[test]
    fn browser_copies_of_session_and_gateway_cookies_never_go_upstream() {
        let vault = vec![VaultedCookie {
            name: "PHPSESSID".into(),
            value: "real".into(),
        }];
        let h = upstream_cookie_header(
            ["lang=fr; PHPSESSID=forged; vigie=tok", "csrf=abc; junk"].into_iter(),
            &["vigie".to_string(), "__Host-vigie".to_string()],
            &names(),
            &vault,
            None,
        );
        assert_eq!(h.as_deref(), Some("lang=fr; csrf=abc; PHPSESSID=real"));
        // Before login only the named ones: a "remember me" cookie signs no one in.
        let pre = upstream_cookie_header(
            ["lang=fr; remember=tok; csrf=abc; PHPSESSID=forged"].into_iter(),
            &["vigie".to_string()],
            &names(),
            &vault,
            Some(&["csrf".to_string()]),
        );
        assert_eq!(pre.as_deref(), Some("csrf=abc; PHPSESSID=real"));
        assert_eq!(
            upstream_cookie_header(
                ["vigie=t; __Host-vigie=u"].into_iter(),
                &["vigie".to_string(), "__Host-vigie".to_string()],
                &names(),
                &[],
                None
            ),
            None
        );
    }

    #[test]
    fn set_cookie_classification() {
        let n = names();
        assert_eq!(
            classify_set_cookie("PHPSESSID=abc; path=/; HttpOnly", &n),
            Some(SetCookie::Store(VaultedCookie {
                name: "PHPSESSID".into(),
                value: "abc".into()
            }))
        );
        assert_eq!(
            classify_set_cookie(
                "PHPSESSID=deleted; expires=Thu, 01-Jan-1970 00:00:01 GMT",
                &n
            ),
            Some(SetCookie::Delete("PHPSESSID".into()))
        );
        assert_eq!(
            classify_set_cookie("mediboard=; Max-Age=0", &n),
            Some(SetCookie::Delete("mediboard".into()))
        );
        assert_eq!(classify_set_cookie("csrf=1; path=/", &n), None);
        assert_eq!(classify_set_cookie("garbage", &n), None);
        let mut vault = vec![];
        apply(&mut vault, classify_set_cookie("PHPSESSID=a", &n).unwrap());
        apply(&mut vault, classify_set_cookie("PHPSESSID=b", &n).unwrap());
        assert_eq!(
            vault,
            vec![VaultedCookie {
                name: "PHPSESSID".into(),
                value: "b".into()
            }]
        );
        apply(&mut vault, SetCookie::Delete("PHPSESSID".into()));
        assert!(vault.is_empty());
    }
}
