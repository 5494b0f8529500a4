//! The request pipeline. Data flows one way through named stages:
//!
//! 1. [`normalise`] — framing and size checks, canonical target, host, client address;
//! 2. [`route`] — which portal;
//! 3. [`identify`] — who, from the gateway session cookie; [`intercept`] watches the portal's
//!    own login and logout and refuses its other credential entry points;
//! 4. authorise — the [`crate::policy`] requirement (second factor, step-up) against the
//!    session; short sessions are sent to the [`second_factor`] pages (budgets slot in here);
//! 5. [`forward`] — the upstream peer and the request the portal receives;
//! 6. [`inspect`] — response hygiene;
//! 7. [`log`] — access log and metrics.
//!
//! [`Gateway`] only sequences the stages on Pingora's hooks; each stage's logic lives in
//! its module, free of I/O where possible so it is tested without sockets.

mod access_line;
pub mod authorise;
pub mod forward;
pub mod gateway_login;
pub mod identify;
pub mod inspect;
pub mod intercept;
pub mod log;
pub mod login_answer;
pub mod normalise;
pub mod respond;
pub mod route;
pub mod screen;
pub mod second_factor;
pub mod watch;
pub mod whoami;

pub use access_line::{configure as configure_access_log, Drain as AccessLogDrain};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

use crate::budget::Budgets;
use crate::config::{Config, LoginMode};
use crate::factors::Factors;
use crate::identity::assertion::AssertionKeys;
use crate::identity::Sessions;
use crate::storage::users::UserStore;
use identify::Identity;
use intercept::Interception;
use normalise::Request;
use respond::Rejection;
use route::{Portal, Router};

/// Everything the pipeline needs, built once from a validated [`Config`].
pub struct Gateway {
    config: Config,
    router: Router,
    sessions: Arc<Sessions>,
    /// Local users, when some portal uses gateway-owned logins.
    users: Option<Arc<UserStore>>,
    assertions: Arc<AssertionKeys>,
    /// Second factors, when some portal holds sessions.
    factors: Option<Arc<Factors>>,
    budgets: Arc<Budgets>,
    /// The exfiltration detector, unless `[detection] enabled = false`.
    detector: Option<Arc<crate::detect::Detector>>,
    /// Alerts the gateway raises itself (an identity mismatch at login).
    alerts: Arc<crate::alerts::Alerts>,
    /// Requests in flight per client behind a trusted proxy (ATTACKS.md 41): the proxy's
    /// connections are exempt from the per-peer cap, its clients are capped here.
    clients: Arc<crate::listener::peers::Peers>,
}

/// The shared state a [`Gateway`] is built on (the server assembles it from the config).
pub struct Parts {
    pub sessions: Arc<Sessions>,
    pub users: Option<Arc<UserStore>>,
    pub assertions: Arc<AssertionKeys>,
    pub factors: Option<Arc<Factors>>,
    pub budgets: Arc<Budgets>,
    pub detector: Option<Arc<crate::detect::Detector>>,
    pub alerts: Arc<crate::alerts::Alerts>,
}

impl Gateway {
    pub fn new(config: Config, parts: Parts) -> Self {
        let router = Router::new(&config.portals);
        let Parts {
            sessions,
            users,
            assertions,
            factors,
            budgets,
            detector,
            alerts,
        } = parts;
        let per_client = config.limits.max_connections_per_peer;
        let clients = Arc::new(crate::listener::peers::Peers::new(
            per_client,
            usize::MAX,
            Vec::new(),
        ));
        Self {
            clients,
            config,
            router,
            sessions,
            users,
            assertions,
            factors,
            budgets,
            detector,
            alerts,
        }
    }

    fn hsts_for(&self, session: &Session) -> Option<u64> {
        let server = session.server_addr()?.as_inet()?;
        let listener = self.config.listeners.iter().find(|l| {
            l.address.port() == server.port()
                && (l.address.ip().is_unspecified() || l.address.ip() == server.ip())
        })?;
        listener.tls.as_ref().map(|t| t.hsts_max_age)
    }
}

/// Per-request state, filled stage by stage.
pub struct RequestCtx {
    pub started: Instant,
    pub request_id: String,
    pub request: Option<Request>,
    pub portal: Option<Arc<Portal>>,
    pub identity: Identity,
    pub interception: Interception,
    pub rejected: Option<&'static str>,
    /// The policy's decision (stage 4), for the log.
    pub decision: Option<crate::policy::Decision>,
    /// The session was in break-glass: every such request is audited.
    pub break_glass: bool,
    pub status: u16,
    pub upstream_error: Option<&'static str>,
    pub body_bytes: u64,
    /// The detector's view of the session, once it watches this request.
    pub who: Option<watch::Who>,
    pub watch: watch::Watch,
    /// An answer to a visitor below the password, read before it leaves.
    pub screen: Option<screen::Screen>,
    /// This request's place among its client's requests in flight (behind a trusted proxy).
    pub in_flight: Option<crate::listener::peers::Permit>,
}

static REQUEST_COUNTER: once_cell::sync::Lazy<AtomicU64> =
    once_cell::sync::Lazy::new(|| AtomicU64::new(rand::random::<u64>() & 0xffff_ffff_0000_0000));

fn next_request_id() -> String {
    format!("{:016x}", REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            request_id: next_request_id(),
            request: None,
            portal: None,
            identity: Identity::Anonymous,
            interception: Interception::default(),
            rejected: None,
            decision: None,
            break_glass: false,
            status: 0,
            upstream_error: None,
            body_bytes: 0,
            who: None,
            watch: watch::Watch::default(),
            screen: None,
            in_flight: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        match self.front_stages(session, ctx).await {
            Ok(Front::Forward) => Ok(false),
            Ok(Front::Asset(content_type, text)) => {
                respond::send_asset(session, content_type, text).await?;
                ctx.status = 200;
                Ok(true)
            }
            Ok(Front::Done(status)) => {
                ctx.status = status;
                Ok(true)
            }
            Ok(Front::Redirect(location)) => {
                respond::send_redirect(session, &location, &[]).await?;
                ctx.status = 303;
                Ok(true)
            }
            Ok(Front::Denied { liftable }) => {
                ctx.status = 403;
                ctx.rejected = Some("policy_denied");
                let rule = ctx
                    .decision
                    .as_ref()
                    .and_then(|d| d.deny.as_ref())
                    .map_or("-", |d| d.by.as_str());
                crate::metrics::METRICS
                    .policy_denials
                    .with_label_values(&[rule])
                    .inc();
                let here = ctx
                    .request
                    .as_ref()
                    .map_or("/".into(), |r| r.target.to_uri());
                respond::send_denied(session, liftable, &here, &ctx.request_id).await?;
                Ok(true)
            }
            Ok(Front::Held(hold)) => {
                ctx.status = 403;
                ctx.rejected = Some("held_for_review");
                respond::send_held(session, &hold, &ctx.request_id).await?;
                Ok(true)
            }
            Ok(Front::Slowed(retry_after)) => {
                ctx.status = 429;
                ctx.rejected = Some("over_budget");
                respond::send_slowed(session, retry_after, &ctx.request_id).await?;
                Ok(true)
            }
            Ok(Front::Jwks) => {
                respond::send_json(session, self.assertions.jwks_json()).await?;
                ctx.status = 200;
                Ok(true)
            }
            Ok(Front::LoggedOut) => {
                let tls = ctx.request.as_ref().is_some_and(|r| r.tls);
                respond::send_redirect(session, "/", &[self.sessions.clear_cookie(tls)]).await?;
                ctx.status = 303;
                Ok(true)
            }
            Err(rejection) => {
                ctx.rejected = Some(rejection.reason);
                ctx.status = rejection.status;
                respond::send_error(session, rejection.status, rejection.close, &ctx.request_id)
                    .await?;
                Ok(true)
            }
        }
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.body_bytes += body.as_ref().map_or(0, |b| b.len() as u64);
        let profile = ctx.portal.as_ref().and_then(|p| p.config.profile.clone());
        intercept::on_body(ctx, body, end_of_stream, profile.as_deref())?;
        if end_of_stream && ctx.interception.body_login {
            if let Some(user) = ctx.interception.login_user.clone() {
                if ctx.identity.session().is_some_and(|s| s.is_authenticated()) {
                    return self.login_over_session(ctx).await;
                }
                self.login_budget(ctx, &user).await?;
                if ctx.interception.prelogin_login {
                    self.refuse_locked(ctx, &user).await?;
                }
            }
        }
        if end_of_stream {
            let method = session.req_header().method.as_str().to_string();
            self.authorise_body(ctx, &method).await?;
            self.watch_body(ctx, &method)?;
        }
        if ctx.body_bytes > self.config.limits.max_body_bytes {
            ctx.rejected = Some("body_too_large");
            return Error::e_explain(
                ErrorType::HTTPStatus(413),
                "request body over limits.max_body_bytes",
            );
        }
        // A slow POST is cut by its total time, not only by the gap between two reads.
        if ctx.started.elapsed() > self.config.limits.client_body_timeout {
            ctx.rejected = Some("body_timeout");
            return Error::e_explain(
                ErrorType::HTTPStatus(408),
                "request body slower than limits.client_body_timeout_seconds",
            );
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        match &ctx.portal {
            Some(portal) => Ok(Box::new(portal.peer.clone())),
            None => Error::e_explain(ErrorType::InternalError, "no portal selected"),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(request) = &ctx.request else {
            return Error::e_explain(ErrorType::InternalError, "request not normalised");
        };
        forward::prepare_upstream_request(
            upstream_request,
            request,
            &self.config.headers,
            &ctx.request_id,
        )?;
        let profile = ctx
            .portal
            .as_ref()
            .and_then(|p| p.config.profile.as_deref());
        let login = ctx.interception.prelogin_login;
        intercept::upstream_cookies(
            upstream_request,
            &self.sessions,
            profile,
            &ctx.identity,
            login,
        );
        if let Some(portal) = &ctx.portal {
            if let LoginMode::Gateway {
                user_header,
                groups_header,
            } = &portal.config.login
            {
                let assertion = (&self.config.assertion, self.assertions.as_ref());
                let now = self.sessions.now();
                gateway_login::add_identity(
                    upstream_request,
                    &ctx.identity,
                    portal,
                    (user_header, groups_header),
                    assertion,
                    now,
                )?;
            }
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.status = resp.status.as_u16();
        let profiled = ctx
            .portal
            .as_ref()
            .and_then(|p| Some((p.clone(), p.config.profile.clone()?)));
        // The request is lent out of the context for the call, not copied.
        if let Some((portal, profile)) = profiled {
            if let Some(request) = ctx.request.take() {
                let ua = normalise::headers::user_agent(session.req_header()).to_string();
                let answer =
                    intercept::on_response(self, &portal, &profile, &request, ctx, resp, &ua).await;
                ctx.request = Some(request);
                match answer {
                    Ok(cookies) => {
                        for c in cookies {
                            resp.append_header("set-cookie", c)?;
                        }
                        let below = !ctx.identity.session().is_some_and(|s| s.is_authenticated());
                        let tainted =
                            below && ctx.identity.session().is_some_and(|s| screen::taken(&s.id));
                        if tainted && !ctx.interception.drop_body {
                            // Sent with a pre-login session a login then took: whatever the
                            // portal made of it, it does not go out.
                            login_answer::to_wall(resp, &profile)?;
                            ctx.interception.drop_body = true;
                            ctx.rejected = Some("prelogin_taken");
                        }
                        if below && !ctx.interception.drop_body {
                            let head = session.req_header().method == http::Method::HEAD;
                            ctx.screen = screen::start(&profile, resp, head);
                        }
                    }
                    Err(rejection) => {
                        ctx.rejected = Some(rejection.reason);
                        return Error::e_explain(
                            ErrorType::HTTPStatus(rejection.status),
                            rejection.reason,
                        );
                    }
                }
            }
        }
        let mut watch = std::mem::take(&mut ctx.watch);
        if let (Some(detector), Some(subject), Some(portal)) = (
            &self.detector,
            watch::subject_of(ctx, self.sessions.now()),
            ctx.portal.as_ref(),
        ) {
            if watch.on_response(detector, portal, &subject, resp, self.sessions.now_us()) {
                resp.remove_header("content-length");
                resp.insert_header("transfer-encoding", "chunked")?;
            }
        }
        ctx.watch = watch;
        inspect::on_response(resp, self.hsts_for(session), &ctx.request_id);
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        if ctx.interception.drop_body {
            *body = None;
            return Ok(None);
        }
        if let Some(mut screen) = ctx.screen.take() {
            let profile = ctx.portal.as_ref().and_then(|p| p.config.profile.clone());
            if let Some(profile) = profile {
                match screen.on_body(&profile, body, end_of_stream) {
                    Some(screen::Verdict::SignedIn) => self.signed_in_before_login(ctx),
                    Some(screen::Verdict::Clean) => {}
                    None => ctx.screen = Some(screen),
                }
            }
            return Ok(None);
        }
        ctx.watch.on_body(body);
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let (status, kind) = forward::classify_failure(e);
        if let Some(kind) = kind {
            ctx.upstream_error = Some(kind);
            let portal = ctx.portal.as_ref().map_or("-", |p| p.config.name.as_str());
            crate::metrics::METRICS
                .upstream_errors
                .with_label_values(&[portal, kind])
                .inc();
        }
        if ctx.interception.refused_login && session.response_written().is_none() {
            // A refused login looks the same whatever refused it (the portal, a lock).
            let tls = ctx.request.as_ref().is_some_and(|r| r.tls);
            let clear = [self.sessions.clear_cookie(tls)];
            let _ = respond::send_redirect(session, login_answer::SIGNIN_FAILED_PATH, &clear).await;
            ctx.status = 303;
            return FailToProxy {
                error_code: 303,
                can_reuse_downstream: false,
            };
        }
        if status > 0 && session.response_written().is_none() {
            let _ = respond::send_error(session, status, true, &ctx.request_id).await;
        }
        ctx.status = status;
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session
            .response_written()
            .map_or(ctx.status, |r| r.status.as_u16());
        let portal = ctx.portal.as_ref().map_or("-", |p| p.config.name.as_str());
        let (path, client) = match &ctx.request {
            Some(r) => (r.target.path.as_str(), Some(r.client.ip)),
            None => (
                "-",
                session
                    .client_addr()
                    .and_then(|a| a.as_inet())
                    .map(|a| a.ip()),
            ),
        };
        if let (Some(detector), Some(subject)) =
            (&self.detector, watch::subject_of(ctx, self.sessions.now()))
        {
            let own_refusal = ctx.rejected.is_some();
            let denied = !own_refusal && matches!(status, 403 | 404 | 410);
            let seen = watch::detect_seen(
                session.req_header().method.as_str(),
                &ctx.watch.path,
                status,
                &ctx.request_id,
            );
            let rows = ctx.watch.rows();
            if !own_refusal {
                let answer = crate::detect::Answer {
                    denied,
                    export: ctx.watch.export,
                    rows,
                    bytes: ctx.watch.bytes,
                };
                detector.finish(&subject, self.sessions.now_us(), answer, &seen);
            }
        }
        log::record(&log::Outcome {
            request_id: &ctx.request_id,
            portal,
            method: session.req_header().method.as_str(),
            path,
            status,
            client,
            identity: ctx.identity.label(),
            rejected: ctx.rejected,
            upstream_error: ctx.upstream_error,
            rule: ctx.decision.as_ref().and_then(|d| d.rule.as_deref()),
            break_glass: ctx.break_glass,
            started: ctx.started,
        });
    }
}

/// What the front stages decided.
enum Front {
    Forward,
    /// One of the gateway's static assets: content type and text.
    Asset(&'static str, &'static str),
    LoggedOut,
    /// The public keys of identity assertions.
    Jwks,
    /// Sent elsewhere (to the gateway's login page).
    Redirect(String),
    /// A handler already answered, with this status.
    Done(u16),
    /// Refused by policy; `liftable`: offer break-glass.
    Denied {
        liftable: bool,
    },
    /// Over budget, or throttled by the detector: retry after this many seconds.
    Slowed(u64),
    /// Held by the detector until the SOC reviews it.
    Held(crate::detect::Hold),
}

impl Gateway {
    /// Stages 1-4: normalise, route, identify and intercept (authorise and budget slot in here).
    async fn front_stages(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> std::result::Result<Front, Rejection> {
        let limits = &self.config.limits;
        let request = normalise::run(session, limits, &self.config.trusted_proxies)?;
        if request.client.peer_trusted {
            let permit = self.clients.admit(request.client.ip);
            ctx.in_flight = Some(permit.map_err(|_| Rejection::framing(429, "client_cap"))?);
        }
        if content_length(session.req_header()).is_some_and(|len| len > limits.max_body_bytes) {
            return Err(Rejection::framing(413, "body_too_large"));
        }
        session.set_keepalive(Some(limits.keepalive_timeout.as_secs()).filter(|s| *s > 0));
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
            ctx.request = Some(request);
            return Ok(Front::Asset(content_type, text));
        }
        let portal = self
            .router
            .select(&request.host)
            .cloned()
            .ok_or(Rejection::new(404, "unknown_host"))?;
        ctx.identity = identify::run(&self.sessions, session, &portal, request.tls).await?;
        ctx.portal = Some(portal.clone());
        let front = self.after_identify(session, ctx, &portal, &request).await;
        ctx.request = Some(request);
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
    ) -> std::result::Result<Front, Rejection> {
        let path = request.target.path.as_str();
        let gateway_login = matches!(portal.config.login, LoginMode::Gateway { .. });
        match path {
            "/.well-known/jwks.json" => return Ok(Front::Jwks),
            login_answer::SIGNIN_FAILED_PATH if portal.config.profile.is_some() => {
                let status = self.signin_failed(session, portal, ctx).await?;
                return Ok(Front::Done(status));
            }
            "/.vigie/logout" => {
                if session.req_header().method != http::Method::POST {
                    return Err(Rejection::new(405, "logout_needs_post"));
                }
                intercept::gateway_logout(&self.sessions, portal, &ctx.identity, session).await?;
                ctx.identity = Identity::Anonymous;
                return Ok(Front::LoggedOut);
            }
            gateway_login::LOGIN_PATH if gateway_login => {
                let users = self
                    .users
                    .as_ref()
                    .ok_or(Rejection::new(503, "user_store_unavailable"))?;
                let status = gateway_login::handle(
                    &self.config,
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
            _ if path.starts_with("/.vigie/") => {
                return Err(Rejection::new(404, "unknown_gateway_path"))
            }
            _ => {}
        }
        let navigation = matches!(session.req_header().method.as_str(), "GET" | "HEAD");
        let authenticated = ctx.identity.session().filter(|s| s.is_authenticated());
        if gateway_login && authenticated.is_none() {
            return match navigation {
                true => Ok(Front::Redirect(gateway_login::login_redirect(request))),
                false => Err(Rejection::new(401, "login_required")),
            };
        }
        // The profile's request-side rules and the pre-login wall: below the password, only
        // the profile's allowlist reaches the portal (ATTACKS.md 36).
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
            // Only the login POST carries a body before the password: a held body on a page
            // request would keep its portal cookie in flight across someone's login.
            if !signed_in && !attempt && !matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
                let body = req.headers.contains_key("transfer-encoding")
                    || content_length(req).is_some_and(|n| n > 0);
                if body {
                    return Err(Rejection::new(400, "prelogin_body"));
                }
            }
            let (interception, w) = intercept::on_request(profile, request, req, signed_in)?;
            ctx.interception = interception;
            wall = w;
            if ctx.interception.prelogin_login {
                self.take_pre_login(ctx).await?;
            }
            if signed_in && ctx.interception.login_user.is_some() {
                return Err(self.end_for_login(ctx).await);
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
            match authorise::run(&self.config, &self.budgets, portal, &facts, &ctx.identity).await {
                authorise::Outcome::Pass(d)
                    if wall == intercept::Wall::Closed
                        && d.requirement.level > crate::identity::session::AuthLevel::None =>
                {
                    ctx.decision = Some(d);
                    ctx.rejected = Some("prelogin_wall");
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
                        false => Err(Rejection::new(401, "prelogin_wall")),
                    };
                }
                authorise::Outcome::Pass(d) => ctx.decision = Some(d),
                authorise::Outcome::Deny { decision, liftable } => {
                    ctx.decision = Some(decision);
                    return Ok(Front::Denied { liftable });
                }
                authorise::Outcome::StepUp(d) => {
                    ctx.decision = Some(d);
                    return match navigation {
                        true => Ok(Front::Redirect(second_factor::factor_redirect(
                            &request.target.to_uri(),
                        ))),
                        false => Err(Rejection::new(401, "second_factor_required")),
                    };
                }
                authorise::Outcome::Slow {
                    decision,
                    retry_after,
                } => {
                    ctx.decision = Some(decision);
                    return Ok(Front::Slowed(retry_after));
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
    ) -> std::result::Result<Front, Rejection> {
        let factors = self
            .factors
            .as_ref()
            .ok_or(Rejection::new(404, "unknown_gateway_path"))?;
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
                _ => Err(Rejection::new(401, "login_required")),
            };
        };
        let visit = second_factor::Visit {
            lang: crate::pages::Lang::of_request(session.req_header()),
            session,
            config: &self.config,
            sessions: &self.sessions,
            factors,
            portal,
            request,
            user: record.user.clone().unwrap_or_default(),
            record,
            request_id: &ctx.request_id,
        };
        match second_factor::handle(visit).await {
            Some(result) => result.map(Front::Done),
            None => Err(Rejection::new(404, "unknown_gateway_path")),
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
