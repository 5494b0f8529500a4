//! The second-factor pages under `/.vigie/`: prove a factor ([`verify`]), enroll one
//! ([`enroll`]), manage them ([`account`]). Every handler answers the request itself and
//! returns the status it sent. State changes are POSTs checked for same origin; every
//! change of level gives the session a new id.

mod account;
mod alert;
mod break_glass;
mod enroll;
mod verify;

use std::sync::Arc;

use minijinja::Value;
use pingora::proxy::Session;

use super::form::{field, read_body, safe_return};
use super::intercept::same_origin;
use super::normalise::headers::{is_media_type, FORM};
use super::normalise::Request;
use super::refusal::{Reason, Refusal};
use super::respond::{self, Page};
use super::route::Portal;
use crate::factors::rules::{factor_rights, FactorRights, Requirement};
use crate::factors::{FactorError, Factors};
use crate::identity::session::{AuthLevel, SessionRecord};
use crate::identity::token::SessionId;
use crate::identity::{Begun, Sessions};
use crate::pages::{self, Lang};

pub const FACTOR_PATH: &str = "/.vigie/factor";
/// Largest form or JSON body a factor page accepts (a WebAuthn answer is a few KB).
const MAX_BODY: usize = 32 * 1024;

/// What raised a session: a factor the user already had (and whether it was their strongest
/// kind then: a passkey, or the app of a user without one), or one just bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    Had { strongest: bool },
    Enrolled,
}

/// One request to a second-factor page, by a user whose password was accepted.
pub struct Visit<'a> {
    pub session: &'a mut Session,
    pub config: &'a crate::config::Config,
    pub sessions: &'a Sessions,
    pub factors: &'a Factors,
    pub detector: Option<&'a crate::detect::Detector>,
    /// Where a recovery-code replacement of a lost factor is told to the SOC.
    pub alerts: &'a crate::alerts::Alerts,
    pub portal: &'a Portal,
    pub request: &'a Request,
    pub record: Arc<SessionRecord>,
    pub user: String,
    pub lang: Lang,
    /// The request's id, the reference shown on error pages.
    pub request_id: &'a str,
}

/// Route a `/.vigie/…` path that belongs to second factors; `None` if it is not one.
pub async fn handle(v: Visit<'_>) -> Option<Result<u16, Refusal>> {
    let path = v.request.target.path.clone();
    let method = v.session.req_header().method.as_str().to_string();
    let result = match (method.as_str(), path.as_str()) {
        ("GET" | "HEAD", FACTOR_PATH) => verify::page(v).await,
        ("POST", "/.vigie/factor/totp") => verify::totp(v).await,
        ("POST", "/.vigie/factor/recovery") => verify::recovery(v).await,
        ("POST", "/.vigie/passkey/auth/start") => verify::passkey_start(v).await,
        ("POST", "/.vigie/passkey/auth/finish") => verify::passkey_finish(v).await,
        ("GET" | "HEAD", "/.vigie/enroll") => enroll::page(v).await,
        ("POST", "/.vigie/enroll/invitation") => enroll::invitation(v).await,
        ("GET" | "HEAD", "/.vigie/enroll/totp") => enroll::totp_page(v).await,
        ("POST", "/.vigie/enroll/totp") => enroll::totp_confirm(v).await,
        ("POST", "/.vigie/passkey/register/start") => enroll::passkey_start(v).await,
        ("POST", "/.vigie/passkey/register/finish") => enroll::passkey_finish(v).await,
        ("GET" | "HEAD", "/.vigie/codes") => enroll::codes(v).await,
        ("POST", "/.vigie/codes") => enroll::codes_kept(v).await,
        ("GET" | "HEAD", crate::policy::ACCOUNT_PATH) => account::page(v, None).await,
        ("POST", "/.vigie/account/passkey/remove") => account::remove_passkey(v).await,
        ("POST", "/.vigie/account/codes") => account::new_codes(v).await,
        ("GET" | "HEAD", crate::policy::BREAK_GLASS_PATH) => break_glass::page(v).await,
        ("POST", crate::policy::BREAK_GLASS_PATH) => break_glass::activate(v).await,
        (_, p) if is_factor_path(p) => Err(Refusal::new(405, Reason::MethodNotAllowed)),
        _ => return None,
    };
    Some(result)
}

pub fn is_factor_path(path: &str) -> bool {
    [
        FACTOR_PATH,
        "/.vigie/passkey/",
        "/.vigie/enroll",
        "/.vigie/codes",
        crate::policy::ACCOUNT_PATH,
        crate::policy::BREAK_GLASS_PATH,
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Where the user goes to prove a factor for `return_to`.
pub fn factor_redirect(return_to: &str) -> String {
    format!("{FACTOR_PATH}?return={}", encode(return_to))
}

/// Where the detector sends a user it asks for a fresh proof. The flag only helps a replica
/// that has not seen the step-up ask for a proof: dropping it skips nothing, since the
/// detector refuses until the session's proof is newer than the step-up.
pub fn fresh_factor_redirect(return_to: &str) -> String {
    format!("{}&fresh=1", factor_redirect(return_to))
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn store_down(e: FactorError) -> Refusal {
    tracing::error!(error = %e, "second-factor store unavailable; refusing");
    Refusal::new(503, Reason::FactorStoreUnavailable)
}

impl Visit<'_> {
    fn now(&self) -> u64 {
        self.factors.now()
    }

    /// The query's pairs, decoded.
    fn query_pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        let q = self.request.target.query.as_deref().unwrap_or("");
        form_urlencoded::parse(q.as_bytes()).into_owned()
    }

    fn query(&self, name: &str) -> Option<String> {
        self.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The same-origin return path from the query.
    fn return_to(&self) -> String {
        safe_return(&self.query("return").unwrap_or_else(|| "/".into()))
    }

    /// What the policy asks of this session for a GET of `return_to`.
    fn requirement_for(&self, return_to: &str) -> Requirement {
        let (path, query) = match return_to.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (return_to, None),
        };
        let now = self.now();
        let facts = crate::policy::Facts {
            host: &self.request.host,
            method: "GET",
            path: self.portal.config.policy_path(path),
            query,
            user: Some(&self.user),
            groups: &self.record.groups,
            ip: self.request.client.ip,
            now,
            break_glass: self.record.break_glass_active(now),
        };
        let view = self.portal.config.policy_view(&facts);
        let required = self.config.second_factor.required;
        self.config
            .policy
            .decide(&view, required, &facts)
            .requirement
    }

    /// The SOC's step-up of this session, or the detector's of this user (never in
    /// break-glass), waiting for a proof newer than it began.
    fn step_up_pending(&self) -> bool {
        if self.record.proof_wanted() {
            return true;
        }
        let Some(detector) = self.detector else {
            return false;
        };
        if self.record.break_glass_active(self.now()) {
            return false;
        }
        let since = detector.step_up_since(&self.portal.config.name, &self.user);
        since.is_some_and(|since| self.record.proof_at_us.unwrap_or(0) < since)
    }

    /// A fresh proof is asked for even where the policy's level is met: the detector waits
    /// for one here, or sent the user with `fresh=1` (from a replica that saw the step-up).
    fn fresh_proof_wanted(&self) -> bool {
        self.query("fresh").as_deref() == Some("1") || self.step_up_pending()
    }

    /// What this session may change in the user's factors now. A privileged account's lost
    /// device is never replaced with a recovery code: like its first factor, that takes an
    /// invitation IT hands over.
    fn rights(&self, factors: &crate::factors::UserFactors) -> FactorRights {
        let fresh = self.factors.config.fresh_window.as_secs();
        match factor_rights(&self.record, factors, fresh, self.now()) {
            FactorRights::ReplaceLost if self.privileged() => FactorRights::Nothing,
            rights => rights,
        }
    }

    /// The session's pack at sign-in, or the groups now (a reload may add a pack).
    fn privileged(&self) -> bool {
        self.record.privileged || self.config.is_privileged(&self.record.groups)
    }

    fn fp(&self) -> String {
        self.record.id.fingerprint()
    }

    /// Read a POST body of the expected kind (`form` or JSON): cross-site posts, other
    /// content types and oversized bodies are refused before anything is parsed.
    async fn body(&mut self, json: bool) -> Result<Vec<u8>, Refusal> {
        if !same_origin(self.session.req_header()) {
            return Err(Refusal::new(403, Reason::CrossSiteRequest));
        }
        let ctype = self
            .session
            .req_header()
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let want = if json { "application/json" } else { FORM };
        if !is_media_type(ctype, want) {
            return Err(Refusal::framing(415, Reason::WrongContentType));
        }
        read_body(self.session, MAX_BODY).await
    }

    async fn form(&mut self) -> Result<Vec<(String, String)>, Refusal> {
        let body = self.body(false).await?;
        Ok(form_urlencoded::parse(&body).into_owned().collect())
    }

    /// The address that shows this page again by a GET, for the language switch: the page
    /// itself, or for a form's answer (a failed code, a refused change) the page the form was
    /// on. A POST is never replayed, a secret never made anew, codes never thrown away.
    fn here(&self, ctx: &Value) -> String {
        let path = self.request.target.path.as_str();
        let method = &self.session.req_header().method;
        if method == http::Method::GET || method == http::Method::HEAD {
            return pages::without_lang(path, self.request.target.query.as_deref());
        }
        let return_to = ctx
            .get_attr("return_to")
            .ok()
            .and_then(|v| v.as_str().map(safe_return))
            .unwrap_or_else(|| "/".into());
        let twin = match path {
            "/.vigie/factor/totp" | "/.vigie/factor/recovery" => FACTOR_PATH,
            "/.vigie/enroll/invitation" => "/.vigie/enroll",
            p if p.starts_with(crate::policy::ACCOUNT_PATH) => {
                return crate::policy::ACCOUNT_PATH.into()
            }
            p => p,
        };
        format!("{twin}?return={}", encode(&return_to))
    }

    /// Render a page in the visitor's language (remembering an explicit `?lang=` choice).
    async fn page(
        &mut self,
        status: u16,
        template: &str,
        ctx: Value,
        script: bool,
    ) -> Result<u16, Refusal> {
        let here = self.here(&ctx);
        let switch = pages::language_url(&here, self.lang);
        let ctx = minijinja::context! { user => self.user.clone(), script, ..ctx };
        let html = pages::render(
            template,
            self.lang,
            Some(&switch),
            &self.portal.config.brand,
            ctx,
        );
        let mut headers = Vec::new();
        if self.query("lang").is_some() {
            headers.push(("set-cookie", pages::language_cookie(self.lang)));
        }
        let page = Page {
            status,
            html,
            script,
            headers,
        };
        respond::send_page(self.session, page)
            .await
            .map_err(|_| Refusal::framing(400, Reason::PageIo))?;
        Ok(status)
    }

    async fn redirect(&mut self, location: &str, cookies: &[String]) -> Result<u16, Refusal> {
        respond::send_redirect(self.session, location, cookies)
            .await
            .map_err(|_| Refusal::framing(400, Reason::PageIo))?;
        Ok(303)
    }

    async fn json(
        &mut self,
        status: u16,
        json: String,
        cookies: &[String],
    ) -> Result<u16, Refusal> {
        respond::send_api(self.session, status, json, cookies)
            .await
            .map_err(|_| Refusal::framing(400, Reason::PageIo))?;
        Ok(status)
    }

    /// A ceremony's WebAuthn options for the browser, or why there are none.
    async fn options(
        &mut self,
        options: Option<String>,
        status: u16,
        why: &str,
    ) -> Result<u16, Refusal> {
        match options {
            Some(json) => self.json(200, json, &[]).await,
            None => self.json_error(status, why).await,
        }
    }

    async fn json_error(&mut self, status: u16, message: &str) -> Result<u16, Refusal> {
        let body = serde_json::json!({ "error": message }).to_string();
        self.json(status, body, &[]).await
    }

    /// Replace the session by one with a new id, changed by `change`; returns its cookie.
    /// The store refuses it, in the same step, if the account was locked or this session
    /// ended meanwhile, or if a privileged pack's cap is reached.
    async fn rotate(&mut self, change: impl FnOnce(&mut SessionRecord)) -> Result<String, Refusal> {
        let mut next = (*self.record).clone();
        next.id = SessionId::random();
        change(&mut next);
        let pack = self.config.policy.pack_for(&next.groups);
        let begun = self
            .sessions
            .begin(next.clone(), Some(&self.record.id), pack, self.request.tls)
            .await
            .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?;
        if !matches!(begun, Begun::Started(_)) {
            tracing::warn!(target: "vigie::audit", event = "second_factor", outcome = ?begun, user = %self.user);
        }
        let cookie = super::refusal::started(begun)?;
        self.record = Arc::new(next);
        Ok(cookie)
    }

    /// A factor was proven: raise the level, stamp the time, new session id. `proof`: a
    /// factor the user already had (not one just enrolled), which meets a detector step-up.
    async fn upgrade(
        &mut self,
        level: AuthLevel,
        method: &str,
        proof: Proof,
    ) -> Result<String, Refusal> {
        let (proof, strongest) = match proof {
            Proof::Had { strongest } => (true, strongest),
            // Binding a first factor (or after a reset): it is the strongest the user has.
            Proof::Enrolled => (false, true),
        };
        let now = self.now();
        let now_us = self.sessions.now_us();
        self.factors
            .succeeded(&self.user, self.request.client.ip)
            .await
            .map_err(store_down)?;
        let cookie = self
            .rotate(|r| {
                r.level = r.level.max(level);
                r.second_factor_at = Some(now);
                if level == AuthLevel::PhishingResistant {
                    r.phishing_resistant_at = Some(now);
                }
                if proof {
                    r.proof_at_us = Some(now_us);
                    // A factor the user already had, proven anew: a session that replaced a
                    // lost one with a recovery code is an ordinary one again.
                    r.lost_replaced &= method == "recovery";
                }
                // A proof sets the method and its strength; an enrollment does only for a
                // session that had none (a first factor, a reset): binding a factor proves
                // nothing more about the one who asked.
                if proof || r.factor_method.is_none() {
                    r.factor_method = Some(method.to_string());
                    r.strongest_proof = strongest;
                }
                r.pending_totp = None;
                r.reset_pending = false;
            })
            .await?;
        crate::metrics::METRICS
            .factor_successes
            .with_label_values(&[method])
            .inc();
        tracing::info!(target: "vigie::audit", event = "second_factor", outcome = "success", method, user = %self.user, portal = %self.portal.config.name, client = %self.request.client.ip, session = %self.fp(), auth_level = self.record.level.label());
        Ok(cookie)
    }

    /// Update the session in place (same id): pending enrollment data, shown codes. Applied
    /// to the stored record (read again if another request changed it); a session that ended
    /// meanwhile stays ended, and the page answers as to a visitor without one.
    async fn save_record(&mut self, change: impl Fn(&mut SessionRecord)) -> Result<(), Refusal> {
        let stored = self
            .sessions
            .change(&self.record, change)
            .await
            .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?;
        self.record = stored.ok_or(Refusal::new(401, Reason::LoginRequired))?;
        Ok(())
    }

    /// Seconds to wait before another attempt (per user and per source).
    async fn wait_left(&self) -> Result<u64, Refusal> {
        self.factors
            .wait_left(&self.user, self.request.client.ip)
            .await
            .map_err(store_down)
    }

    async fn locked(&self) -> Result<bool, Refusal> {
        let lock = self.sessions.locks.locked(&self.user).await;
        Ok(lock
            .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?
            .is_some())
    }

    /// Count an attempt before verifying it (a locked account answers 423; while the user
    /// or the source must wait, 429 is answered and `Err` returned).
    async fn gate(&mut self, json: bool) -> Result<Result<(), u16>, Refusal> {
        if self.locked().await? {
            return Err(Refusal::new(423, Reason::AccountLocked));
        }
        let gate = self
            .factors
            .begin_attempt(&self.user, self.request.client.ip)
            .await
            .map_err(store_down)?;
        match gate {
            Ok(()) => Ok(Ok(())),
            Err(wait) => Ok(Err(self.too_soon(wait, json).await?)),
        }
    }

    /// The start of every form attempt: read the form and its return path, then count the
    /// attempt ([`Visit::gate`]).
    async fn attempt(&mut self) -> Result<Result<(Vec<(String, String)>, String), u16>, Refusal> {
        let form = self.form().await?;
        let return_to = safe_return(&field(&form, "return"));
        if let Err(status) = self.gate(false).await? {
            return Ok(Err(status));
        }
        Ok(Ok((form, return_to)))
    }

    /// Answer 429 with `Retry-After` and a readable page.
    async fn too_soon(&mut self, wait: u64, json: bool) -> Result<u16, Refusal> {
        tracing::warn!(target: "vigie::audit", event = "second_factor", outcome = "throttled", user = %self.user, client = %self.request.client.ip, wait);
        if json {
            let body = serde_json::json!({ "error": "too many attempts", "retry_after": wait })
                .to_string();
            respond::send_api(self.session, 429, body, &[])
                .await
                .map_err(|_| Refusal::framing(400, Reason::PageIo))?;
            return Ok(429);
        }
        let way_out = pages::WayOut {
            wait: Some(wait),
            signed_in: true,
            ..Default::default()
        };
        let html = pages::error_page(
            429,
            self.request_id,
            self.lang,
            &way_out,
            &self.portal.config.brand,
        );
        let page = Page {
            status: 429,
            html,
            script: false,
            headers: vec![("retry-after", wait.to_string())],
        };
        respond::send_page(self.session, page)
            .await
            .map_err(|_| Refusal::framing(400, Reason::PageIo))?;
        Ok(429)
    }

    /// A failed attempt (already counted by [`Visit::gate`]). At the limit the account locks,
    /// its sessions end everywhere, and the 423 page is the answer; otherwise returns how many
    /// attempts are left.
    async fn failed(&mut self, method: &str) -> Result<Result<u32, u16>, Refusal> {
        let count = self
            .factors
            .failures(&self.user)
            .await
            .map_err(store_down)?;
        let max = self.factors.config.max_failures;
        tracing::warn!(target: "vigie::audit", event = "second_factor", outcome = "failure", method, user = %self.user, portal = %self.portal.config.name, client = %self.request.client.ip, session = %self.fp(), consecutive = count);
        crate::metrics::METRICS
            .factor_failures
            .with_label_values(&[method])
            .inc();
        if count < max {
            return Ok(Ok(max - count));
        }
        let reason = format!("{count} consecutive second-factor failures");
        self.sessions
            .lock_user(&self.user, &reason)
            .await
            .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?;
        tracing::warn!(target: "vigie::audit", event = "account_lock", user = %self.user, reason = %reason, client = %self.request.client.ip, by = "second_factor_throttle");
        Ok(Err(423))
    }
}
