//! Reading a portal's login exchange the way its profile describes it: which requests are
//! logins, who is logging in, whether the portal said yes, and which requests carry
//! credentials the portal must never receive outside its login form.

use crate::config::PortalProfile;

/// Largest form body the gateway parses; past it, it only scans for the password field.
pub const MAX_LOGIN_BODY: usize = 64 * 1024;

/// Could this request carry a login? Every request with a body does, wherever it goes (a PHP
/// portal runs `/index.php/x` and `/` as `/index.php`): its form decides (see [`classify`]).
pub fn is_login_candidate(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH")
}

/// What a form posted to the login path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Another form that happens to post there (no password field).
    NotLogin,
    /// A login by this (canonical) user name.
    Login(String),
    /// A password without a single clear user name, or without the marker: the gateway would
    /// not know who logs in, so the portal must never see it (refused with 400).
    Ambiguous,
}

/// A field name as the portal reads it (PHP-like portals fold names) and whether it is an
/// array.
fn field_name(profile: &PortalProfile, raw: &str) -> (String, bool) {
    match profile.query_reading {
        crate::policy::matcher::QueryReading::Last => crate::policy::matcher::php_name(raw),
        crate::policy::matcher::QueryReading::First => (raw.to_string(), false),
    }
}

/// Read fields (a urlencoded body, or a query). Every login the portal could accept must be
/// one the gateway understands: otherwise an authenticated portal session would land in a
/// pre-login gateway session, past the second factor. A user name given twice with
/// different values, or as an array, is ambiguous (PHP reads the last, others the first).
pub fn classify_fields<'a>(
    profile: &PortalProfile,
    fields: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Attempt {
    let login = &profile.login;
    let mut marker = login.marker_field.is_none();
    let mut password = false;
    let mut odd = false;
    let mut names: Vec<String> = Vec::new();
    for (k, v) in fields {
        let (name, array) = field_name(profile, &k);
        if Some(name.as_str()) == login.marker_field.as_deref() {
            marker = true;
        }
        if name == login.password_field {
            password = true;
            odd |= array;
        }
        if name == login.username_field {
            odd |= array;
            let clean: String = v.chars().filter(|c| !c.is_control()).take(256).collect();
            names.push(canonical(profile, &clean));
        }
    }
    if !password {
        return Attempt::NotLogin;
    }
    names.dedup();
    match names.as_slice() {
        [one] if marker && !odd && !one.is_empty() => Attempt::Login(one.clone()),
        _ => Attempt::Ambiguous,
    }
}

/// Read a request body. A urlencoded form is parsed; any other body (multipart, JSON) that
/// names the password field is ambiguous, since PHP fills `$_POST` from multipart too.
pub fn classify(profile: &PortalProfile, content_type: Option<&str>, body: &[u8]) -> Attempt {
    use crate::http::{is_media_type, FORM};
    if content_type.is_none_or(|t| is_media_type(t, FORM)) {
        return classify_fields(profile, form_urlencoded::parse(body));
    }
    if mentions_password(profile, body) {
        Attempt::Ambiguous
    } else {
        Attempt::NotLogin
    }
}

/// Whether raw bytes name the password field as a multipart part or a JSON key (case
/// ignored). Used on bodies that are not urlencoded, and past [`MAX_LOGIN_BODY`].
pub fn mentions_password(profile: &PortalProfile, bytes: &[u8]) -> bool {
    let field = profile.login.password_field.to_ascii_lowercase();
    let needles = [
        format!("name=\"{field}\""),
        format!("name={field}"),
        format!("\"{field}\""),
        format!("&{field}="),
    ];
    let lower = bytes.to_ascii_lowercase();
    if needles
        .iter()
        .any(|n| lower.windows(n.len()).any(|w| w == n.as_bytes()))
    {
        return true;
    }
    // A multipart part's name in any quoting or header spelling PHP accepts (`name='password'`,
    // `name=" password"`, a header folded onto a continuation line): any line of a part's
    // header block naming the field counts (threat model 36, 38; the red team's third round).
    // Part contents are not looked at; a content line starting with `--` only makes the scan
    // stricter until the next blank line.
    let mut in_headers = false;
    for line in lower.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"--") {
            in_headers = true;
        } else if line.is_empty() {
            in_headers = false;
        } else if in_headers && line.windows(field.len()).any(|w| w == field.as_bytes()) {
            return true;
        }
    }
    false
}

/// The user name as the gateway keys it: equal keys exactly when the portal takes the names
/// for one account (its database collation, threat model 39), so `ÉLISE ` cannot dodge elise's
/// factors, lock, budget or privileged pack. Without a collation: trimmed, and lower-cased for
/// portals that ignore case.
pub fn canonical(profile: &PortalProfile, name: &str) -> String {
    match profile.login.collation {
        Some(c) => c.canonical(name),
        None if profile.login.case_insensitive_users => name.trim().to_lowercase(),
        None => name.trim().to_string(),
    }
}

/// The portal accepted the login, as its profile describes success: the status, and where
/// it redirects when the profile says. Not a new cookie: a portal that keeps its session id at
/// login (PHP without `session_regenerate_id`) sets none (threat model 37).
pub fn login_succeeded(profile: &PortalProfile, status: u16, location: Option<&str>) -> bool {
    profile.login.success_status.contains(&status)
        && profile
            .login
            .success_location
            .as_ref()
            .is_none_or(|re| location.is_some_and(|l| re.is_match(l)))
}

/// Is this the portal's logout request?
pub fn is_logout(profile: &PortalProfile, path: &str, query: Option<&str>) -> bool {
    super::logout::is_logout(profile.logout.as_ref(), profile.script_path(path), query)
}

/// A credential the profile's block rules refuse wherever it appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    AuthorizationHeader,
    CredentialInCookie,
    CredentialInQuery,
}

/// Why a request is refused under the profile's block rules, if it is. Parameter names are
/// decoded and compared case-insensitively, as the portal (PHP) would read them.
pub fn blocked<'a>(
    profile: &PortalProfile,
    query: Option<&str>,
    has_authorization: bool,
    cookie_names: impl Iterator<Item = &'a str>,
) -> Option<Blocked> {
    if profile.block.authorization_header && has_authorization {
        return Some(Blocked::AuthorizationHeader);
    }
    // PHP reads `login[]`, ` login` and `login%00x` as `login`, and `a.b` as `a_b`.
    let listed = |k: &str| {
        let name = crate::policy::matcher::php_name(k).0.to_ascii_lowercase();
        profile.block.query_params.contains(&name)
    };
    if profile.block.cookies {
        // PHP decodes cookie names like query names before `$_REQUEST` (threat model 40).
        let mut names = cookie_names;
        if names.any(|n| {
            form_urlencoded::parse(n.as_bytes())
                .next()
                .is_some_and(|(k, _)| listed(&k))
        }) {
            return Some(Blocked::CredentialInCookie);
        }
    }
    let query = query?;
    let hit = form_urlencoded::parse(query.as_bytes()).any(|(k, _)| listed(&k));
    hit.then_some(Blocked::CredentialInQuery)
}

#[cfg(test)]
mod tests;
