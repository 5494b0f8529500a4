//! The request pipeline. Data flows one way through named stages:
//!
//! 1. [`normalise`] — framing and size checks, canonical target, host, client address;
//! 2. [`route`] — which portal;
//! 3. [`identify`] — who, from the gateway session cookie; [`intercept`] refuses the portal's
//!    other credential entry points, holds the pre-login wall ([`crate::identity::prelogin`]:
//!    below the password only the profile's allowlist reaches the portal) and reads the
//!    login; [`login_answer`] judges the portal's answer and [`whoami`] asks it who signed in;
//! 4. authorise — the [`crate::policy`] requirement (second factor, step-up) against the
//!    session; short sessions are sent to the [`second_factor`] pages (budgets slot in here);
//! 5. [`forward`] — the upstream peer and the request the portal receives;
//! 6. [`inspect`] — response hygiene; [`screen`] reads answers to visitors below the password;
//! 7. [`log`] — access log and metrics.
//!
//! [`Gateway`] only sequences the stages on Pingora's hooks (stages 1-4 on the request head
//! are in `front.rs`); each stage's logic lives in its module, free of I/O where possible so
//! it is tested without sockets. Below Pingora, [`crate::listener`] guards connections.

pub mod authorise;
mod body;
mod ctx;
pub mod endpoints;
pub mod form;
pub mod forward;
mod front;
pub mod gateway_login;
pub mod identify;
pub mod inspect;
pub mod intercept;
pub mod log;
pub mod login_answer;
pub mod normalise;
pub mod params;
pub mod portal_call;
pub mod portal_logout;
pub mod refusal;
pub mod respond;
pub mod route;
pub mod screen;
pub mod second_factor;
pub mod watch;
pub mod whoami;

use ctx::refused;
pub use ctx::{Admitted, RequestCtx};

pub use log::{configure as configure_access_log, Drain as AccessLogDrain};

use std::sync::Arc;

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
use front::Front;
use refusal::Reason;
use route::Router;

/// What a reload swaps at once: the configuration and the routes built from it. A request
/// takes the one current when it starts and keeps it to its end, so it never mixes two.
pub struct Live {
    pub config: Config,
    router: Router,
}

impl Live {
    pub fn new(config: Config) -> Arc<Self> {
        let router = Router::new(&config.portals);
        Arc::new(Self { config, router })
    }
}

/// The current [`Live`], shared by the gateway and whoever reloads it.
pub type LiveHandle = Arc<arc_swap::ArcSwap<Live>>;

/// Everything the pipeline needs, built once from a validated [`Config`].
pub struct Gateway {
    live: LiveHandle,
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
    /// Requests in flight per client behind a trusted proxy (threat model 41): the proxy's
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
    pub fn new(live: LiveHandle, parts: Parts) -> Self {
        let Parts {
            sessions,
            users,
            assertions,
            factors,
            budgets,
            detector,
            alerts,
        } = parts;
        let per_client = live.load().config.limits.max_connections_per_peer;
        let clients = Arc::new(crate::listener::peers::Peers::new(
            per_client,
            usize::MAX,
            Vec::new(),
        ));
        Self {
            clients,
            live,
            sessions,
            users,
            assertions,
            factors,
            budgets,
            detector,
            alerts,
        }
    }

    /// Whether the session has the level the policy requires of everyone: past the second
    /// factor, or past the password where no factor is required. Below it, the portal sees an
    /// anonymous visitor and what it answers is screened.
    fn full(&self, ctx: &RequestCtx) -> bool {
        use crate::identity::session::AuthLevel;
        let identity = &ctx.identity;
        let base = match ctx.live.config.second_factor.required {
            true => AuthLevel::SecondFactor,
            false => AuthLevel::Password,
        };
        identity
            .session()
            .is_some_and(|s| s.is_authenticated() && s.level >= base)
    }

    /// HSTS for a request that came over TLS (the listener's or a trusted proxy's).
    fn hsts_for(&self, session: &Session, ctx: &RequestCtx) -> Option<u64> {
        let own = session.digest().is_some_and(|d| d.ssl_digest.is_some());
        if !own && !ctx.tls() {
            return None;
        }
        let config = &ctx.live.config;
        let server = session.server_addr()?.as_inet()?;
        let listener = config.listeners.iter().find(|l| {
            l.address.port() == server.port()
                && (l.address.ip().is_unspecified() || l.address.ip() == server.ip())
        })?;
        Some(listener.hsts_max_age)
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.live.load_full())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        match self.front_stages(session, ctx).await {
            Ok(Front::Forward) => {
                self.read_body_first(session, ctx).await?;
                Ok(false)
            }
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
            Ok(Front::Jwks) => {
                respond::send_json(session, self.assertions.jwks_json()).await?;
                ctx.status = 200;
                Ok(true)
            }
            Ok(Front::LoggedOut) => {
                let tls = ctx.tls();
                respond::send_redirect(session, "/", &[self.sessions.clear_cookie(tls)]).await?;
                ctx.status = 303;
                Ok(true)
            }
            Err(refusal) => {
                refused(ctx, &refusal);
                refusal.send(session, &ctx.visitor()).await?;
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
        if ctx.body_read_first {
            // Judged whole in `request_filter`: this is pingora replaying it to the portal.
            return Ok(());
        }
        self.judge_body(session, body, end_of_stream, ctx).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        match ctx.portal() {
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
        let Some(Admitted { request, portal }) = &ctx.admitted else {
            return Error::e_explain(ErrorType::InternalError, "request not normalised");
        };
        forward::prepare_upstream_request(
            upstream_request,
            request,
            &ctx.live.config.headers,
            &ctx.request_id,
        )?;
        if ctx.body_read_first {
            // The gateway gave the client its go-ahead and holds the body: none to ask for.
            upstream_request.remove_header("expect");
        }
        let profile = portal.config.profile.as_deref();
        let login = ctx.interception.prelogin_login;
        let full = self.full(ctx);
        if profile.is_some() && !full {
            // What comes back to someone below the factor is read before it leaves
            // (`screen`): ask for it whole and uncompressed.
            for name in ["accept-encoding", "range", "if-range"] {
                upstream_request.remove_header(name);
            }
        }
        intercept::upstream_cookies(
            upstream_request,
            &self.sessions,
            profile,
            &ctx.identity,
            full,
            login,
        );
        {
            if let LoginMode::Gateway {
                user_header,
                groups_header,
            } = &portal.config.login
            {
                let assertion = (&ctx.live.config.assertion, self.assertions.as_ref());
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
        let profiled = ctx.portal().and_then(|p| p.config.profile.clone());
        // The request is lent out of the context for the call, not copied.
        if let Some(profile) = profiled {
            if let Some(Admitted { request, portal }) = ctx.admitted.take() {
                let ua = normalise::headers::user_agent(session.req_header()).to_string();
                let answer =
                    intercept::on_response(self, &portal, &profile, &request, ctx, resp, &ua).await;
                ctx.admitted = Some(Admitted { request, portal });
                match answer {
                    Ok(cookies) => {
                        for c in cookies {
                            resp.append_header("set-cookie", c)?;
                        }
                        let below = !self.full(ctx);
                        let tainted =
                            below && ctx.identity.session().is_some_and(|s| screen::taken(&s.id));
                        if tainted && !ctx.interception.drop_body {
                            // Sent with a pre-login session a login then took: whatever the
                            // portal made of it, it does not go out.
                            login_answer::to_wall(resp, &profile)?;
                            ctx.interception.drop_body = true;
                            ctx.rejected = Some(Reason::PreloginTaken);
                        }
                        if below && !ctx.interception.drop_body {
                            let head = session.req_header().method == http::Method::HEAD;
                            ctx.screen = screen::start(&profile, resp, head);
                        }
                    }
                    Err(refusal) => return ctx.refuse(refusal),
                }
            }
        }
        // Only the answers of sessions the detector watches are counted.
        let watched =
            self.detector.is_some() && watch::subject_of(ctx, self.sessions.now()).is_some();
        if let (true, Some(Admitted { request, portal })) = (watched, &ctx.admitted) {
            let method = session.req_header().method.as_str();
            if ctx.watch.on_response(portal, request, method, resp) {
                resp.remove_header("content-length");
                resp.insert_header("transfer-encoding", "chunked")?;
            }
        }
        inspect::on_response(resp, self.hsts_for(session, ctx), &ctx.request_id);
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
            let profile = ctx.portal().and_then(|p| p.config.profile.clone());
            if let Some(profile) = profile {
                match screen.on_body(&profile, body, end_of_stream) {
                    Some(screen::Verdict::SignedIn) => self.signed_in_before_login(ctx),
                    Some(screen::Verdict::Unreadable) => {
                        ctx.rejected = Some(Reason::PreloginUnreadable)
                    }
                    Some(screen::Verdict::Clean) => {}
                    None => ctx.screen = Some(screen),
                }
            }
            return Ok(None);
        }
        // Counted as it leaves, and once it has left: not when the exchange ends (a request
        // body held open would otherwise keep the answer uncounted while others stream).
        let mut watch = std::mem::take(&mut ctx.watch);
        let now = (self.sessions.now(), self.sessions.now_us());
        match (&self.detector, watch::subject_of(ctx, now.0)) {
            (Some(detector), Some(subject)) => {
                watch.on_body(body, end_of_stream, Some((detector, &subject, now.1)));
                if end_of_stream && watch.scored && !watch.finished {
                    let denied = matches!(watch.status, 403 | 404 | 410);
                    let answer = watch.answer(detector, denied);
                    let seen = watch::detect_seen(
                        _session.req_header().method.as_str(),
                        &watch.path,
                        watch.status,
                        &ctx.request_id,
                    );
                    detector.finish(&subject, now.1, answer, &seen);
                }
            }
            _ => watch.on_body(body, end_of_stream, None),
        }
        ctx.watch = watch;
        Ok(None)
    }

    /// What Pingora's own error lines say of the request: never its query or the raw path,
    /// which carry patient ids and names (Pingora's default prints the whole target).
    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        let req = session.req_header();
        format!(
            "{} {}, request {}",
            req.method,
            log::masked_path(req.uri.path()),
            ctx.request_id
        )
    }

    /// Pingora's own lines about a failed request print the error whole, and a portal's
    /// malformed answer rides in it (`buf: …`: its headers, a patient's name): they are kept
    /// off, and `fail_to_proxy` writes one line of its own instead.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        true
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &RequestCtx,
        _error: &Error,
        _context: pingora::proxy::ProxyWarnLogContext,
    ) -> bool {
        true
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let (status, kind) = forward::classify_failure(e);
        if status >= 500 {
            // The error's type and side only: its context and cause may carry the portal's bytes.
            let req = session.req_header();
            tracing::warn!(
                request = %ctx.request_id,
                portal = ctx.portal().map_or("-", |p| p.config.name.as_str()),
                kind = kind.unwrap_or("-"),
                error = e.etype().as_str(),
                side = ?e.esource(),
                method = %req.method,
                path = %log::masked_path(req.uri.path()),
                status,
                "request failed"
            );
        }
        if let Some(kind) = kind {
            ctx.upstream_error = Some(kind);
            let portal = ctx.portal().map_or("-", |p| p.config.name.as_str());
            crate::metrics::METRICS
                .upstream_errors
                .with_label_values(&[portal, kind])
                .inc();
        }
        // A refusal a body or response hook found: its own page, as on the head.
        if let Some(refusal) = ctx.refusal.take() {
            if !answered(session) {
                let _ = refusal.send(session, &ctx.visitor()).await;
            }
            ctx.status = refusal.status;
            return FailToProxy {
                error_code: refusal.status,
                can_reuse_downstream: false,
            };
        }
        if status > 0 && !answered(session) {
            let _ = respond::send_error(session, status, true, &ctx.visitor()).await;
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
            .filter(|r| !r.status.is_informational())
            .map_or(ctx.status, |r| r.status.as_u16());
        let admitted = ctx.admitted.as_ref();
        let portal = admitted.map_or("-", |a| a.portal.config.name.as_str());
        // Not routed (a gateway asset, a refused head): the path as sent, masked like any.
        let (path, client) = match admitted.map(|a| &a.request) {
            Some(r) => (r.target.path.as_str(), Some(r.client.ip)),
            None => (
                session.req_header().uri.path(),
                session
                    .client_addr()
                    .and_then(|a| a.as_inet())
                    .map(|a| a.ip()),
            ),
        };
        let mut watched = std::mem::take(&mut ctx.watch);
        if let (Some(detector), Some(subject)) =
            (&self.detector, watch::subject_of(ctx, self.sessions.now()))
        {
            let own_refusal = ctx.rejected.is_some();
            let denied = !own_refusal && matches!(status, 403 | 404 | 410);
            // An answer that left is counted whatever became of the request afterwards (a
            // body that timed out, a refusal of the rest).
            let sent = watched.bytes > 0 || watched.streamed > 0;
            if !watched.finished && (!own_refusal || sent) {
                let answer = watched.answer(detector, denied);
                let seen = watch::detect_seen(
                    session.req_header().method.as_str(),
                    &watched.path,
                    status,
                    &ctx.request_id,
                );
                detector.finish(&subject, self.sessions.now_us(), answer, &seen);
            }
            // The identity's timeline (and the patients it saw, in memory) for its alerts.
            let shown = watched.shown(detector);
            let step = crate::detect::activity::Step {
                at_us: self.sessions.now_us(),
                method: session.req_header().method.as_str().to_string(),
                path: watched.path.clone(),
                status,
                bytes: watched.bytes,
                patients: shown.len() as u32,
                window: 0,
            };
            detector.remember(&subject, step, shown);
        }
        ctx.watch = watched;
        if let Some(detector) = &self.detector {
            let id = u64::from_str_radix(&ctx.request_id, 16).unwrap_or(0);
            detector.settle(id, status);
        }
        log::record(&log::Outcome {
            request_id: &ctx.request_id,
            portal,
            method: session.req_header().method.as_str(),
            path,
            status,
            client,
            identity: ctx.identity.label(),
            rejected: ctx.rejected.map(Reason::label),
            upstream_error: ctx.upstream_error,
            rule: ctx.decision.as_ref().and_then(|d| d.rule.as_deref()),
            break_glass: ctx.break_glass,
            started: ctx.started,
        });
    }
}

/// Whether a final answer went out: a `100 Continue` the gateway gave (`body.rs`) is not one.
fn answered(session: &Session) -> bool {
    session
        .response_written()
        .is_some_and(|r| !r.status.is_informational())
}
