//! The portal's answer to a login, judged by its profile (threat model 36-38). Whatever the
//! portal did with the request, its answer never reaches the browser as written: a success
//! becomes a bare redirect (and a new gateway session at the password level), anything else the
//! gateway's "sign-in refused" page, with the pre-login vault emptied.

use std::sync::Arc;

use pingora::http::ResponseHeader;

use super::identify::Identity;
use super::normalise::Request;
use super::refusal::{Reason, Refusal};
use super::route::Portal;
use super::whoami::{self, Confirmed};
use super::{Gateway, RequestCtx};
use crate::config::PortalProfile;
use crate::identity::session::AuthLevel;
use crate::identity::vault::{self, SetCookie};
use crate::identity::{Begun, Ending, Farewell};
use crate::metrics::METRICS;

/// Where a refused login lands: the gateway's page, with a way back to the portal's login.
pub use super::endpoints::SIGNIN_FAILED_PATH;

/// One login exchange.
pub struct Login<'a> {
    pub portal: &'a Portal,
    pub profile: &'a PortalProfile,
    pub request: &'a Request,
    /// Canonical.
    pub user: &'a str,
    pub user_agent: &'a str,
}

/// Judge the answer; rewrite `resp`; return the cookies to set.
pub async fn judge(
    gw: &Gateway,
    login: &Login<'_>,
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
    changes: Vec<SetCookie>,
) -> Result<Vec<String>, Refusal> {
    let (portal_name, ip, tls) = (
        login.portal.config.name.as_str(),
        login.request.client.ip,
        login.request.tls,
    );
    let user = login.user;
    let sessions = &gw.sessions;
    let store_err = |e| {
        tracing::error!(error = %e, "session store unavailable during login");
        Refusal::new(503, Reason::SessionStoreUnavailable)
    };
    let status = resp.status.as_u16();
    let location = resp
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let pre_login = end_session(gw, ctx).await?;
    let refused = |resp: &mut ResponseHeader, outcome: &str| {
        refuse(gw, login.portal, login.request, resp, outcome, user)
    };
    if !crate::identity::login::login_succeeded(login.profile, status, location.as_deref()) {
        return refused(resp, "failure");
    }
    // A portal that keeps its session id at login authenticated the pre-login cookies: they
    // carry over, now under a new gateway id (threat model 37).
    let mut vault_now = pre_login
        .as_ref()
        .map(|s| s.vault.clone())
        .unwrap_or_default();
    for c in changes {
        vault::apply(&mut vault_now, c);
    }
    // From here on, a login the gateway refuses leaves a signed-in portal session nobody
    // holds: it is logged out.
    let let_go = |why: Ending| {
        sessions.let_go(Farewell {
            portal: portal_name.to_string(),
            user: Some(user.to_string()),
            vault: vault_now.clone(),
            session: pre_login
                .as_ref()
                .map_or("-".into(), |s| s.id.fingerprint()),
            why,
        })
    };
    let locked = sessions.locks.locked(user).await.map_err(|e| {
        let_go(Ending::LoginRefused);
        store_err(e)
    })?;
    if let Some(reason) = locked {
        tracing::warn!(target: "vigie::audit", event = "login", outcome = "locked", user = %user, reason_chars = reason.chars().count(), portal = %portal_name, client = %ip);
        let_go(Ending::LoginRefused);
        return Err(Refusal::new(423, Reason::AccountLocked));
    }
    let confirmed = whoami::confirm(
        &ctx.live.config,
        login.portal,
        login.profile,
        user,
        &vault_now,
    )
    .await
    .inspect_err(|_| let_go(Ending::LoginRefused))?;
    let groups = match confirmed {
        Confirmed::Same(groups) => groups,
        Confirmed::Other => {
            let_go(Ending::IdentityMismatch);
            gw.alerts.raise(login_alert(
                login.portal,
                login.request,
                login.user,
                login.user_agent,
                ctx,
                Alarm::IdentityMismatch,
            ));
            return refused(resp, "identity_mismatch");
        }
    };
    let mut record = sessions.new_record(
        portal_name,
        Some(user.to_string()),
        AuthLevel::Password,
        ip,
        login.user_agent,
        vault_now.clone(),
    );
    record.groups = groups;
    let pack = ctx.live.config.policy.pack_for(&record.groups);
    sessions.admit(&mut record, pack);
    let id = record.id;
    // The lock is checked again with the insertion: one landing since the check above
    // refuses this login too.
    let begun = sessions.begin(record.clone(), None, pack, tls).await;
    let cookie = match begun.map_err(|e| {
        let_go(Ending::LoginRefused);
        store_err(e)
    })? {
        Begun::Started(cookie) => cookie,
        Begun::AtCap => {
            tracing::warn!(target: "vigie::audit", event = "login", outcome = "session_cap", user = %user, portal = %portal_name, client = %ip);
            let_go(Ending::LoginRefused);
            return Err(Refusal::new(409, Reason::SessionCap));
        }
        Begun::Locked | Begun::Ended => {
            tracing::warn!(target: "vigie::audit", event = "login", outcome = "locked", user = %user, portal = %portal_name, client = %ip);
            let_go(Ending::LoginRefused);
            return Err(Refusal::new(423, Reason::AccountLocked));
        }
    };
    METRICS
        .portal_logins
        .with_label_values(&[portal_name, "success"])
        .inc();
    tracing::info!(target: "vigie::audit", event = "login", outcome = "success", user = %user, portal = %portal_name, client = %ip, session = %id.fingerprint(), auth_level = AuthLevel::Password.label());
    ctx.identity = Identity::Session(Arc::new(record));
    // The portal's redirect, without its body: the next request meets the second factor.
    replace(resp, status, location.as_deref().unwrap_or("/"))?;
    Ok(vec![cookie])
}

/// The request's session ends and the portal's answer will be dropped. At a login: whatever
/// the portal answered, the pre-login session ends (a success gets a new id, a failure leaves
/// the portal a session nobody holds). A login POST took its session out of the store at its
/// head already ([`Gateway::take_pre_login`]): no second removal. Returns the ended session.
async fn end_session(
    gw: &Gateway,
    ctx: &mut RequestCtx,
) -> Result<Option<Arc<crate::identity::session::SessionRecord>>, Refusal> {
    ctx.interception.drop_body = true;
    let ended = ctx.identity.session().cloned();
    if let Some(old) = ended.as_ref().filter(|_| !ctx.interception.prelogin_login) {
        gw.sessions
            .end(&old.id, Ending::Replaced)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "session store unavailable during login");
                Refusal::new(503, Reason::SessionStoreUnavailable)
            })?;
    }
    ctx.identity = Identity::Anonymous;
    Ok(ended)
}

/// A refused login: the gateway's page instead of the portal's answer, the cookie cleared.
fn refuse(
    gw: &Gateway,
    portal: &Portal,
    request: &Request,
    resp: &mut ResponseHeader,
    outcome: &str,
    user: &str,
) -> Result<Vec<String>, Refusal> {
    let name = portal.config.name.as_str();
    METRICS
        .portal_logins
        .with_label_values(&[name, "failure"])
        .inc();
    let typed = crate::audit::typed_name(user);
    tracing::warn!(target: "vigie::audit", event = "login", outcome, user = %typed, portal = %name, client = %request.client.ip);
    replace(resp, 303, SIGNIN_FAILED_PATH)?;
    Ok(vec![gw.sessions.clear_cookie(request.tls)])
}

/// The portal answered a pre-login login POST before the gateway had read it whole: the
/// answer is not the portal's judgement of a login the gateway knows, so it is a refusal.
pub async fn unjudged(
    gw: &Gateway,
    portal: &Portal,
    request: &Request,
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
) -> Result<Vec<String>, Refusal> {
    end_session(gw, ctx).await?;
    refuse(gw, portal, request, resp, "answered_before_read", "-")
}

/// A portal session that rotated under a signed-in gateway session.
pub struct Rotated<'a> {
    pub user_agent: &'a str,
    /// The vault with the portal's new cookies.
    pub vault: Vec<vault::VaultedCookie>,
}

/// A signed-in session whose portal session rotated to another user (a portal's "log in as",
/// a token login from inside): the session ends, the portal's new session is logged out, the
/// answer (the other user's page) is replaced, and the SOC hears of it.
pub async fn rotated_to_another(
    gw: &Gateway,
    portal: &Portal,
    request: &Request,
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
    rotated: Rotated<'_>,
) -> Result<Vec<String>, Refusal> {
    let user_agent = rotated.user_agent;
    let user = ctx
        .identity
        .session()
        .and_then(|s| s.user.clone())
        .unwrap_or_default();
    let session = ctx
        .identity
        .session()
        .map_or("-".into(), |s| s.id.fingerprint());
    end_session(gw, ctx).await?;
    gw.sessions.let_go(Farewell {
        portal: portal.config.name.clone(),
        user: Some(user.clone()),
        vault: rotated.vault,
        session,
        why: Ending::IdentityMismatch,
    });
    let alert = login_alert(
        portal,
        request,
        &user,
        user_agent,
        ctx,
        Alarm::IdentityMismatch,
    );
    gw.alerts.raise(alert);
    refuse(
        gw,
        portal,
        request,
        resp,
        "identity_mismatch_on_rotation",
        &user,
    )
}

/// Replace the portal's answer by the sign-in wall's redirect to the login page.
pub fn to_wall(resp: &mut ResponseHeader, profile: &PortalProfile) -> pingora::Result<()> {
    replace(resp, 303, &profile.prelogin.login_page).map_err(|r| {
        pingora::Error::explain(pingora::ErrorType::HTTPStatus(r.status), r.reason.label())
    })
}

/// Replace the portal's answer by a bare redirect, keeping only its other cookies (language);
/// its session cookies were already taken into the vault.
fn replace(resp: &mut ResponseHeader, status: u16, location: &str) -> Result<(), Refusal> {
    let keep: Vec<_> = resp.headers.get_all("set-cookie").iter().cloned().collect();
    let built = || -> pingora::Result<ResponseHeader> {
        let mut r = ResponseHeader::build(status, Some(4 + keep.len()))?;
        r.insert_header("location", location)?;
        r.insert_header("content-length", "0")?;
        r.insert_header("cache-control", "no-store")?;
        for c in &keep {
            r.append_header("set-cookie", c.clone())?;
        }
        Ok(r)
    };
    *resp = built().map_err(|_| Refusal::new(502, Reason::PortalAnswerUnusable))?;
    Ok(())
}

/// Alerts the login side raises.
#[derive(Clone, Copy)]
pub enum Alarm {
    /// The portal names another user than the one who typed the password: someone would ride
    /// on another account's portal session.
    IdentityMismatch,
    /// The portal answered someone below the password with a signed-in page.
    SignedInBeforeLogin,
}

fn login_alert(
    portal: &Portal,
    request: &Request,
    user: &str,
    user_agent: &str,
    ctx: &RequestCtx,
    alarm: Alarm,
) -> crate::alerts::Alert {
    let (rule_id, rule_name) = match alarm {
        Alarm::IdentityMismatch => (
            "VIGIE-IDENTITY-MISMATCH",
            "The portal's session belongs to another user than the one who signed in",
        ),
        Alarm::SignedInBeforeLogin => (
            "VIGIE-SIGNED-IN-BEFORE-LOGIN",
            "The portal served a signed-in page to a visitor who had not signed in",
        ),
    };
    let event =
        crate::alerts::Alert::account_event(rule_id, rule_name.into(), user, &portal.config.name);
    crate::alerts::Alert {
        source_ip: Some(request.client.ip),
        user_agent: user_agent.chars().take(256).collect(),
        url_path: request.target.path.clone(),
        status: ctx.status,
        request_ids: vec![ctx.request_id.clone()],
        techniques: vec!["T1078"],
        ..event
    }
}

impl Gateway {
    /// A login POST before the password takes its pre-login session (and the portal cookie in
    /// its vault) for itself: the session leaves the store at once, so no other request carries
    /// that cookie while the portal signs it in; requests already in flight are recognised by
    /// [`super::screen::taken`]. If another login took it first, this one goes without it.
    pub(super) async fn take_pre_login(&self, ctx: &mut RequestCtx) -> Result<(), Refusal> {
        let Some(s) = ctx
            .identity
            .session()
            .filter(|s| !s.is_authenticated())
            .cloned()
        else {
            return Ok(());
        };
        super::screen::take(s.id);
        match self.sessions.store.take(&s.id).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                ctx.identity = Identity::Anonymous;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "session store unavailable during login");
                Err(Refusal::new(503, Reason::SessionStoreUnavailable))
            }
        }
    }

    /// A login for a locked account never reaches the portal, and is answered as any failed
    /// login is: neither the portal nor the answer tells whether the password was right.
    pub(super) async fn refuse_locked(
        &self,
        ctx: &mut RequestCtx,
        user: &str,
    ) -> pingora::Result<()> {
        let locked = match self.sessions.locks.locked(user).await {
            Ok(locked) => locked,
            Err(e) => {
                tracing::error!(error = %e, "lock store unavailable during login");
                return ctx.refuse(Refusal::new(503, Reason::SessionStoreUnavailable));
            }
        };
        let Some(reason) = locked else {
            return Ok(());
        };
        let ip = ctx.request().map(|r| r.client.ip);
        tracing::warn!(target: "vigie::audit", event = "login", outcome = "locked", user = %user, reason_chars = reason.chars().count(), client = ip.map(tracing::field::display));
        // Its pre-login session was taken out of the store with the head: it only goes.
        ctx.identity = Identity::Anonymous;
        let tls = ctx.tls();
        let clear = self.sessions.clear_cookie(tls);
        ctx.refuse(Refusal::sign_in_again(Reason::AccountLocked, clear))
    }

    /// A session past the password sends a login (threat model 38): whoever it logs in as, the
    /// session ends first, so one user's identity never rides on another's portal session.
    /// The request does not reach the portal; the user starts over.
    pub(super) async fn end_for_login(
        &self,
        ctx: &mut RequestCtx,
        req: &pingora::http::RequestHeader,
    ) -> Refusal {
        // Ending a session is a state change: another site may not force it (threat model 15).
        if !super::intercept::same_origin(req) {
            return Refusal::new(403, Reason::CrossSiteRequest);
        }
        if let Some(s) = ctx.identity.session() {
            if let Err(e) = self.sessions.end(&s.id, Ending::Replaced).await {
                tracing::error!(error = %e, "session store unavailable while ending a session");
                return Refusal::new(503, Reason::SessionStoreUnavailable);
            }
            tracing::warn!(target: "vigie::audit", event = "login_over_session", user = s.user.as_deref().unwrap_or("-"), attempted = ctx.interception.login_user.as_deref().unwrap_or("-"), session = %s.id.fingerprint());
        }
        ctx.identity = Identity::Anonymous;
        Refusal::new(409, Reason::LoginOverSession)
    }

    /// The same, once a request body was read as a login.
    pub(super) async fn login_over_session(
        &self,
        ctx: &mut RequestCtx,
        req: &pingora::http::RequestHeader,
    ) -> pingora::Result<()> {
        let r = self.end_for_login(ctx, req).await;
        ctx.refuse(r)
    }

    /// `GET /.vigie/signin-failed`: the portal did not accept a sign-in.
    pub(super) async fn signin_failed(
        &self,
        session: &mut pingora::proxy::Session,
        portal: &Portal,
        ctx: &RequestCtx,
    ) -> Result<u16, Refusal> {
        let lang = crate::pages::Lang::of_request(session.req_header());
        let back = portal
            .config
            .profile
            .as_ref()
            .map_or("/".to_string(), |p| p.prelogin.login_page.clone());
        let html = crate::pages::notice_page(
            lang,
            "signin_failed_title",
            crate::pages::message(lang, "signin_failed_text"),
            Some((back, crate::pages::message(lang, "signin_again"))),
            &ctx.request_id,
            &crate::pages::WayOut::default(),
            &portal.config.brand,
        );
        super::respond::send_html(session, 401, html, false, Some(&ctx.request_id))
            .await
            .map_err(|_| Refusal::new(500, Reason::WriteFailed))?;
        Ok(401)
    }

    /// The portal's answer to someone below the password was a signed-in page (see
    /// [`super::screen`]): the page is already replaced; the pre-login session, which may hold
    /// the portal's now signed-in cookie, ends, and the SOC hears of it.
    pub(super) fn signed_in_before_login(&self, ctx: &mut RequestCtx) {
        let Some(super::Admitted { request, portal }) = ctx.admitted.as_ref() else {
            return;
        };
        if let Some(s) = ctx.identity.session() {
            let (sessions, id) = (self.sessions.clone(), s.id);
            // The body hook cannot wait; the removal follows at once on the runtime, and the
            // portal's signed-in session is logged out.
            tokio::spawn(async move {
                if let Err(e) = sessions.end_forced(&id, Ending::SignedInBeforeLogin).await {
                    tracing::error!(error = %e, "could not end a pre-login session the portal signed in");
                }
            });
        }
        tracing::warn!(target: "vigie::audit", event = "signed_in_before_login", portal = %portal.config.name, client = %request.client.ip);
        let alert = login_alert(portal, request, "-", "", ctx, Alarm::SignedInBeforeLogin);
        self.alerts.raise(alert);
        ctx.rejected = Some(Reason::SignedInBeforeLogin);
        ctx.identity = Identity::Anonymous;
    }
}
