//! Portal-login interception, the I/O side of [`crate::identity::login`]: refuse the portal's
//! alternate credential entry points, watch its login form, keep its session cookies in the
//! vault, and end both sessions on logout.

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use super::identify::Identity;
use super::normalise::Request;
use super::respond::Rejection;
use super::route::Portal;
use super::RequestCtx;
use crate::config::PortalProfile;
use crate::identity::login::{self, MAX_LOGIN_BODY};
use crate::identity::session::{AuthLevel, SessionRecord};
use crate::identity::vault::{self, SetCookie};
use crate::identity::Sessions;
use crate::metrics::METRICS;

/// What the request side found.
#[derive(Debug, Default)]
pub struct Interception {
    /// The body is buffered to read the username: this may be the portal's login.
    pub login_body: Option<Vec<u8>>,
    /// Its content type, which says how to read it.
    pub content_type: Option<String>,
    /// The body outgrew [`MAX_LOGIN_BODY`]: the rest is only scanned for the password field.
    pub overflow: bool,
    /// Who logs in, once the whole body (or the query) was read and understood as a login.
    pub login_user: Option<String>,
    /// The login was in the body: its budget is checked when the body ends.
    pub body_login: bool,
    /// The portal's logout: the gateway session ends once the portal has answered.
    pub logout: bool,
}

/// A buffered body the portal reads parameters from.
pub enum BodyParams<'a> {
    /// A complete urlencoded form, as text.
    Form(&'a str),
    /// A complete JSON document.
    Json(&'a [u8]),
}

impl Interception {
    /// The whole body, when it was buffered (not overflowed, not empty) and is a form or JSON:
    /// what stage 4 and the detector read besides the query.
    pub fn body_params(&self) -> Option<BodyParams<'_>> {
        use super::normalise::headers::{is_media_type, FORM};
        let body = self
            .login_body
            .as_deref()
            .filter(|b| !self.overflow && !b.is_empty())?;
        let media = self.content_type.as_deref()?;
        if is_media_type(media, FORM) {
            std::str::from_utf8(body).ok().map(BodyParams::Form)
        } else if is_media_type(media, "application/json") {
            Some(BodyParams::Json(body))
        } else {
            None
        }
    }
}

/// The query with a form body after it: a PHP portal reads both (`$_REQUEST`), the body last,
/// so with the profile's "last of repeats" reading the body wins.
pub fn with_form(query: Option<&str>, form: &str) -> String {
    match query {
        Some(q) => format!("{q}&{form}"),
        None => form.to_string(),
    }
}

/// Request side: block rules, then login and logout detection.
pub fn on_request(
    profile: &PortalProfile,
    request: &Request,
    req: &RequestHeader,
) -> Result<Interception, Rejection> {
    let has_auth = req.headers.contains_key("authorization");
    if let Some(reason) = login::blocked(profile, request.target.query.as_deref(), has_auth) {
        return Err(Rejection::new(403, reason));
    }
    // A login carried in the query (a GET login, or a form the portal also reads from there).
    let login_user = match request
        .target
        .query
        .as_deref()
        .map(|q| login::classify_fields(profile, form_urlencoded::parse(q.as_bytes())))
    {
        Some(login::Attempt::Login(user)) => Some(user),
        Some(login::Attempt::Ambiguous) => {
            return Err(Rejection::new(400, "login_query_ambiguous"));
        }
        _ => None,
    };
    let content_type = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Interception {
        login_body: login::is_login_candidate(req.method.as_str()).then(Vec::new),
        content_type,
        overflow: false,
        login_user,
        body_login: false,
        logout: login::is_logout(
            profile,
            &request.target.path,
            request.target.query.as_deref(),
        ),
    })
}

/// Body side: keep a copy of a login form, bounded; at its end, decide what it is. A login
/// the gateway cannot read is refused before its last byte reaches the portal.
pub fn on_body(
    ctx: &mut RequestCtx,
    chunk: &Option<Bytes>,
    end_of_stream: bool,
    profile: Option<&PortalProfile>,
) -> pingora::Result<()> {
    let Some(profile) = profile else {
        return Ok(());
    };
    let i = &mut ctx.interception;
    let Some(buf) = i.login_body.as_mut() else {
        return Ok(());
    };
    if let Some(chunk) = chunk {
        if !i.overflow && buf.len() + chunk.len() <= MAX_LOGIN_BODY {
            buf.extend_from_slice(chunk);
        } else {
            // A large body (an upload) is not parsed, but a password field hidden past the
            // first 64 KiB must still not reach the portal: scan, keeping a short overlap.
            i.overflow = true;
            let keep = buf.len().saturating_sub(64);
            buf.drain(..keep);
            buf.extend_from_slice(chunk);
            if login::mentions_password(profile, buf) {
                ctx.rejected = Some("login_form_ambiguous");
                return pingora::Error::e_explain(
                    pingora::ErrorType::HTTPStatus(400),
                    "a large body carrying the password field",
                );
            }
        }
    }
    if !end_of_stream {
        return Ok(());
    }
    let attempt = if i.overflow {
        login::Attempt::NotLogin
    } else {
        login::classify(profile, i.content_type.as_deref(), buf)
    };
    match Some(attempt) {
        Some(login::Attempt::Login(user)) => {
            ctx.interception.login_user = Some(user);
            ctx.interception.body_login = true;
        }
        Some(login::Attempt::Ambiguous) => {
            ctx.rejected = Some("login_form_ambiguous");
            return pingora::Error::e_explain(
                pingora::ErrorType::HTTPStatus(400),
                "a password without one clear user name (or without the login marker)",
            );
        }
        Some(login::Attempt::NotLogin) | None => {}
    }
    Ok(())
}

/// The `Cookie` header the portal receives: never the gateway's cookie, never a browser copy of
/// the portal's session cookies; the vaulted ones when there is a session.
pub fn upstream_cookies(
    up: &mut RequestHeader,
    sessions: &Sessions,
    profile: Option<&PortalProfile>,
    identity: &Identity,
) {
    let session_cookies = profile.map_or(&[][..], |p| &p.login.session_cookies[..]);
    let vault = identity.session().map_or(&[][..], |s| &s.vault[..]);
    let header = {
        let browser = up
            .headers
            .get_all("cookie")
            .into_iter()
            .filter_map(|v| v.to_str().ok());
        vault::upstream_cookie_header(browser, sessions.cookie_names(), session_cookies, vault)
    };
    up.remove_header("cookie");
    if let Some(header) = header {
        let _ = up.insert_header("cookie", header);
    }
}

/// Response side: take the portal's session cookies out of the response into the vault;
/// create, upgrade or end the gateway session. Returns `Set-Cookie` values to add.
#[allow(clippy::too_many_arguments)]
pub async fn on_response(
    config: &crate::config::Config,
    sessions: &Sessions,
    portal: &Portal,
    profile: &PortalProfile,
    request: &Request,
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
    user_agent: &str,
) -> Result<Vec<String>, Rejection> {
    let changes = take_session_cookies(resp, &profile.login.session_cookies);
    let status = resp.status.as_u16();
    let current = ctx.identity.session().cloned();
    let store_err = |e| {
        tracing::error!(error = %e, "session store unavailable during login");
        Rejection::new(503, "session_store_unavailable")
    };
    let mut add = Vec::new();

    let username = ctx.interception.login_user.clone();
    if let Some(user) = username {
        if login::login_succeeded(profile, status, &changes) {
            if let Some(reason) = sessions.locks.locked(&user).await.map_err(store_err)? {
                tracing::warn!(target: "vigie::audit", event = "login", outcome = "locked", user = %user, reason = %reason, portal = %portal.config.name, client = %request.client.ip);
                return Err(Rejection::new(423, "account_locked"));
            }
            // New id at every change of level; the pre-login vault carries over.
            let mut vault_now = current
                .as_ref()
                .map(|s| s.vault.clone())
                .unwrap_or_default();
            for c in changes {
                vault::apply(&mut vault_now, c);
            }
            let groups = login_groups(config, portal, profile, &user, &vault_now).await?;
            let mut record = sessions.new_record(
                &portal.config.name,
                Some(user.clone()),
                AuthLevel::Password,
                request.client.ip,
                user_agent,
                vault_now,
            );
            record.groups = groups;
            let pack = config.policy.pack_for(&record.groups);
            sessions.admit(&mut record, pack);
            if !sessions
                .enforce_cap(&record, pack)
                .await
                .map_err(store_err)?
            {
                tracing::warn!(target: "vigie::audit", event = "login", outcome = "session_cap", user = %user, portal = %portal.config.name, client = %request.client.ip);
                return Err(Rejection::new(409, "session_cap"));
            }
            let id = record.id;
            let cookie = sessions
                .begin(record.clone(), current.as_ref().map(|c| &c.id), request.tls)
                .await
                .map_err(store_err)?;
            METRICS
                .portal_logins
                .with_label_values(&[&portal.config.name, "success"])
                .inc();
            tracing::info!(target: "vigie::audit", event = "login", outcome = "success", user = %user, portal = %portal.config.name, client = %request.client.ip, session = %id.fingerprint(), level = AuthLevel::Password.label());
            ctx.identity = Identity::Session(Arc::new(record));
            add.push(cookie);
            return Ok(add);
        }
        METRICS
            .portal_logins
            .with_label_values(&[&portal.config.name, "failure"])
            .inc();
        tracing::warn!(target: "vigie::audit", event = "login", outcome = "failure", user = %user, portal = %portal.config.name, client = %request.client.ip);
    }

    if ctx.interception.logout {
        if let Some(old) = &current {
            sessions.store.remove(&old.id).await.map_err(store_err)?;
            tracing::info!(target: "vigie::audit", event = "logout", user = old.user.as_deref().unwrap_or("-"), session = %old.id.fingerprint());
            ctx.identity = Identity::Anonymous;
        }
        add.push(sessions.clear_cookie(request.tls));
        return Ok(add);
    }

    if changes.is_empty() {
        return Ok(add);
    }
    match current {
        // The portal replaced the session of a visitor the gateway saw no login from: a login
        // it could not read. The new portal session is not kept, and the pre-login one ends.
        Some(s) if !s.is_authenticated() && replaces_session(&s.vault, &changes) => {
            sessions.store.remove(&s.id).await.map_err(store_err)?;
            tracing::warn!(target: "vigie::audit", event = "pre_login_session_replaced", portal = %portal.config.name, client = %request.client.ip, session = %s.id.fingerprint());
            ctx.identity = Identity::Anonymous;
            add.push(sessions.clear_cookie(request.tls));
        }
        // The portal refreshed its session: update the vault.
        Some(s) => {
            let mut updated: SessionRecord = (*s).clone();
            for c in changes {
                vault::apply(&mut updated.vault, c);
            }
            sessions
                .store
                .put(updated.clone())
                .await
                .map_err(store_err)?;
            ctx.identity = Identity::Session(Arc::new(updated));
        }
        // A portal that opens its session before login (PHP portals do): keep it in a short-lived,
        // bounded pre-login session.
        None => {
            let mut vault_now = Vec::new();
            for c in changes {
                vault::apply(&mut vault_now, c);
            }
            if vault_now.is_empty() {
                return Ok(add);
            }
            let record = sessions.new_record(
                &portal.config.name,
                None,
                AuthLevel::None,
                request.client.ip,
                user_agent,
                vault_now,
            );
            add.push(
                sessions
                    .begin(record.clone(), None, request.tls)
                    .await
                    .map_err(store_err)?,
            );
            ctx.identity = Identity::Session(Arc::new(record));
        }
    }
    Ok(add)
}

/// Whether `changes` give a vaulted session cookie a new value.
fn replaces_session(vault: &[vault::VaultedCookie], changes: &[SetCookie]) -> bool {
    changes.iter().any(|c| match c {
        SetCookie::Store(new) => vault
            .iter()
            .any(|old| old.name == new.name && old.value != new.value),
        SetCookie::Delete(_) => false,
    })
}

/// Remove the portal's session cookies from a response; return what they did.
fn take_session_cookies(resp: &mut ResponseHeader, names: &[String]) -> Vec<SetCookie> {
    let all: Vec<String> = resp
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    let mut changes = Vec::new();
    let mut keep = Vec::new();
    for h in all {
        match vault::classify_set_cookie(&h, names) {
            Some(change) => changes.push(change),
            None => keep.push(h),
        }
    }
    if !changes.is_empty() {
        resp.remove_header("set-cookie");
        for h in keep {
            let _ = resp.append_header("set-cookie", h);
        }
    }
    changes
}

/// `POST /.vigie/logout`: end the portal's session with the vaulted cookies, then the gateway's.
pub async fn gateway_logout(
    sessions: &Sessions,
    portal: &Portal,
    identity: &Identity,
    session: &Session,
) -> Result<(), Rejection> {
    if !same_origin(session.req_header()) {
        return Err(Rejection::new(403, "cross_site_request"));
    }
    let Some(record) = identity.session() else {
        return Ok(());
    };
    if let (Some(profile), false) = (&portal.config.profile, record.vault.is_empty()) {
        if let Err(e) = portal_logout(portal, profile, record).await {
            // The gateway session still ends: without it the vaulted cookies are unusable.
            tracing::warn!(portal = %portal.config.name, error = %e, "portal logout call failed");
        }
    }
    sessions
        .store
        .remove(&record.id)
        .await
        .map_err(|_| Rejection::new(503, "session_store_unavailable"))?;
    tracing::info!(target: "vigie::audit", event = "logout", user = record.user.as_deref().unwrap_or("-"), session = %record.id.fingerprint());
    Ok(())
}

/// Call the portal's logout URL with the vaulted cookies.
async fn portal_logout(
    portal: &Portal,
    profile: &PortalProfile,
    record: &SessionRecord,
) -> pingora::Result<()> {
    let Some(rule) = &profile.logout else {
        return Ok(());
    };
    let uri = match &rule.query {
        Some((k, v)) => format!("{}?{k}={v}", rule.path),
        None => rule.path.clone(),
    };
    portal_get(portal, &uri, &record.vault, 0).await.map(|_| ())
}

/// The few HTML entities a role label may carry (`M&eacute;decin`), and numeric ones.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let name = &tail[1..end];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "middot" => Some('·'),
            "eacute" => Some('é'),
            "egrave" => Some('è'),
            "ecirc" => Some('ê'),
            "agrave" => Some('à'),
            "ccedil" => Some('ç'),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A GET to the portal on the user's behalf (vaulted cookies), reading at most `max_body`
/// bytes of the answer.
async fn portal_get(
    portal: &Portal,
    uri: &str,
    vault: &[vault::VaultedCookie],
    max_body: usize,
) -> pingora::Result<(u16, Vec<u8>)> {
    let mut req = RequestHeader::build("GET", uri.as_bytes(), None)?;
    let host = portal
        .config
        .hosts
        .iter()
        .find(|h| *h != "*")
        .cloned()
        .unwrap_or_else(|| portal.config.upstream.to_string());
    req.insert_header("host", host)?;
    let cookies: Vec<String> = vault
        .iter()
        .map(|c| format!("{}={}", c.name, c.value))
        .collect();
    req.insert_header("cookie", cookies.join("; "))?;
    let connector = pingora::connectors::http::Connector::new(None);
    let (mut http, _) = connector.get_http_session(&portal.peer).await?;
    http.write_request_header(Box::new(req)).await?;
    http.finish_request_body().await?;
    http.read_response_header().await?;
    let status = http.response_header().map_or(0, |h| h.status.as_u16());
    let mut body = Vec::new();
    while body.len() < max_body {
        match http.read_response_body().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    body.truncate(max_body);
    Ok((status, body))
}

/// The groups of a user who just logged in to the portal: the static mapping of the config,
/// and the role the portal shows on the profile's page. A role that cannot be read, or is not
/// mapped, refuses the login (fail closed: a privileged user must not pass as an ordinary one).
pub async fn login_groups(
    config: &crate::config::Config,
    portal: &Portal,
    profile: &PortalProfile,
    user: &str,
    vault: &[vault::VaultedCookie],
) -> Result<Vec<String>, Rejection> {
    let mut groups = config.groups_of(user, profile.login.case_insensitive_users);
    let Some(rule) = &profile.role else {
        return Ok(groups);
    };
    let refuse = |why: &str| {
        tracing::error!(portal = %portal.config.name, user = %user, why, "cannot read the user's role from the portal; refusing the login");
        Rejection::new(503, "role_unavailable")
    };
    let (status, page) = portal_get(portal, &rule.page, vault, 256 * 1024)
        .await
        .map_err(|_| refuse("the role page did not answer"))?;
    if status != 200 {
        return Err(refuse("the role page did not answer 200"));
    }
    let text = String::from_utf8_lossy(&page);
    let role = rule
        .pattern
        .captures(&text)
        .and_then(|c| c.get(1))
        .map(|m| decode_entities(m.as_str()).trim().to_string())
        .ok_or_else(|| refuse("the role pattern found nothing"))?;
    let group = rule
        .groups
        .get(&role)
        .ok_or_else(|| refuse("the role is not mapped in the profile's [role.groups]"))?;
    if !groups.contains(group) {
        groups.push(group.clone());
    }
    Ok(groups)
}

/// A state-changing request to the gateway must come from its own pages: `Sec-Fetch-Site`
/// when the browser sends it, else `Origin`/`Referer` matching `Host`. Neither: refused.
pub fn same_origin(req: &RequestHeader) -> bool {
    let header = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return site == "same-origin";
    }
    let Some(host) = header("host") else {
        return false;
    };
    let origin = header("origin").or_else(|| header("referer"));
    origin.is_some_and(|o| {
        let rest = o.split_once("://").map_or("", |(_, r)| r);
        rest.split('/').next() == Some(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", b"/.vigie/logout", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn cross_site_posts_are_refused() {
        assert!(same_origin(&req(&[
            ("Host", "ehr"),
            ("Sec-Fetch-Site", "same-origin")
        ])));
        assert!(!same_origin(&req(&[
            ("Host", "ehr"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", "http://ehr")
        ])));
        assert!(same_origin(&req(&[
            ("Host", "ehr:8080"),
            ("Origin", "https://ehr:8080")
        ])));
        assert!(!same_origin(&req(&[
            ("Host", "ehr"),
            ("Origin", "https://evil.example")
        ])));
        assert!(!same_origin(&req(&[("Host", "ehr"), ("Origin", "null")])));
        assert!(same_origin(&req(&[
            ("Host", "ehr"),
            ("Referer", "http://ehr/index.php")
        ])));
        assert!(!same_origin(&req(&[
            ("Host", "ehr"),
            ("Referer", "http://ehr.evil/x")
        ])));
        assert!(
            !same_origin(&req(&[("Host", "ehr")])),
            "no origin information"
        );
    }

    #[test]
    fn role_labels_are_decoded() {
        assert_eq!(decode_entities("M&eacute;decin"), "Médecin");
        assert_eq!(decode_entities("Infirmier&#183;&#xE8;re"), "Infirmier·ère");
        assert_eq!(decode_entities("R&D & co &bogus;"), "R&D & co &bogus;");
    }

    #[test]
    fn session_cookies_are_taken_out_of_responses() {
        let mut r = ResponseHeader::build(302, None).unwrap();
        r.append_header("Set-Cookie", "mediboard_session=abc; Path=/; HttpOnly")
            .unwrap();
        r.append_header("Set-Cookie", "lang=fr; Path=/").unwrap();
        let changes = take_session_cookies(&mut r, &["mediboard_session".to_string()]);
        assert_eq!(changes.len(), 1);
        let left: Vec<_> = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(left, vec!["lang=fr; Path=/"]);
    }
}
