//! The pre-login wall (threat model 36-37): until a session has the level its policy requires,
//! only the requests a portal profile names reach the portal — the login page, the login
//! POST, static assets, named public paths. Everything else gets the gateway's sign-in wall.
//! A positive list, because recognising every way a portal accepts a login failed: a login
//! the gateway did not recognise reached the portal and its session landed in the vault.
//!
//! Pure: the profile's `[prelogin]` section, the allowlist match, and the one strict reading
//! of a login POST the gateway accepts before the second factor.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::matcher::{php_name, PathPattern, QueryCondition, QueryReading};

/// `[prelogin]` as written in a profile.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Where the wall sends a browser: a GET of the portal's login page.
    pub login_page: Option<String>,
    #[serde(default)]
    pub allow: Vec<AllowSection>,
    /// Query parameters the login POST itself may carry (e.g. Django's `next`).
    #[serde(default)]
    pub login_params: Vec<String>,
    /// Browser cookies the portal receives before login (a CSRF cookie); others are dropped.
    #[serde(default)]
    pub cookies: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AllowSection {
    /// Default: GET (which covers HEAD).
    #[serde(default)]
    pub methods: Vec<String>,
    /// A glob on the normalised path (`*` one segment, `**` any).
    pub path: String,
    /// The query parameters allowed, each read the portal's way: `"*"` any value, else a
    /// value with `*` wildcards. A parameter not named here refuses the request.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Any query at all (static files served by the web server, never by a script).
    #[serde(default)]
    pub any_params: bool,
}

/// A validated `[prelogin]`.
#[derive(Debug, Clone)]
pub struct PreLogin {
    pub login_page: String,
    pub allow: Vec<Allow>,
    pub login_params: Vec<String>,
    pub cookies: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Allow {
    pub methods: Vec<String>,
    pub path: PathPattern,
    pub params: Vec<QueryCondition>,
    pub any_params: bool,
}

/// Build from the section; `err(key, message, help)` collects mistakes.
pub fn build(
    section: Option<&Section>,
    login_path: &str,
    err: &mut dyn FnMut(&str, String, &str),
) -> Option<PreLogin> {
    let Some(s) = section else {
        err(
            "prelogin",
            "the profile has no pre-login allowlist".into(),
            "add a [prelogin] section with login_page and [[prelogin.allow]] entries naming the login page and static files: nothing else of the portal is reached before the second factor",
        );
        return None;
    };
    let mut allow = Vec::new();
    for (i, a) in s.allow.iter().enumerate() {
        let key = format!("prelogin.allow[{i}]");
        let path = match PathPattern::glob(&a.path, false) {
            Ok(p) if a.path.starts_with('/') && a.path != "/**" => p,
            _ => {
                err(
                    &format!("{key}.path"),
                    format!("`{}` is not a path glob the wall can allow", a.path),
                    "name the page or folder, e.g. \"/index.php\" or \"/static/**\" (never the whole site)",
                );
                continue;
            }
        };
        let mut methods: Vec<String> = a.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        if methods.is_empty() {
            methods.push("GET".into());
        }
        if let Some(m) = methods
            .iter()
            .find(|m| !["GET", "HEAD", "POST", "OPTIONS"].contains(&m.as_str()))
        {
            err(
                &format!("{key}.methods"),
                format!("`{m}` is not a method a visitor needs before signing in"),
                "use GET (it covers HEAD), POST or OPTIONS",
            );
        }
        if a.any_params && !a.params.is_empty() {
            err(
                &format!("{key}.any_params"),
                "both `params` and `any_params`".into(),
                "name the parameters, or allow any query (static files only), not both",
            );
        }
        allow.push(Allow {
            methods,
            path,
            params: a
                .params
                .iter()
                .map(|(k, v)| QueryCondition::new(k, v))
                .collect(),
            any_params: a.any_params,
        });
    }
    let login_page = s.login_page.clone().unwrap_or_else(|| login_path.into());
    let pre = PreLogin {
        login_page,
        allow,
        login_params: s.login_params.clone(),
        cookies: s.cookies.clone(),
    };
    let (page, query) = match pre.login_page.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pre.login_page.as_str(), None),
    };
    if !page.starts_with('/') || !pre.allows(QueryReading::Last, "GET", page, query) {
        err(
            "prelogin.login_page",
            format!("`{}` is not allowed by [[prelogin.allow]]", pre.login_page),
            "the wall sends browsers there: allow a GET of it, e.g. [[prelogin.allow]] path = \"/index.php\"",
        );
    }
    Some(pre)
}

impl PreLogin {
    /// Whether a request may reach the portal before the second factor. `path` is the
    /// normalised path; the query is read the portal's way: every parameter must be named,
    /// none may be an array, and each named one must match as the portal reads repeats.
    pub fn allows(
        &self,
        reading: QueryReading,
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> bool {
        self.allow.iter().any(|a| {
            let method_ok = a
                .methods
                .iter()
                .any(|m| m == method || (m == "GET" && method == "HEAD"));
            method_ok
                && a.path.matches(path)
                && (a.any_params || params_within(reading, query, &a.params))
        })
    }

    /// Whether the login POST's own query carries only the parameters the profile names.
    pub fn login_query_ok(&self, reading: QueryReading, query: Option<&str>) -> bool {
        let named: Vec<QueryCondition> = self
            .login_params
            .iter()
            .map(|n| QueryCondition::new(n, "*"))
            .collect();
        params_within(reading, query, &named)
    }

    /// Whether a browser cookie may reach the portal before login.
    pub fn cookie_allowed(&self, name: &str) -> bool {
        self.cookies.iter().any(|c| c == name)
    }
}

/// The name as the portal registers it, and whether it is an array.
pub fn portal_name(reading: QueryReading, raw: &str) -> (String, bool) {
    match reading {
        QueryReading::Last => php_name(raw),
        QueryReading::First => (raw.to_string(), false),
    }
}

fn params_within(reading: QueryReading, query: Option<&str>, allowed: &[QueryCondition]) -> bool {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return true;
    };
    let mut seen: Vec<String> = Vec::new();
    for (k, _) in form_urlencoded::parse(q.as_bytes()) {
        let (name, array) = portal_name(reading, &k);
        if array || !allowed.iter().any(|c| c.name == name) {
            return false;
        }
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    allowed
        .iter()
        .filter(|c| seen.contains(&c.name))
        .all(|c| c.matches(crate::policy::matcher::param(query, &c.name, reading).as_deref()))
}

/// Why a login POST made before the second factor is refused (400 unless said otherwise):
/// the gateway must know exactly what the portal will read, or the portal must not see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not `application/x-www-form-urlencoded` as both PHP and WSGI read it.
    ContentType,
    /// A `Content-Encoding` the portal's web server might undo.
    Encoded,
    /// Over the login body limit (413).
    TooLarge,
    /// Bytes that are not UTF-8 once decoded (PHP keeps them raw; the gateway would not).
    NotUtf8,
    /// More fields than PHP's `max_input_vars` (it drops the rest silently).
    TooManyFields,
    /// A field the profile does not name in a login form.
    UnknownField,
    /// A query parameter the login POST may not carry.
    Query,
    /// No single clear user name, no password, or no marker.
    NoUser,
}

impl Unreadable {
    pub fn reason(self) -> &'static str {
        match self {
            Unreadable::ContentType => "login_content_type",
            Unreadable::Encoded => "login_encoded",
            Unreadable::TooLarge => "login_too_large",
            Unreadable::NotUtf8 => "login_not_utf8",
            Unreadable::TooManyFields => "login_too_many_fields",
            Unreadable::UnknownField => "login_field_unknown",
            Unreadable::Query => "login_query",
            Unreadable::NoUser => "login_form_ambiguous",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Unreadable::TooLarge => 413,
            _ => 400,
        }
    }
}

/// PHP's `max_input_vars` default; Django's `DATA_UPLOAD_MAX_NUMBER_FIELDS` is the same.
pub const MAX_FIELDS: usize = 1000;

/// The head of a login POST: only a plain urlencoded form, unencoded, is read. PHP lower-cases
/// the media type and cuts it at `;`, `,` or a space; WSGI frameworks cut at `;` and trim.
/// Accepting only the shape on which both agree means the gateway reads what the portal reads.
pub fn login_head_ok(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<(), Unreadable> {
    if content_encoding.is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
        return Err(Unreadable::Encoded);
    }
    let ct = content_type
        .ok_or(Unreadable::ContentType)?
        .to_ascii_lowercase();
    let media = ct.split(';').next().unwrap_or("");
    if media != "application/x-www-form-urlencoded" || ct.contains(',') {
        return Err(Unreadable::ContentType);
    }
    Ok(())
}

/// Percent-decode one urlencoded component as PHP does (the one reader's decoding, `+` a
/// space, a `%` not followed by two hex digits kept), refusing what is not UTF-8 afterwards.
fn decode(raw: &[u8]) -> Result<String, Unreadable> {
    String::from_utf8(crate::http::url_decode(raw, true)).map_err(|_| Unreadable::NotUtf8)
}

/// Read a login form body the one way the gateway accepts before the second factor: every
/// field named by the profile, one user name (repeats only if equal), a password, the
/// marker if the profile has one. Returns the user name as typed (trimmed of controls).
pub fn read_login(
    profile: &crate::config::PortalProfile,
    body: &[u8],
) -> Result<String, Unreadable> {
    let login = &profile.login;
    let reading = profile.query_reading;
    let mut marker = login.marker_field.is_none();
    let mut password = false;
    let mut user: Option<String> = None;
    let mut fields = 0;
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(Unreadable::TooManyFields);
        }
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let (name, array) = portal_name(reading, &decode(k)?);
        let value = decode(v)?;
        if array {
            return Err(Unreadable::NoUser);
        }
        if name.is_empty() {
            // PHP skips a field without a name; so does the gateway.
            continue;
        }
        if name == login.password_field {
            password = true;
        } else if name == login.username_field {
            if value.chars().any(char::is_control) || value.chars().count() > 256 {
                return Err(Unreadable::NoUser);
            }
            match &user {
                Some(u) if *u != value => return Err(Unreadable::NoUser),
                _ => user = Some(value),
            }
        } else if Some(&name) == login.marker_field.as_ref() {
            marker = true;
        } else if !login.fields.contains(&name) {
            return Err(Unreadable::UnknownField);
        }
    }
    match user {
        Some(u) if password && marker && !u.trim().is_empty() => Ok(u),
        _ => Err(Unreadable::NoUser),
    }
}

#[cfg(test)]
mod tests;
