//! How a portal logs its users out (`[logout]` in a profile), and whether it did.
//!
//! The gateway ends the portal's own session whenever one of its sessions ends (sign-out,
//! revoke, lock, timeout, eviction, a login refused after the portal accepted it): the vaulted
//! cookies would otherwise stay valid at the portal with nobody able to end them. Portals log
//! out in their own way (Mediboard by `GET ?logout=-1`, Django by a `POST` carrying a CSRF
//! token), so the profile says how, and what a logout that worked looks like. Pure: the call
//! itself is [`crate::pipeline::portal_logout`].

use serde::Deserialize;

/// `[logout]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub path: String,
    pub query: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    pub token: Option<TokenSection>,
    #[serde(default)]
    pub success: SuccessSection,
}

fn get() -> String {
    "GET".into()
}

/// `[logout.token]`: the CSRF token a `POST` logout must carry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    pub field: String,
    pub page: Option<String>,
    pub pattern: Option<String>,
    pub cookie: Option<String>,
    pub header: Option<String>,
}

/// `[logout.success]`: what the portal answers a logout that worked.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SuccessSection {
    #[serde(default)]
    pub status: Vec<i64>,
    pub location: Option<String>,
    pub confirm: Option<bool>,
}

/// The portal's logout, validated.
#[derive(Debug, Clone)]
pub struct LogoutRule {
    pub path: String,
    /// `name=value` that marks a logout request, when the path alone does not.
    pub query: Option<(String, String)>,
    /// `GET` or `POST`: how the gateway calls it.
    pub method: Method,
    pub token: Option<Token>,
    /// Statuses of a logout that worked (empty: any 2xx or 3xx).
    pub success_status: Vec<u16>,
    pub success_location: Option<regex::Regex>,
    /// After the logout, the profile's confirmation page (`[login.confirm]`), read with the
    /// old cookies, must no longer name the user.
    pub confirm: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// Where a `POST` logout's CSRF token comes from, and where it goes.
#[derive(Debug, Clone)]
pub struct Token {
    /// The form field that carries it.
    pub field: String,
    /// A page read first with the session's cookies (what it sets is sent with the logout).
    pub page: Option<String>,
    /// The token is the page's first capture group...
    pub pattern: Option<regex::Regex>,
    /// ...or this cookie's value (vaulted, or set by the page).
    pub cookie: Option<String>,
    /// Also sent in this header (Django accepts `X-CSRFToken`).
    pub header: Option<String>,
}

impl LogoutRule {
    /// The request target the gateway calls.
    pub fn target(&self) -> String {
        match &self.query {
            // Written in the profile as the portal reads it (already encoded).
            Some((k, v)) => format!("{}?{k}={v}", self.path),
            None => self.path.clone(),
        }
    }

    /// Whether the portal's answer to the logout is the one the profile describes.
    pub fn answered_success(&self, status: u16, location: Option<&str>) -> bool {
        let status_ok = match self.success_status.is_empty() {
            true => (200..400).contains(&status),
            false => self.success_status.contains(&status),
        };
        status_ok
            && self
                .success_location
                .as_ref()
                .is_none_or(|re| location.is_some_and(|l| re.is_match(l)))
    }
}

/// The token a page shows (first capture group), or a cookie's value.
pub fn token_from(
    token: &Token,
    page: Option<&str>,
    cookies: &[(String, String)],
) -> Option<String> {
    if let (Some(re), Some(text)) = (&token.pattern, page) {
        if let Some(m) = re.captures(text).and_then(|c| c.get(1)) {
            return Some(m.as_str().to_string());
        }
    }
    let name = token.cookie.as_deref()?;
    cookies
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// Validate `[logout]`; errors go to `err(key, message, help)`.
pub fn build(s: Section, err: &mut dyn FnMut(&str, String, &str)) -> Option<LogoutRule> {
    let query = match s.query.as_deref().map(|q| q.split_once('=')) {
        None => None,
        Some(Some((k, v))) if !k.is_empty() => Some((k.to_string(), v.to_string())),
        Some(_) => {
            err(
                "logout.query",
                "expected `name=value`".into(),
                "e.g. query = \"logout=-1\"",
            );
            None
        }
    };
    let method = match s.method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        other => {
            err(
                "logout.method",
                format!("`{other}` is not a logout method"),
                "use \"GET\" (a logout link) or \"POST\" (a logout form, e.g. Django's)",
            );
            Method::Get
        }
    };
    let token = s.token.map(|t| token(t, method, err)).unwrap_or(None);
    let mut success_status = Vec::new();
    for (i, st) in s.success.status.iter().enumerate() {
        match u16::try_from(*st) {
            Ok(v) if (200..400).contains(&v) => success_status.push(v),
            _ => err(
                &format!("logout.success.status[{i}]"),
                format!("{st} is not a success status"),
                "use 2xx or 3xx statuses, e.g. [302]",
            ),
        }
    }
    let success_location = s
        .success
        .location
        .as_deref()
        .and_then(|l| match regex::Regex::new(l) {
            Ok(re) => Some(re),
            Err(e) => {
                err(
                    "logout.success.location",
                    format!("not a regular expression: {e}"),
                    "e.g. location = '^/admin/login/'",
                );
                None
            }
        });
    Some(LogoutRule {
        path: s.path,
        query,
        method,
        token,
        success_status,
        success_location,
        confirm: s.success.confirm.unwrap_or(true),
    })
}

fn token(
    t: TokenSection,
    method: Method,
    err: &mut dyn FnMut(&str, String, &str),
) -> Option<Token> {
    if method != Method::Post {
        err(
            "logout.token",
            "a token is only sent with a POST logout".into(),
            "set method = \"POST\", or remove [logout.token]",
        );
    }
    if t.field.is_empty() {
        err(
            "logout.token.field",
            "the field name is empty".into(),
            "name the form field the portal's logout form sends its token in",
        );
    }
    if t.pattern.is_none() && t.cookie.is_none() {
        err(
            "logout.token",
            "no source for the token".into(),
            "set `cookie` (the CSRF cookie's name) or `page` and `pattern` (a page showing the token)",
        );
    }
    if t.pattern.is_some() != t.page.is_some() {
        err(
            "logout.token.pattern",
            "`page` and `pattern` go together".into(),
            "name the page showing the token and the pattern whose first group is the token",
        );
    }
    if let Some(page) = t.page.as_deref().filter(|p| !p.starts_with('/')) {
        err(
            "logout.token.page",
            format!("`{page}` is not a path"),
            "e.g. page = \"/admin/\"",
        );
    }
    let pattern = match t.pattern.as_deref().map(regex::Regex::new) {
        None => None,
        Some(Ok(re)) if re.captures_len() >= 2 => Some(re),
        Some(_) => {
            err(
                "logout.token.pattern",
                "not a regular expression with a capture group".into(),
                "e.g. pattern = 'name=\"csrfmiddlewaretoken\" value=\"([^\"]+)\"'",
            );
            None
        }
    };
    Some(Token {
        field: t.field,
        page: t.page,
        pattern,
        cookie: t.cookie,
        header: t.header,
    })
}

/// Is this request the portal's own logout (whatever its method: a logout the portal refused
/// still ends the gateway's session, and the gateway then ends the portal's its own way)?
pub fn is_logout(rule: Option<&LogoutRule>, script_path: &str, query: Option<&str>) -> bool {
    let Some(rule) = rule else {
        return false;
    };
    if script_path != rule.path {
        return false;
    }
    match &rule.query {
        None => true,
        Some((name, value)) => form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .any(|(k, v)| k == name.as_str() && v == value.as_str()),
    }
}

#[cfg(test)]
mod tests;
