//! The admin listener, kept off the proxy port: Prometheus metrics, health endpoints, and the
//! admin API (`/api/…`, bearer token required) to list and revoke sessions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::config::Secret;
use crate::factors::Factors;
use crate::identity::{Ending, Sessions};

mod alerts;
pub mod callers;

/// How long a readiness probe result is reused, so a busy prober cannot hammer the portals.
const PROBE_CACHE: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

pub struct AdminApp {
    portals: Vec<(String, SocketAddr)>,
    last_probe: Mutex<Option<(Instant, u16, String)>>,
    sessions: Arc<Sessions>,
    factors: Option<Arc<Factors>>,
    budgets: Option<Arc<crate::budget::Budgets>>,
    token: Option<Secret>,
    detector: Option<Arc<crate::detect::Detector>>,
    /// The profile whose collation keys user names (threat model 39): `lock Élise` must lock
    /// the account the portal's `elise` logs into.
    names: Option<Arc<crate::config::PortalProfile>>,
    /// Whether the state shared through Redis is trusted (replicas only).
    shared: Option<Arc<crate::storage::shared_state::StateHealth>>,
    /// The audit trail and break-glass records, for `/api/audit` and `/api/break-glass`.
    audit: Option<crate::audit::AuditLog>,
    /// What `POST /api/reload` calls.
    reloader: Option<Arc<crate::lifecycle::Reloader>>,
    /// The console's passkeys, for `POST /api/console/invite`.
    console_factors: Option<Arc<Factors>>,
    /// Per-person API tokens (`vigie tokens create`).
    tokens: Option<Arc<crate::storage::tokens::ApiTokens>>,
    /// The gateway's listener addresses, which `/readyz` checks this process holds.
    listeners: Vec<SocketAddr>,
}

impl AdminApp {
    pub fn new(
        portals: Vec<(String, SocketAddr)>,
        sessions: Arc<Sessions>,
        factors: Option<Arc<Factors>>,
        budgets: Option<Arc<crate::budget::Budgets>>,
        token: Option<Secret>,
        detector: Option<Arc<crate::detect::Detector>>,
    ) -> Self {
        Self {
            portals,
            last_probe: Mutex::new(None),
            sessions,
            factors,
            budgets,
            token,
            detector,
            names: None,
            shared: None,
            audit: None,
            reloader: None,
            console_factors: None,
            tokens: None,
            listeners: Vec::new(),
        }
    }

    /// Report the shared state's health in `/readyz` (a replica that distrusts Redis serves
    /// no session and is not ready).
    pub fn sharing(
        mut self,
        health: Option<Arc<crate::storage::shared_state::StateHealth>>,
    ) -> Self {
        self.shared = health;
        self
    }

    /// Reload on `POST /api/reload`; check in `/readyz` that these listeners are bound.
    pub fn operating(
        mut self,
        reloader: Arc<crate::lifecycle::Reloader>,
        listeners: Vec<SocketAddr>,
    ) -> Self {
        self.reloader = Some(reloader);
        self.listeners = listeners;
        self
    }

    /// Accept per-person API tokens beside the shared one.
    pub fn with_tokens(mut self, tokens: Option<Arc<crate::storage::tokens::ApiTokens>>) -> Self {
        self.tokens = tokens;
        self
    }

    /// Issue console invitations (`POST /api/console/invite?user=…`).
    pub fn inviting_analysts(mut self, factors: Option<Arc<Factors>>) -> Self {
        self.console_factors = factors;
        self
    }

    /// Serve the audit trail and the break-glass records.
    pub fn auditing(mut self, audit: crate::audit::AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Key user names the way this profile's portal compares them.
    pub fn keyed_by(mut self, profile: Option<Arc<crate::config::PortalProfile>>) -> Self {
        self.names = profile;
        self
    }

    /// `GET /api/sessions?user=U` and `POST /api/sessions/revoke?user=U[&session=FINGERPRINT]`.
    async fn api(&self, session: &mut ServerSession, path: &str) -> Response<Vec<u8>> {
        if self.token.is_none() && self.tokens.is_none() {
            return json(
                404,
                serde_json::json!({ "error": "admin API disabled: set admin.api_token_file" }),
            );
        }
        let Some(caller) = self.caller(session).await else {
            let client = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip());
            crate::audit::admin_token_refused(client);
            return json(
                401,
                serde_json::json!({ "error": "missing or wrong bearer token" }),
            );
        };
        let method = session.req_header().method.as_str().to_string();
        let action = callers::action_of(&method, path);
        if !caller.may(action) {
            tracing::warn!(target: "vigie::audit", event = "admin_refused", user = %caller.name, method = %method, path = %path, by = "admin_api");
            return json(
                403,
                serde_json::json!({ "error": "this token's role does not allow this call" }),
            );
        }
        // Every call, reads too (the trail, sessions, notes, reasons), with whom it is about.
        let about: String =
            form_urlencoded::parse(session.req_header().uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "user" || k == "id")
                .map(|(_, v)| v.chars().filter(|c| !c.is_control()).take(64).collect())
                .unwrap_or_default();
        tracing::info!(target: "vigie::audit", event = "admin_call", user = %caller.name, method = %method, path = %path, about = %about, by = "admin_api");
        let params = match params(session).await {
            Ok(p) => p,
            Err(e) => return json(400, serde_json::json!({ "error": e })),
        };
        if path.starts_with("/api/alerts") {
            let method = session.req_header().method.as_str().to_string();
            return self.alerts_api(&method, path, &params, &caller.name).await;
        }
        let params: std::collections::HashMap<String, String> = params.into_iter().collect();
        if path == "/api/reload" {
            let method = session.req_header().method.as_str().to_string();
            return self.reload(&method).await;
        }
        if path == "/api/audit" || path == "/api/break-glass" {
            let method = session.req_header().method.as_str();
            return self.audit_api(method, path, &params).await;
        }
        if path.starts_with("/api/holds") {
            let method = session.req_header().method.as_str();
            return self.detection_api(method, path, &params);
        }
        let method = session.req_header().method.as_str();
        if (method, path) == ("GET", "/api/sessions") && !params.contains_key("user") {
            return self.all_sessions().await;
        }
        let Some(user) = params.get("user").filter(|u| !u.is_empty()) else {
            return json(
                400,
                serde_json::json!({ "error": "the user parameter is required" }),
            );
        };
        let user = &match &self.names {
            Some(profile) => crate::identity::login::canonical(profile, user),
            None => user.clone(),
        };
        let store = &self.sessions.store;
        let result = match (session.req_header().method.as_str(), path) {
            ("GET", "/api/sessions") => store.list_user(user).await.map(|list| {
                let items: Vec<serde_json::Value> = list.iter().map(session_json).collect();
                serde_json::json!({ "user": user, "sessions": items })
            }),
            ("POST", "/api/sessions/revoke") => {
                let revoked = match params.get("session") {
                    Some(fp) => self
                        .sessions
                        .end_fingerprint(user, fp, Ending::Revoked)
                        .await
                        .map(usize::from),
                    None => self.sessions.end_user(user, None, Ending::Revoked).await,
                };
                if let Ok(n) = revoked {
                    tracing::warn!(target: "vigie::audit", event = "sessions_revoked", user = %user, count = n, by = "admin_api");
                }
                revoked.map(|n| serde_json::json!({ "user": user, "revoked": n }))
            }
            ("POST", "/api/sessions/step-up") => {
                let asked = store.want_proof(user, self.sessions.now_us()).await;
                if let Ok(n) = asked {
                    tracing::warn!(target: "vigie::audit", event = "step_up_asked", user = %user, count = n, asked_by = %caller.name, by = "admin_api");
                }
                asked.map(|n| serde_json::json!({ "user": user, "asked": n }))
            }
            ("POST", "/api/users/lock") => {
                let reason = params
                    .get("reason")
                    .map_or("locked by an administrator", String::as_str);
                let ended = self.sessions.lock_user(user, reason).await;
                if let Ok(n) = ended {
                    tracing::warn!(target: "vigie::audit", event = "account_locked", user = %user, reason_chars = reason.chars().count(), sessions_ended = n, by = "admin_api");
                }
                ended.map(
                    |n| serde_json::json!({ "user": user, "locked": true, "sessions_ended": n }),
                )
            }
            ("POST", "/api/users/unlock") => return self.unlock(user).await,
            ("POST", "/api/users/invite") => return self.invite(user).await,
            ("POST", "/api/console/invite") => return self.invite_analyst(user).await,
            ("GET", "/api/users/factors") => return self.factor_status(user).await,
            _ => {
                return json(
                    405,
                    serde_json::json!({ "error": "see the admin API in the README" }),
                )
            }
        };
        match result {
            Ok(v) => json(200, v),
            Err(e) => json(503, serde_json::json!({ "error": e.to_string() })),
        }
    }

    /// `GET /api/sessions` with no user: every signed-in session on every replica, newest
    /// first, at most [`ALL_SESSIONS`].
    async fn all_sessions(&self) -> Response<Vec<u8>> {
        match self.sessions.store.list_all(ALL_SESSIONS).await {
            Ok(list) => {
                let items: Vec<serde_json::Value> = list.iter().map(session_json).collect();
                let capped = items.len() >= ALL_SESSIONS;
                json(
                    200,
                    serde_json::json!({ "sessions": items, "capped": capped }),
                )
            }
            Err(e) => json(503, serde_json::json!({ "error": e.to_string() })),
        }
    }

    /// The detector's holds, for the SOC: `GET /api/holds`,
    /// `POST /api/holds/release?portal=…&user=…`.
    fn detection_api(
        &self,
        method: &str,
        path: &str,
        params: &std::collections::HashMap<String, String>,
    ) -> Response<Vec<u8>> {
        let Some(detector) = &self.detector else {
            return json(404, serde_json::json!({ "error": "detection is disabled" }));
        };
        let param = |name: &str| params.get(name).filter(|v| !v.is_empty());
        match (method, path) {
            ("GET", "/api/holds") => {
                let holds: Vec<serde_json::Value> = detector
                    .holds(self.sessions.now_us())
                    .into_iter()
                    .map(|(portal, user, h)| {
                        serde_json::json!({
                            "portal": portal, "user": user, "alert": h.alert_id, "rule": h.rule,
                            "score": h.score, "since_us": h.since_us, "until_us": h.until_us,
                        })
                    })
                    .collect();
                json(200, serde_json::json!({ "holds": holds }))
            }
            ("POST", "/api/holds/release") => {
                let (Some(portal), Some(user)) = (param("portal"), param("user")) else {
                    return json(
                        400,
                        serde_json::json!({ "error": "portal and user are required" }),
                    );
                };
                let released = detector.release(portal, user, self.sessions.now_us());
                tracing::warn!(target: "vigie::audit", event = "hold_released", portal = %portal, user = %user, released, by = "admin_api");
                json(
                    200,
                    serde_json::json!({ "portal": portal, "user": user, "released": released }),
                )
            }
            _ => json(
                405,
                serde_json::json!({ "error": "see the admin API in the README" }),
            ),
        }
    }

    /// `GET /api/audit[?user=U][&event=E][&limit=N]`: the trail, newest first.
    /// `GET /api/break-glass[?user=U][&limit=N]`: each use with its reason, for the review.
    async fn audit_api(
        &self,
        method: &str,
        path: &str,
        params: &std::collections::HashMap<String, String>,
    ) -> Response<Vec<u8>> {
        let Some(audit) = &self.audit else {
            return json(
                404,
                serde_json::json!({ "error": "no audit trail on this listener" }),
            );
        };
        if method != "GET" {
            return json(405, serde_json::json!({ "error": "GET only" }));
        }
        // A filter it does not know would be ignored, and the whole trail read as an answer.
        let known: &[&str] = match path {
            "/api/audit" => &["user", "event", "limit"],
            _ => &["user", "limit"],
        };
        if let Some(other) = params.keys().find(|k| !known.contains(&k.as_str())) {
            let error = format!(
                "unknown filter `{other}`: {path} takes {}",
                known.join(", ")
            );
            return json(400, serde_json::json!({ "error": error }));
        }
        let param = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
        let user = param("user").map(|u| match &self.names {
            Some(profile) => crate::identity::login::canonical(profile, &u),
            None => u,
        });
        let limit = param("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(100usize)
            .min(1000);
        // Off the admin listener's thread: a long read does not hold up health checks.
        let (audit, path) = (audit.clone(), path.to_string());
        let event = param("event");
        let read = tokio::task::spawn_blocking(move || {
            match path.as_str() {
            "/api/audit" => {
                let query = crate::audit::Query { user, event, limit };
                audit
                    .recent(&query)
                    .map(|entries| serde_json::json!({ "entries": entries }))
            }
            _ => audit.break_glass(user.as_deref(), limit).map(|list| {
                // Reading the reasons is itself audited: they may name a patient.
                let ids: Vec<&str> = list.iter().map(|r| r.id.as_str()).collect();
                tracing::warn!(target: "vigie::audit", event = "break_glass_reviewed", records = list.len(), ids = %ids.join(","), of_user = user.as_deref().unwrap_or("*"), by = "admin_api");
                serde_json::json!({ "break_glass": list })
            }),
        }
        });
        match read.await {
            Ok(Ok(v)) => json(200, v),
            Ok(Err(e)) => json(503, serde_json::json!({ "error": e.to_string() })),
            Err(e) => json(500, serde_json::json!({ "error": e.to_string() })),
        }
    }

    /// A one-time enrollment (or reset) code for `user`, to hand over in person.
    /// `POST /api/users/unlock`: lift the lock and the throttles in progress alike (second-factor
    /// failures, the login budget of the name), and say which there were.
    async fn unlock(&self, user: &str) -> Response<Vec<u8>> {
        let failed = |e: String| json(503, serde_json::json!({ "error": e }));
        let unlocked = match self.sessions.locks.unlock(user).await {
            Ok(was) => was,
            Err(e) => return failed(e.to_string()),
        };
        let mut factor_failures = 0;
        if let Some(f) = &self.factors {
            let cleared = async {
                let n = f.failures(user).await?;
                f.forget_failures(user).await.map(|_| n)
            };
            match cleared.await {
                Ok(n) => factor_failures = n,
                Err(e) => return failed(e.to_string()),
            }
        }
        let mut login_throttle = false;
        if let Some(b) = &self.budgets {
            match b.forget_login_user(user).await {
                Ok(was) => login_throttle = was,
                Err(_) => return failed("the login budgets' store is unreachable".into()),
            }
        }
        tracing::warn!(target: "vigie::audit", event = "account_unlocked", user = %user, unlocked, factor_failures, login_throttle, by = "admin_api");
        json(
            200,
            serde_json::json!({
                "user": user,
                "unlocked": unlocked,
                "cleared": {
                    "lock": unlocked,
                    "second_factor_failures": factor_failures,
                    "login_throttle": login_throttle,
                },
            }),
        )
    }

    /// A one-time code for an analyst's first console passkey, to hand over in person.
    async fn invite_analyst(&self, user: &str) -> Response<Vec<u8>> {
        let Some(f) = &self.console_factors else {
            return json(
                404,
                serde_json::json!({ "error": "no [console] is configured" }),
            );
        };
        match f.invite(&crate::console::factor_key(user)).await {
            Ok((code, expires)) => {
                tracing::warn!(target: "vigie::audit", event = "console_invitation_issued", user = %user, expires, by = "admin_api");
                json(
                    200,
                    serde_json::json!({ "user": user, "invitation": code, "expires": expires }),
                )
            }
            Err(e) => json(503, serde_json::json!({ "error": e.to_string() })),
        }
    }

    async fn invite(&self, user: &str) -> Response<Vec<u8>> {
        let Some(f) = &self.factors else {
            return json(
                404,
                serde_json::json!({ "error": "no portal uses second factors" }),
            );
        };
        match f.invite(user).await {
            Ok((code, expires)) => {
                tracing::warn!(target: "vigie::audit", event = "invitation_issued", user = %user, expires, by = "admin_api");
                json(
                    200,
                    serde_json::json!({ "user": user, "invitation": code, "expires": expires }),
                )
            }
            Err(e) => json(503, serde_json::json!({ "error": e.to_string() })),
        }
    }

    /// What a user has enrolled (never the secrets), for IT support.
    async fn factor_status(&self, user: &str) -> Response<Vec<u8>> {
        let Some(f) = &self.factors else {
            return json(
                404,
                serde_json::json!({ "error": "no portal uses second factors" }),
            );
        };
        let status = async {
            let factors = f.load(user).await?;
            let left = f.recovery_codes_left(user).await?;
            Ok::<_, crate::factors::FactorError>(serde_json::json!({
                "user": user,
                "totp": factors.totp.is_some(),
                "passkeys": factors.passkeys.iter().map(|p| &p.name).collect::<Vec<_>>(),
                "recovery_codes_left": left,
                // A factor bound with a recovery code, on probation until then (unix seconds).
                "probation": factors.on_probation(f.now()).map(|p| serde_json::json!({
                    "kind": p.kind.method(), "until": p.until,
                })),
            }))
        };
        match status.await {
            Ok(v) => json(200, v),
            Err(e) => json(503, serde_json::json!({ "error": e.to_string() })),
        }
    }

    /// `/readyz`: see [`crate::lifecycle::ready`]. Portal probes are cached briefly, so a
    /// busy prober cannot hammer the portals.
    async fn readiness(&self) -> (u16, String) {
        if let Some((at, code, body)) = self.last_probe.lock().expect("probe cache lock").clone() {
            // Draining is said at once: the load balancer must stop sending new clients now.
            if at.elapsed() < PROBE_CACHE && !crate::lifecycle::draining() {
                return (code, body);
            }
        }
        let mut portals = Vec::new();
        for (name, addr) in &self.portals {
            let ok = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
                Ok(Ok(_))
            );
            portals.push((name.clone(), ok));
        }
        let unbound = crate::lifecycle::bound::listening().map(|bound| {
            self.listeners
                .iter()
                .filter(|a| !crate::lifecycle::bound::covers(&bound, **a))
                .map(|a| a.to_string())
                .collect()
        });
        let last_reload = crate::metrics::METRICS.last_reload.get();
        let facts = crate::lifecycle::ready::Facts {
            unbound,
            draining: crate::lifecycle::draining(),
            portals,
            budgets_per_replica: self.budgets.as_ref().is_some_and(|b| b.degraded()),
            shared_state: self.shared.as_ref().map(|h| h.readiness()),
            shared_state_lost: self.shared.as_ref().and_then(|h| h.last_loss()),
            reloaded_at: (last_reload > 0).then_some(last_reload),
        };
        let (code, body) = crate::lifecycle::ready::judge(&facts);
        let body = format!("{body}\n");
        *self.last_probe.lock().expect("probe cache lock") =
            Some((Instant::now(), code, body.clone()));
        (code, body)
    }

    /// `POST /api/reload`: reload the file the gateway was started with.
    async fn reload(&self, method: &str) -> Response<Vec<u8>> {
        if method != "POST" {
            return json(405, serde_json::json!({ "error": "use POST" }));
        }
        let Some(reloader) = self.reloader.clone() else {
            return json(
                404,
                serde_json::json!({ "error": "this gateway cannot reload" }),
            );
        };
        // A thread of its own, as for SIGHUP: one stuck on a file must not hold up the stop.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rt = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            // In the runtime's context: ending regrouped users' sessions needs it.
            let _in_rt = rt.enter();
            let _ = tx.send(reloader.reload("admin API"));
        });
        let done = match tokio::time::timeout(Duration::from_secs(8), rx).await {
            Ok(done) => done,
            Err(_) => {
                let error = "the reload is still reading its files (one does not answer?); \
                             later reloads are refused until it ends";
                return json(
                    504,
                    serde_json::json!({ "reloaded": false, "error": error }),
                );
            }
        };
        match done {
            Ok(Ok(changed)) => json(
                200,
                serde_json::json!({ "reloaded": true, "changed": changed }),
            ),
            Ok(Err(e @ crate::lifecycle::ReloadError::Busy)) => json(
                409,
                serde_json::json!({ "reloaded": false, "error": e.to_string() }),
            ),
            Ok(Err(e)) => json(
                422,
                serde_json::json!({ "reloaded": false, "error": e.to_string() }),
            ),
            Err(e) => json(
                500,
                serde_json::json!({ "reloaded": false, "error": e.to_string() }),
            ),
        }
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("content-length", body.len())
        .body(body.into_bytes())
        .expect("static response parts are valid")
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match session.req_header().uri.path() {
            p if p.starts_with("/api/") => {
                let p = p.to_string();
                self.api(session, &p).await
            }
            "/metrics" => {
                if let Some(d) = &self.detector {
                    crate::metrics::METRICS
                        .detector_tracks
                        .set(d.tracks() as i64);
                }
                if let Ok(Some(census)) = self.sessions.store.census().await {
                    census.publish();
                }
                reply(200, "text/plain; version=0.0.4", crate::metrics::render())
            }
            "/healthz" => reply(200, "application/json", "{\"status\":\"alive\"}\n".into()),
            "/readyz" => {
                let (code, body) = self.readiness().await;
                reply(code, "application/json", body)
            }
            _ => reply(
                404,
                "text/plain",
                "not found: try /metrics, /healthz or /readyz\n".into(),
            ),
        }
    }
}

/// The query's parameters, then a POST's form body's (at most [`BODY_MAX`] bytes), in order.
async fn params(session: &mut ServerSession) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> =
        form_urlencoded::parse(session.req_header().uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    if session.req_header().method != http::Method::POST {
        return Ok(out);
    }
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > BODY_MAX {
                    return Err(format!("the body is over {BODY_MAX} bytes"));
                }
            }
            Ok(None) => break,
            Err(e) => return Err(format!("the body could not be read: {e}")),
        }
    }
    out.extend(form_urlencoded::parse(&body).into_owned());
    Ok(out)
}

/// A form body's largest size (a note is at most 2,000 characters).
const BODY_MAX: usize = 16 * 1024;

pub(crate) fn json(status: u16, v: serde_json::Value) -> Response<Vec<u8>> {
    reply(status, "application/json", format!("{v}\n"))
}

/// Sessions the all-users listing returns at most.
const ALL_SESSIONS: usize = 1_000;

/// One session as the admin API lists it: the break-glass reason's length, never its text.
fn session_json(
    (fp, r): &(
        String,
        std::sync::Arc<crate::identity::session::SessionRecord>,
    ),
) -> serde_json::Value {
    serde_json::json!({
        "session": fp, "user": r.user, "portal": r.portal, "level": r.level.label(), "client_ip": r.client_ip,
        "user_agent": r.user_agent, "created": r.created, "last_seen": r.last_seen,
        "groups": r.groups, "break_glass_until": r.break_glass_until, "step_up_asked": r.proof_wanted(),
        "break_glass_reason_chars": r.break_glass_reason.as_ref().map(|r| r.chars().count()),
    })
}
