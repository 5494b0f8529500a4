//! Portal-login interception, the I/O side of [`crate::identity::login`]: refuse the portal's
//! alternate credential entry points, watch its login form, keep its session cookies in the
//! vault, and end both sessions on logout.

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use super::identify::Identity;
use super::normalise::Request;
use super::refusal::{Reason, Refusal};
use super::route::Portal;
use super::RequestCtx;
use crate::config::PortalProfile;
use crate::identity::login::{self, MAX_LOGIN_BODY};
use crate::identity::prelogin;
use crate::identity::session::{AuthLevel, SessionRecord};
use crate::identity::vault::{self, SetCookie};
use crate::identity::{Ending, Farewell, Sessions};

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
    /// A login POST made before the second factor: held whole, read strictly, and its answer
    /// never reaches the browser as the portal wrote it (threat model 36).
    pub prelogin_login: bool,
    /// The portal's answer is replaced by the gateway's: its body is dropped.
    pub drop_body: bool,
    /// The portal's logout: the gateway session ends once the portal has answered.
    pub logout: bool,
    /// Every body of a profiled portal, read as the portal's language reads it, streamed:
    /// what the detector sees besides the query.
    pub reader: Option<crate::http::BodyReader>,
    /// A body judged at its end (rules and the detector read its parameters), held back until
    /// judged: a refusal must not have sent the portal the request it refuses.
    pub held: bytes::BytesMut,
    /// The held body outgrew [`HOLD_MAX`] (an upload): the rest streams.
    pub streaming: bool,
    /// The parameters of the streamed body's part already gone, as last judged (see
    /// [`cut_here`]): a chunk that changes them is judged again before it goes.
    pub judged_so_far: Option<crate::http::Vars>,
}

/// A judged body is held up to this size. Past it, a form (urlencoded) is refused: no portal
/// form is that large, and streaming it would let its start reach the portal before the
/// verdict; any other body (an upload) streams from there on.
pub const HOLD_MAX: usize = 4 * 1024 * 1024;

/// Whether [`hold`] lets `chunk` go before the body has ended: an upload past [`HOLD_MAX`].
/// What goes then is judged first as the whole body it may become ([`cut_here`]).
pub fn goes_early(i: &Interception, chunk: Option<&Bytes>, end_of_stream: bool) -> bool {
    let held = i.held.len() + chunk.map_or(0, Bytes::len);
    !end_of_stream && i.reader.is_some() && !i.prelogin_login && (i.streaming || held > HOLD_MAX)
}

/// The body read as if it ended here (a portal under mod_php runs its script on a body the
/// gateway cut short with its refusal): no password field and nothing unreadable may go, as
/// the verdict at the end would refuse both. `Ok`: the parameters the rules judge now.
pub fn cut_here(
    profile: &PortalProfile,
    reader: &crate::http::BodyReader,
) -> Result<crate::http::Vars, Refusal> {
    let cut = reader.so_far();
    if cut.unreadable() {
        return Err(Refusal::new(400, Reason::BodyUnreadable));
    }
    let mut post = cut.post().clone();
    if post
        .map
        .remove(profile.login.password_field.as_bytes())
        .is_some()
    {
        return Err(Refusal::new(400, Reason::LoginFormAmbiguous));
    }
    Ok(post)
}

/// Hold back `chunk` of a judged body; at its end (once judged: the caller returned early on
/// a refusal), release it whole. `Err` for a form too large to hold.
pub fn hold(
    ctx: &mut RequestCtx,
    chunk: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Result<(), Refusal> {
    let i = &mut ctx.interception;
    if i.reader.is_none() || i.prelogin_login || i.streaming {
        return Ok(());
    }
    if let Some(c) = chunk.take() {
        i.held.extend_from_slice(&c);
    }
    if i.held.len() > HOLD_MAX {
        let form = i
            .content_type
            .as_deref()
            .is_some_and(|t| crate::http::is_media_type(t, crate::http::FORM));
        if form {
            return Err(Refusal::framing(413, Reason::FormTooLarge));
        }
        i.streaming = true;
        *chunk = Some(i.held.split().freeze());
        return Ok(());
    }
    // An empty chunk holds the body back; `None` would tell the portal the body ended.
    *chunk = Some(if end_of_stream {
        i.held.split().freeze()
    } else {
        Bytes::new()
    });
    Ok(())
}

/// The query with a form body after it: a PHP portal reads both (`$_REQUEST`), the body last,
/// so with the profile's "last of repeats" reading the body wins.
pub fn with_form(query: Option<&str>, form: &str) -> String {
    match query {
        Some(q) => format!("{q}&{form}"),
        None => form.to_string(),
    }
}

/// What the pre-login wall decided for a request of a session below the password.
#[derive(Debug, PartialEq, Eq)]
pub enum Wall {
    /// Signed in (the policy decides what it may reach), or on the profile's allowlist.
    Pass,
    /// Refused: a GET goes to the login page, anything else gets 401.
    Closed,
}

/// Request side: block rules, the pre-login wall's reading of the login POST, login and
/// logout detection. `signed_in`: the session is past the password; `full`: past the factor
/// too (not walled, the allowlist is not consulted).
pub fn on_request(
    profile: &PortalProfile,
    request: &Request,
    req: &RequestHeader,
    signed_in: bool,
    full: bool,
) -> Result<(Interception, Wall), Refusal> {
    let has_auth = req.headers.contains_key("authorization");
    let cookie_names = req
        .headers
        .get_all("cookie")
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| vault::parse_cookie_header(h).map(|(k, _)| k));
    let query = request.target.query.as_deref();
    if let Some(reason) = login::blocked(profile, query, has_auth, cookie_names) {
        let reason = match reason {
            login::Blocked::AuthorizationHeader => Reason::AuthorizationHeader,
            login::Blocked::CredentialInCookie => Reason::CredentialInCookie,
            login::Blocked::CredentialInQuery => Reason::CredentialInQuery,
        };
        return Err(Refusal::new(403, reason));
    }
    let content_type = content_type(req)?;
    let method = req.method.as_str();
    let login_endpoint = is_login_endpoint(profile, request, req);
    let length = header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let mut i = Interception {
        content_type: content_type.map(str::to_string),
        logout: login::is_logout(profile, &request.target.path, query),
        reader: (!matches!(method, "GET" | "HEAD")).then(|| {
            let wanted = super::params::wanted(profile);
            crate::http::BodyReader::new(&profile.request, wanted, method, content_type, length)
        }),
        ..Interception::default()
    };
    // A form declared past `post_max_size`: PHP reads none of it, a portal with a larger
    // limit all of it; either way no byte of it is judged, so none goes (red team, issue 21).
    if i.reader.as_ref().is_some_and(|r| r.unreadable()) {
        return Err(Refusal::framing(413, Reason::FormTooLarge));
    }
    // A login POST before the password: only a plain form, with a query the profile names, is
    // read; it is held whole and read the one strict way (see `on_body`).
    if !signed_in && login_endpoint && method != "GET" {
        let pre = &profile.prelogin;
        if !pre.login_query_ok(profile.query_reading, query) {
            return Err(Refusal::new(
                400,
                Reason::Login(prelogin::Unreadable::Query),
            ));
        }
        // Held whole, the body is sent with its length: a portal (PHP's own server among them)
        // may read a chunked body as empty.
        let Some(declared) = header(req, "content-length") else {
            return Err(Refusal::new(411, Reason::LoginLengthRequired));
        };
        // Refused on its head, before the portal hears of it: no login is that large.
        if declared
            .trim()
            .parse::<usize>()
            .is_ok_and(|n| n > MAX_LOGIN_BODY)
        {
            let why = prelogin::Unreadable::TooLarge;
            return Err(Refusal::new(why.status(), Reason::Login(why)));
        }
        if let Err(why) = prelogin::login_head_ok(content_type, header(req, "content-encoding")) {
            return Err(Refusal::new(why.status(), Reason::Login(why)));
        }
        i.prelogin_login = true;
        i.login_body = Some(Vec::new());
        return Ok((i, Wall::Pass));
    }
    // A login carried in the query (a GET login, or a form the portal also reads from there).
    match query.map(|q| login::classify_fields(profile, form_urlencoded::parse(q.as_bytes()))) {
        Some(login::Attempt::Login(user)) => i.login_user = Some(user),
        Some(login::Attempt::Ambiguous) => {
            return Err(Refusal::new(400, Reason::LoginQueryAmbiguous));
        }
        _ => {}
    }
    if !signed_in && i.login_user.is_some() && !login_endpoint {
        return Err(Refusal::new(400, Reason::LoginElsewhere));
    }
    i.login_body = login::is_login_candidate(method).then(Vec::new);
    // Whether the profile lets this request through below the factor.
    let wall = if full
        || (login_endpoint && i.login_user.is_some())
        || profile
            .prelogin
            .allows(profile.query_reading, method, &request.target.path, query)
    {
        Wall::Pass
    } else {
        Wall::Closed
    };
    Ok((i, wall))
}

/// The profile's login request (method and exact path). Before the password, every such POST is
/// a login attempt, counted before anything else is looked at.
pub fn is_login_endpoint(profile: &PortalProfile, request: &Request, req: &RequestHeader) -> bool {
    req.method.as_str() == profile.login.method && request.target.path == profile.login.path
}

/// The one content type that says how the portal reads the body. One the gateway cannot read
/// as text (a byte past ASCII), or two, could be read by the portal as a form the gateway took
/// for no form at all, its parameters unjudged (red team, issue 21): refused.
fn content_type(req: &RequestHeader) -> Result<Option<&str>, Refusal> {
    let mut lines = req.headers.get_all("content-type").iter();
    let (first, second) = (lines.next(), lines.next());
    if second.is_some() {
        return Err(Refusal::framing(400, Reason::ContentTypeUnreadable));
    }
    first
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| Refusal::framing(400, Reason::ContentTypeUnreadable))
}

fn header<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Body side: keep a copy of a login form, bounded; at its end, decide what it is. A login
/// the gateway cannot read is refused before its last byte reaches the portal; a login POST
/// made before the password does not reach the portal at all until it is read.
pub fn on_body(
    ctx: &mut RequestCtx,
    chunk: &mut Option<Bytes>,
    end_of_stream: bool,
    profile: Option<&PortalProfile>,
) -> pingora::Result<()> {
    let Some(profile) = profile else {
        return Ok(());
    };
    if let Some(reader) = ctx.interception.reader.as_mut() {
        if let Some(c) = chunk.as_deref() {
            reader.feed(c);
        }
        if end_of_stream {
            reader.finish();
            // A wanted name or value too long to keep: the gateway would guess at what the
            // portal reads, so the portal does not get the end of it.
            if reader.unreadable() {
                return ctx.refuse(Refusal::new(400, Reason::BodyUnreadable));
            }
        }
    }
    if ctx.interception.prelogin_login {
        return prelogin_body(ctx, chunk, end_of_stream, profile);
    }
    let i = &mut ctx.interception;
    let Some(buf) = i.login_body.as_mut() else {
        return Ok(());
    };
    if let Some(chunk) = chunk {
        buf.extend_from_slice(chunk);
        if i.overflow || buf.len() > MAX_LOGIN_BODY {
            // A large body (an upload) is not parsed, but a password field anywhere in it
            // must still not reach the portal: every byte is scanned before the copy lets it
            // go (the first 64 KiB too), keeping a short overlap.
            i.overflow = true;
            if login::mentions_password(profile, buf) {
                return ctx.refuse(Refusal::new(400, Reason::LoginFormAmbiguous));
            }
            let keep = buf.len().saturating_sub(64);
            buf.drain(..keep);
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
    // A body the login reader does not parse (past 64 KiB, multipart) in which PHP finds the
    // password field, however its name was spelled (`pass%77ord`, `+password`): a login the
    // byte scan of `login::mentions_password` would miss.
    let php_sees_password = i
        .reader
        .as_ref()
        .is_some_and(|r| r.post().get(&profile.login.password_field).is_some());
    let attempt = match attempt {
        login::Attempt::NotLogin if php_sees_password => login::Attempt::Ambiguous,
        other => other,
    };
    match attempt {
        // Before the password a login is read at the profile's login request only (held,
        // counted, its session taken, a lock checked first): anywhere else it is refused.
        login::Attempt::Login(_)
            if !ctx.identity.session().is_some_and(|s| s.is_authenticated()) =>
        {
            return ctx.refuse(Refusal::new(400, Reason::LoginElsewhere));
        }
        login::Attempt::Login(user) => {
            ctx.interception.login_user = Some(user);
            ctx.interception.body_login = true;
        }
        login::Attempt::Ambiguous => {
            return ctx.refuse(Refusal::new(400, Reason::LoginFormAmbiguous));
        }
        login::Attempt::NotLogin => {}
    }
    Ok(())
}

/// The pre-login login POST: every chunk is held back, the whole form read at its end. The
/// portal receives it only once it is known to be a login by one user (threat model 36).
fn prelogin_body(
    ctx: &mut RequestCtx,
    chunk: &mut Option<Bytes>,
    end_of_stream: bool,
    profile: &PortalProfile,
) -> pingora::Result<()> {
    let i = &mut ctx.interception;
    let buf = i.login_body.get_or_insert_with(Vec::new);
    // An empty chunk holds the body back; `None` would tell the portal the body ended.
    if let Some(c) = chunk.replace(Bytes::new()) {
        if buf.len() + c.len() > MAX_LOGIN_BODY {
            let why = prelogin::Unreadable::TooLarge;
            return ctx.refuse(Refusal::new(why.status(), Reason::Login(why)));
        }
        buf.extend_from_slice(&c);
    }
    if !end_of_stream {
        return Ok(());
    }
    match prelogin::read_login(profile, buf) {
        Ok(user) => {
            *chunk = Some(Bytes::from(std::mem::take(buf)));
            i.login_user = Some(login::canonical(profile, user.trim_end()));
            i.body_login = true;
            Ok(())
        }
        Err(why) => ctx.refuse(Refusal::new(why.status(), Reason::Login(why))),
    }
}

/// The `Cookie` header the portal receives: never the gateway's cookie, never a browser copy of
/// the portal's session cookies; the vaulted ones for a session that may use them. `full`: the
/// session has the level the policy requires of everyone (past the second factor).
pub fn upstream_cookies(
    up: &mut RequestHeader,
    sessions: &Sessions,
    profile: Option<&PortalProfile>,
    identity: &Identity,
    full: bool,
    login_itself: bool,
) {
    let session_cookies = profile.map_or(&[][..], |p| &p.login.session_cookies[..]);
    let vault = identity
        .session()
        .filter(|s| {
            // Past the password but not yet the factor, the vault holds a signed-in portal
            // session: only a full session sends it (a public page goes as an anonymous
            // visitor's). A pre-login session a login took lends its cookie (it may be signed
            // in by now) to that login alone.
            full || (!s.is_authenticated() && (login_itself || !super::screen::taken(&s.id)))
        })
        .map_or(&[][..], |s| &s.vault[..]);
    let only = profile.filter(|_| !full).map(|p| &p.prelogin.cookies[..]);
    let header = {
        let browser = up
            .headers
            .get_all("cookie")
            .into_iter()
            .filter_map(|v| v.to_str().ok());
        vault::upstream_cookie_header(
            browser,
            sessions.cookie_names(),
            session_cookies,
            vault,
            only,
        )
    };
    up.remove_header("cookie");
    if let Some(header) = header {
        let _ = up.insert_header("cookie", header);
    }
}

/// Response side: take the portal's session cookies out of the response into the vault;
/// judge a login (see [`super::login_answer`]), end both sessions on logout, keep the vault up
/// to date. Returns `Set-Cookie` values to add.
#[allow(clippy::too_many_arguments)]
pub async fn on_response(
    gw: &super::Gateway,
    portal: &Portal,
    profile: &PortalProfile,
    request: &Request,
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
    user_agent: &str,
) -> Result<Vec<String>, Refusal> {
    let sessions = &gw.sessions;
    let changes = take_session_cookies(resp, &profile.login.session_cookies);
    let current = ctx.identity.session().cloned();
    let store_err = |e| {
        tracing::error!(error = %e, "session store unavailable during login");
        Refusal::new(503, Reason::SessionStoreUnavailable)
    };
    let mut add = Vec::new();

    if let Some(user) = ctx.interception.login_user.clone() {
        let login = super::login_answer::Login {
            portal,
            profile,
            request,
            user: &user,
            user_agent,
        };
        return super::login_answer::judge(gw, &login, ctx, resp, changes).await;
    }
    if ctx.interception.prelogin_login {
        return super::login_answer::unjudged(gw, portal, request, ctx, resp).await;
    }

    // Past the password but not the factor, the request went as an anonymous visitor's
    // (without the vault): what the portal set then is not this user's session.
    let half = current.as_ref().is_some_and(|s| s.is_authenticated()) && !gw.full(ctx);
    // The portal took its session away from a signed-in user (a logout the profile's rule does
    // not spell, `?logout=1`, an expiry): measured from its answer, not read from the request.
    let ended_there = !half
        && current
            .as_ref()
            .is_some_and(|s| s.is_authenticated() && takes_session_away(&s.vault, &changes));
    if ctx.interception.logout || ended_there {
        if let Some(old) = &current {
            // Whatever the portal made of it (a GET to a logout that wants a POST), the
            // gateway then ends the portal's session its own way.
            sessions
                .end(&old.id, Ending::PortalLogout)
                .await
                .map_err(store_err)?;
            let event = if ctx.interception.logout {
                "logout"
            } else {
                "portal_session_ended"
            };
            tracing::info!(target: "vigie::audit", event, user = old.user.as_deref().unwrap_or("-"), session = %old.id.fingerprint());
            ctx.identity = Identity::Anonymous;
        }
        add.push(sessions.clear_cookie(request.tls));
        return Ok(add);
    }
    if changes.is_empty() || half {
        return Ok(add);
    }
    match current {
        // The portal replaced the session of a visitor the gateway saw no login from. The new
        // portal session is not kept, and the pre-login one ends.
        Some(s) if !s.is_authenticated() && replaces_session(&s.vault, &changes) => {
            // The new portal session is dropped unseen: nobody holds its cookie (logging it out
            // would let any visitor make the gateway call the portal).
            sessions.store.remove(&s.id).await.map_err(store_err)?;
            tracing::warn!(target: "vigie::audit", event = "pre_login_session_replaced", portal = %portal.config.name, client = %request.client.ip, session = %s.id.fingerprint());
            ctx.identity = Identity::Anonymous;
            add.push(sessions.clear_cookie(request.tls));
        }
        // The portal refreshed its session: update the vault. A new session id for a signed-in
        // user is a rotation only if the portal still names the same user (threat model 38).
        Some(s) => {
            let rotated = s.is_authenticated() && replaces_session(&s.vault, &changes);
            let mut updated: SessionRecord = (*s).clone();
            for c in &changes {
                vault::apply(&mut updated.vault, c.clone());
            }
            if rotated {
                let user = s.user.clone().unwrap_or_default();
                let who = super::whoami::confirm(
                    &ctx.live.config,
                    portal,
                    profile,
                    &user,
                    &updated.vault,
                );
                if let super::whoami::Confirmed::Other = who.await? {
                    let rotated = super::login_answer::Rotated {
                        user_agent,
                        vault: updated.vault,
                    };
                    return super::login_answer::rotated_to_another(
                        gw, portal, request, ctx, resp, rotated,
                    )
                    .await;
                }
            }
            // Applied to the stored record, read again if another request changed it meanwhile
            // (its activity time, its own cookie refresh): neither change is lost.
            let apply = |r: &mut SessionRecord| {
                for c in &changes {
                    vault::apply(&mut r.vault, c.clone());
                }
            };
            let Some(stored) = sessions.change(&s, apply).await.map_err(store_err)? else {
                // Revoked, locked or logged out while this request was at the portal: the
                // session stays ended, and what the portal answered does not go out. A new
                // portal session in the answer was never logged out by that ending: it is now.
                if rotated {
                    sessions.let_go(Farewell {
                        portal: portal.config.name.clone(),
                        user: s.user.clone(),
                        vault: updated.vault.clone(),
                        session: s.id.fingerprint(),
                        why: Ending::EndedInFlight,
                    });
                }
                ctx.identity = Identity::Anonymous;
                ctx.interception.drop_body = true;
                super::login_answer::to_wall(resp, profile)
                    .map_err(|_| Refusal::new(502, Reason::PortalAnswerUnusable))?;
                add.push(sessions.clear_cookie(request.tls));
                return Ok(add);
            };
            ctx.identity = Identity::Session(stored);
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
            let begun = sessions
                .begin(record.clone(), None, None, request.tls)
                .await
                .map_err(store_err)?;
            add.push(super::refusal::started(begun)?);
            ctx.identity = Identity::Session(Arc::new(record));
        }
    }
    Ok(add)
}

/// Whether `changes` leave the vault without a session cookie it held (deleted and not set
/// again: a portal rotating its id by deleting then setting is a rotation, not an ending).
fn takes_session_away(vault: &[vault::VaultedCookie], changes: &[SetCookie]) -> bool {
    let mut after = vault.to_vec();
    for c in changes {
        vault::apply(&mut after, c.clone());
    }
    vault
        .iter()
        .any(|old| !after.iter().any(|new| new.name == old.name))
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
pub(super) fn take_session_cookies(resp: &mut ResponseHeader, names: &[String]) -> Vec<SetCookie> {
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

/// `POST /.vigie/logout`: end the gateway's session, then the portal's, its way (see
/// [`super::portal_logout`]); the page answers once the portal has.
pub async fn gateway_logout(
    sessions: &Sessions,
    identity: &Identity,
    session: &Session,
) -> Result<(), Refusal> {
    if !same_origin(session.req_header()) {
        return Err(Refusal::new(403, Reason::CrossSiteRequest));
    }
    let Some(record) = identity.session() else {
        return Ok(());
    };
    sessions
        .end_now(&record.id, Ending::SignOut)
        .await
        .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?;
    tracing::info!(target: "vigie::audit", event = "logout", user = record.user.as_deref().unwrap_or("-"), session = %record.id.fingerprint());
    Ok(())
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
mod tests;
