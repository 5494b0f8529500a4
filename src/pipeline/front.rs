//! Stages 1-4 on the request head: normalise, route, identify (with the portal profile's
//! request-side rules and the pre-login wall) and authorise; the gateway's own endpoints. What
//! they decide ([`Front`]) is answered by the proxy hooks in the parent module.

use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::identify::{self, Identity};
use super::normalise::{self, Request};
use super::refusal::{Reason, Refusal};
use super::route::Portal;
use super::{authorise, gateway_login, intercept, login_answer, second_factor};
use super::{Gateway, RequestCtx};
use crate::config::LoginMode;

/// What the front stages decided.
pub(super) enum Front {
    Forward,
    /// One of the gateway's assets (its stylesheet, its script, the portal's logo): content
    /// type and bytes.
    Asset(&'static str, bytes::Bytes),
    LoggedOut,
    /// The public keys of identity assertions.
    Jwks,
    /// Sent elsewhere (to the gateway's login page).
    Redirect(String),
    /// A handler already answered, with this status.
    Done(u16),
}

impl Gateway {
    /// Stages 1-4: normalise, route, identify and intercept (authorise and budget slot in here).
    pub(super) async fn front_stages(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> std::result::Result<Front, Refusal> {
        let live = ctx.live.clone();
        let limits = &live.config.limits;
        let request = normalise::run(session, limits, &live.config.trusted_proxies)?;
        if request.client.peer_trusted {
            let permit = self.clients.admit(request.client.ip);
            ctx.in_flight = Some(permit.map_err(|_| Refusal::framing(429, Reason::ClientCap))?);
        }
        if content_length(session.req_header()).is_some_and(|len| len > limits.max_body_bytes) {
            return Err(Refusal::framing(413, Reason::BodyTooLarge));
        }
        // Draining (SIGTERM): answer, then close, so keep-alive clients reconnect elsewhere
        // before the listeners close instead of meeting a closed connection.
        let keepalive = Some(limits.keepalive_timeout.as_secs()).filter(|s| *s > 0);
        session.set_keepalive(keepalive.filter(|_| !crate::lifecycle::draining()));
        session.set_read_timeout(Some(limits.client_body_timeout));
        let asset = match request.target.path.as_str() {
            crate::pages::STYLESHEET_PATH => {
                Some(("text/css; charset=utf-8", crate::pages::STYLESHEET))
            }
            crate::pages::SCRIPT_PATH => {
                Some(("text/javascript; charset=utf-8", crate::pages::SCRIPT))
            }
            _ => None,
        };
        if let Some((content_type, text)) = asset {
            return Ok(Front::Asset(
                content_type,
                bytes::Bytes::from_static(text.as_bytes()),
            ));
        }
        let portal = live
            .router
            .select(&request.host)
            .cloned()
            .ok_or(Refusal::new(404, Reason::UnknownHost))?;
        ctx.brand = portal.config.brand.clone();
        if request.target.path == crate::pages::LOGO_PATH {
            return match &portal.config.brand.logo {
                Some(logo) => Ok(Front::Asset(logo.content_type, logo.bytes.clone())),
                None => Err(Refusal::new(404, Reason::UnknownGatewayPath)),
            };
        }
        ctx.identity = identify::run(&self.sessions, session, &portal, request.tls).await?;
        let front = self.after_identify(session, ctx, &portal, &request).await;
        ctx.admitted = Some(super::Admitted { request, portal });
        front
    }

    /// The gateway's own endpoints, the login wall of gateway-login portals, and the portal
    /// profile's request-side rules.
    async fn after_identify(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        portal: &Arc<Portal>,
        request: &Request,
    ) -> std::result::Result<Front, Refusal> {
        let path = request.target.path.as_str();
        let gateway_login = matches!(portal.config.login, LoginMode::Gateway { .. });
        match path {
            super::endpoints::JWKS_PATH => return Ok(Front::Jwks),
            login_answer::SIGNIN_FAILED_PATH if portal.config.profile.is_some() => {
                let status = self.signin_failed(session, portal, ctx).await?;
                return Ok(Front::Done(status));
            }
            crate::pages::LANGUAGE_PATH => {
                if !matches!(
                    session.req_header().method,
                    http::Method::GET | http::Method::HEAD
                ) {
                    return Err(Refusal::new(405, Reason::MethodNotAllowed));
                }
                let (cookie, back) = crate::pages::language_switch(request.target.query.as_deref())
                    .ok_or(Refusal::new(400, Reason::UnknownLanguage))?;
                let back = super::form::safe_return(&back);
                super::respond::send_redirect(session, &back, &[cookie])
                    .await
                    .map_err(|_| Refusal::framing(400, Reason::PageIo))?;
                return Ok(Front::Done(303));
            }
            super::endpoints::LOGOUT_PATH => {
                if session.req_header().method != http::Method::POST {
                    return Err(Refusal::new(405, Reason::LogoutNeedsPost));
                }
                intercept::gateway_logout(&self.sessions, &ctx.identity, session).await?;
                ctx.identity = Identity::Anonymous;
                return Ok(Front::LoggedOut);
            }
            gateway_login::LOGIN_PATH if gateway_login => {
                let users = self
                    .users
                    .as_ref()
                    .ok_or(Refusal::new(503, Reason::UserStoreUnavailable))?;
                let status = gateway_login::handle(
                    &ctx.live.config,
                    &self.budgets,
                    session,
                    &self.sessions,
                    users,
                    portal,
                    request,
                    &ctx.identity,
                )
                .await?;
                return Ok(Front::Done(status));
            }
            _ if second_factor::is_factor_path(path) => {
                return self.factor_page(session, ctx, portal, request).await;
            }
            _ if path.starts_with(super::endpoints::PREFIX) => {
                return Err(Refusal::new(404, Reason::UnknownGatewayPath))
            }
            _ => {}
        }
        let navigation = matches!(session.req_header().method.as_str(), "GET" | "HEAD");
        let authenticated = ctx.identity.session().filter(|s| s.is_authenticated());
        if gateway_login && authenticated.is_none() {
            return match navigation {
                true => Ok(Front::Redirect(gateway_login::login_redirect(request))),
                false => Err(Refusal::new(401, Reason::LoginRequired)),
            };
        }
        // The portal's script stops reading a query past `max_input_vars` pairs; the rules
        // read all of it, so a decoy past the cut could stand in for what the script reads.
        let query = request.target.query.as_deref().unwrap_or("").as_bytes();
        if !crate::http::reads_whole_query(portal.config.request_spec(), query) {
            return Err(Refusal::new(414, Reason::TooManyParameters));
        }
        // The profile's request-side rules and the pre-login wall: below the password, only
        // the profile's allowlist reaches the portal (threat model 36).
        let mut wall = intercept::Wall::Pass;
        if let Some(profile) = &portal.config.profile {
            let signed_in = authenticated.is_some();
            // Before the password every login POST is an attempt, counted per source before
            // anything else is looked at, whatever its body; per user once the body is read.
            let req = session.req_header();
            let attempt = !signed_in && intercept::is_login_endpoint(profile, request, req);
            if attempt && req.method != http::Method::GET {
                self.login_attempt(request.client.ip, None).await?;
            }
            let body = req.headers.contains_key("transfer-encoding")
                || content_length(req).is_some_and(|n| n > 0);
            // Only the login POST carries a body before the password: a held body on a page
            // request would keep its portal cookie in flight across someone's login.
            if body
                && !signed_in
                && !attempt
                && !matches!(req.method.as_str(), "POST" | "PUT" | "PATCH")
            {
                return Err(Refusal::new(400, Reason::PreloginBody));
            }
            // No browser sends a body with a GET or HEAD; one held open would keep the exchange
            // (and what the detector learns from it) from ending while the answer has left.
            if body && matches!(req.method.as_str(), "GET" | "HEAD") {
                return Err(Refusal::new(400, Reason::BodyOnGet));
            }
            let full = self.full(ctx);
            let (interception, w) = intercept::on_request(profile, request, req, signed_in, full)?;
            ctx.interception = interception;
            // The body's parameters the policy's rules read too (stage 4 again, `authorise_body`).
            if let Some(reader) = ctx.interception.reader.as_mut() {
                let rules = ctx.live.config.policy.rules.iter();
                reader.want(rules.flat_map(|r| r.matcher.query.iter().map(|q| q.name.as_str())));
            }
            wall = w;
            if ctx.interception.prelogin_login {
                self.take_pre_login(ctx).await?;
            }
            if signed_in && ctx.interception.login_user.is_some() {
                return Err(self.end_for_login(ctx, session.req_header()).await);
            }
            if let Some(user) = ctx.interception.login_user.clone() {
                self.login_attempt(request.client.ip, Some(&user)).await?;
            }
        }
        // Stage 4, authorise: the policy's decision; a signed-in session must meet its
        // requirement; below the password, the wall (unless a rule makes the path public);
        // then the budgets.
        if portal.config.holds_sessions() {
            let now = self.sessions.now();
            let method = session.req_header().method.as_str().to_string();
            let facts = authorise::facts(portal, request, &method, &ctx.identity, now);
            ctx.break_glass = facts.break_glass;
            match authorise::run(
                &ctx.live.config,
                &self.budgets,
                portal,
                &facts,
                &ctx.identity,
            )
            .await
            {
                // Below the factor only the profile's allowlist reaches the portal, whatever a
                // rule says (a "public" path on a front-controller portal runs the whole
                // application); a session past the password is sent on to its factor.
                authorise::Outcome::Pass(d) if wall == intercept::Wall::Closed => {
                    if ctx.identity.session().is_some_and(|s| s.is_authenticated()) {
                        ctx.decision = Some(d);
                        return match navigation {
                            true => Ok(Front::Redirect(second_factor::factor_redirect(
                                &request.target.to_uri(),
                            ))),
                            false => Err(Refusal::new(401, Reason::SecondFactorRequired)),
                        };
                    }
                    ctx.decision = Some(d);
                    ctx.rejected = Some(Reason::PreloginWall);
                    let page = portal
                        .config
                        .profile
                        .as_ref()
                        .map_or("/", |p| p.prelogin.login_page.as_str());
                    // Only a page navigation is sent to the login page: a favicon or script
                    // fetched through the redirect would reload the login form behind the
                    // user's back (and renew its CSRF token).
                    let mode = session.req_header().headers.get("sec-fetch-mode");
                    let page_load = mode.is_none_or(|m| m.as_bytes() == b"navigate");
                    return match navigation && page_load {
                        true => Ok(Front::Redirect(page.to_string())),
                        false => Err(Refusal::new(401, Reason::PreloginWall)),
                    };
                }
                authorise::Outcome::Pass(d) => ctx.decision = Some(d),
                authorise::Outcome::Deny { decision, liftable } => {
                    ctx.decision = Some(decision);
                    return Err(Refusal::denied(liftable, request.target.to_uri()));
                }
                authorise::Outcome::StepUp(d) => {
                    ctx.decision = Some(d);
                    return match navigation {
                        true => Ok(Front::Redirect(second_factor::factor_redirect(
                            &request.target.to_uri(),
                        ))),
                        false => Err(Refusal::new(401, Reason::SecondFactorRequired)),
                    };
                }
                authorise::Outcome::Slow {
                    decision,
                    retry_after,
                } => {
                    ctx.decision = Some(decision);
                    return Err(Refusal::slowed(Reason::OverBudget, retry_after));
                }
            }
        }
        match self.watch_request(session, ctx, portal, request) {
            Some(front) => front,
            None => Ok(Front::Forward),
        }
    }
}

impl Gateway {
    /// A second-factor page: only for a session whose password was accepted.
    async fn factor_page(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        portal: &Arc<Portal>,
        request: &Request,
    ) -> std::result::Result<Front, Refusal> {
        let factors = self
            .factors
            .as_ref()
            .ok_or(Refusal::new(404, Reason::UnknownGatewayPath))?;
        let live = ctx.live.clone();
        let Some(record) = ctx
            .identity
            .session()
            .filter(|s| s.is_authenticated())
            .cloned()
        else {
            return match session.req_header().method.as_str() {
                "GET" | "HEAD" if matches!(portal.config.login, LoginMode::Gateway { .. }) => {
                    Ok(Front::Redirect(gateway_login::login_redirect(request)))
                }
                "GET" | "HEAD" => Ok(Front::Redirect("/".into())),
                _ => Err(Refusal::new(401, Reason::LoginRequired)),
            };
        };
        let visit = second_factor::Visit {
            lang: crate::pages::Lang::of_request(session.req_header()),
            session,
            config: &live.config,
            sessions: &self.sessions,
            factors,
            detector: self.detector.as_deref(),
            alerts: &self.alerts,
            portal,
            request,
            user: record.user.clone().unwrap_or_default(),
            record,
            request_id: &ctx.request_id,
        };
        match second_factor::handle(visit).await {
            Some(result) => result.map(Front::Done),
            None => Err(Refusal::new(404, Reason::UnknownGatewayPath)),
        }
    }
}

fn content_length(req: &RequestHeader) -> Option<u64> {
    req.headers
        .get("content-length")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
