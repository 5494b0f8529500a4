//! Reading a portal's login exchange the way its profile describes it: which requests are
//! logins, who is logging in, whether the portal said yes, and which requests carry
//! credentials the portal must never receive outside its login form.

use crate::config::PortalProfile;

use super::vault::SetCookie;

/// Largest login form body the gateway reads.
pub const MAX_LOGIN_BODY: usize = 64 * 1024;

/// Is this request possibly the portal's login? The form body decides (see [`login_username`]).
pub fn is_login_candidate(profile: &PortalProfile, method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case(&profile.login.method) && path == profile.login.path
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

/// Read a form posted to the login path. Every login the portal could accept must be one the
/// gateway understands: otherwise an authenticated portal session would land in a pre-login
/// gateway session, past the second factor. Names repeated with different values are
/// ambiguous (PHP reads the last, other portals the first).
pub fn classify(profile: &PortalProfile, form: &[u8]) -> Attempt {
    let login = &profile.login;
    let mut marker = login.marker_field.is_none();
    let mut password = false;
    let mut names: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(form) {
        if Some(k.as_ref()) == login.marker_field.as_deref() {
            marker = true;
        }
        if k == login.password_field {
            password = true;
        }
        if k == login.username_field {
            let clean: String = v.chars().filter(|c| !c.is_control()).take(256).collect();
            names.push(canonical(profile, clean.trim()));
        }
    }
    if !password {
        return Attempt::NotLogin;
    }
    names.dedup();
    match names.as_slice() {
        [one] if marker && !one.is_empty() => Attempt::Login(one.clone()),
        _ => Attempt::Ambiguous,
    }
}

/// The user name as the gateway keys it: lower-cased for portals that ignore case, so
/// `ALICE` cannot dodge alice's factors, lock or budget.
pub fn canonical(profile: &PortalProfile, name: &str) -> String {
    if profile.login.case_insensitive_users {
        name.to_lowercase()
    } else {
        name.to_string()
    }
}

/// The user name of a login form, if the body is an understood login.
pub fn login_username(profile: &PortalProfile, form: &[u8]) -> Option<String> {
    match classify(profile, form) {
        Attempt::Login(user) => Some(user),
        _ => None,
    }
}

/// The portal accepted the login: a success status and a session cookie set.
pub fn login_succeeded(profile: &PortalProfile, status: u16, changes: &[SetCookie]) -> bool {
    profile.login.success_status.contains(&status)
        && changes.iter().any(|c| matches!(c, SetCookie::Store(_)))
}

/// Is this the portal's logout request?
pub fn is_logout(profile: &PortalProfile, path: &str, query: Option<&str>) -> bool {
    let Some(rule) = &profile.logout else {
        return false;
    };
    if path != rule.path {
        return false;
    }
    match &rule.query {
        None => true,
        Some((name, value)) => form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .any(|(k, v)| k == name.as_str() && v == value.as_str()),
    }
}

/// Why a request is refused under the profile's block rules, if it is. Parameter names are
/// decoded and compared case-insensitively, as the portal (PHP) would read them.
pub fn blocked(
    profile: &PortalProfile,
    query: Option<&str>,
    has_authorization: bool,
) -> Option<&'static str> {
    if profile.block.authorization_header && has_authorization {
        return Some("authorization_header");
    }
    let query = query?;
    let hit = form_urlencoded::parse(query.as_bytes()).any(|(k, _)| {
        // PHP reads `login[]` and `login` alike, and turns `.` and ` ` into `_`.
        let name = k
            .split('[')
            .next()
            .unwrap_or("")
            .replace(['.', ' '], "_")
            .to_ascii_lowercase();
        profile.block.query_params.contains(&name)
    });
    hit.then_some("credential_in_query")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::vault::VaultedCookie;
    use std::path::Path;

    fn profile(name: &str) -> PortalProfile {
        crate::config::profile::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/profiles")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn login_forms_are_recognised_by_their_marker() {
        let p = profile("sample-portal.toml");
        assert!(is_login_candidate(&p, "POST", "/index.php"));
        assert!(!is_login_candidate(&p, "GET", "/index.php"));
        assert_eq!(
            login_username(&p, b"login=1&username=dr.martin&password=x").as_deref(),
            Some("dr.martin")
        );
        assert_eq!(
            login_username(&p, b"username=dr.martin&password=x"),
            None,
            "no marker: another form"
        );
        assert_eq!(login_username(&p, b"login=1&username=&password=x"), None);
        assert_eq!(
            login_username(&p, b"login=1&username=evil%0d%0aFAKE%20LOG&password=x").as_deref(),
            Some("evilFAKE LOG")
        );
    }

    #[test]
    fn success_needs_status_and_session_cookie() {
        let p = profile("sample-portal.toml");
        let set = vec![SetCookie::Store(VaultedCookie {
            name: "mediboard_session".into(),
            value: "x".into(),
        })];
        assert!(login_succeeded(&p, 302, &set));
        assert!(!login_succeeded(&p, 200, &set), "the login page again");
        assert!(!login_succeeded(&p, 302, &[]), "redirect without session");
    }

    #[test]
    fn mediboard_alternate_logins_are_blocked_in_every_spelling() {
        let p = profile("mediboard.toml");
        for q in [
            "login=admin:pw",
            "LOGIN=admin:pw",
            "m=x&token=abc",
            "%6Cogin=admin:pw",
            "login[]=admin",
            "ldap.guid=1",
            "ldap_guid=1",
            "a=1&Token=z",
        ] {
            assert_eq!(
                blocked(&p, Some(q), false),
                Some("credential_in_query"),
                "{q}"
            );
        }
        assert_eq!(
            blocked(&p, Some("m=dPpatients&tab=vw_idx_patients"), false),
            None
        );
        assert_eq!(blocked(&p, None, true), Some("authorization_header"));
        assert!(is_logout(&p, "/index.php", Some("logout=-1")));
        assert!(!is_logout(&p, "/index.php", Some("m=dPpatients")));
    }
}
