//! The SOC console: a listener of its own (`[console]`), pages rendered on the server in French
//! and English, no external asset, a strict CSP, every form CSRF-protected. Analysts are
//! local users in console roles (`soc`, `dpo`, `it`) who sign in with their password and a
//! passkey bound to the console's own relying party. Every action goes through the same
//! stores as the admin API and is recorded in the alert's history and the audit trail.
//!
//! One request flows: parse ([`Request`]) → who ([`Console::analyst`]) → may they
//! ([`roles::may`]) → the page ([`views`]) or the change ([`actions`]) → one response.

mod actions;
mod auth;
mod oversight;
pub mod render;
pub mod roles;
pub mod session;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::alerts::AlertStore;
use crate::config::ConsoleConfig;
use crate::factors::Factors;
use crate::identity::session::Clock;
use crate::identity::Sessions;
use crate::pages::Lang;
use crate::storage::users::UserStore;
use render::{Can, Frame};
use roles::{may, Action, Role};
use session::{Analyst, ConsoleSessions, Stage};

/// The session cookie (`__Host-` on TLS: Secure, path `/`, no domain).
const COOKIE: &str = "vigie_console";
const COOKIE_TLS: &str = "__Host-vigie_console";
/// The sign-in form's own token (double submit), before any session exists.
const LOGIN_COOKIE: &str = "vigie_console_login";
/// A form body's largest size.
const BODY_MAX: usize = 64 * 1024;

/// What the console works with.
pub struct Console {
    pub config: ConsoleConfig,
    pub sessions: ConsoleSessions,
    pub users: Arc<UserStore>,
    /// Passkeys bound to the console's relying party, kept as `console:<user>`.
    pub factors: Arc<Factors>,
    pub alerts: Option<AlertStore>,
    pub detector: Option<Arc<crate::detect::Detector>>,
    pub gateway: Arc<Sessions>,
    pub audit: crate::audit::AuditLog,
    pub clock: Arc<dyn Clock>,
    /// Failed sign-ins per name and per address: (count, first at).
    failures: Mutex<HashMap<String, (u32, u64)>>,
}

/// The key under which an analyst's console passkeys are kept (apart from any portal passkey:
/// another relying party).
pub fn factor_key(user: &str) -> String {
    format!("console:{user}")
}

/// A parsed request.
pub struct Request {
    pub method: http::Method,
    pub path: String,
    pub query: Option<String>,
    pub cookies: HashMap<String, String>,
    pub form: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub origin: Option<String>,
    pub client: Option<std::net::IpAddr>,
    pub lang: Lang,
}

impl Request {
    async fn read(session: &mut ServerSession) -> Result<Request, &'static str> {
        let head = session.req_header();
        let header = |name: &str| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let mut cookies = HashMap::new();
        for value in head.headers.get_all("cookie") {
            for kv in value.to_str().unwrap_or("").split(';') {
                if let Some((k, v)) = kv.trim().split_once('=') {
                    cookies
                        .entry(k.to_string())
                        .or_insert_with(|| v.to_string());
                }
            }
        }
        let lang_cookies: Vec<String> = cookies
            .get(crate::pages::LANG_COOKIE)
            .map(|v| format!("{}={v}", crate::pages::LANG_COOKIE))
            .into_iter()
            .collect();
        let refs: Vec<&str> = lang_cookies.iter().map(String::as_str).collect();
        let lang = Lang::choose(
            head.uri.query(),
            &refs,
            header("accept-language").as_deref(),
        );
        let (method, path, query) = (
            head.method.clone(),
            head.uri.path().to_string(),
            head.uri.query().map(str::to_string),
        );
        let origin = header("origin");
        let form_body = header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let mut body = Vec::new();
        if method == http::Method::POST {
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk);
                        if body.len() > BODY_MAX {
                            return Err("body too large");
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return Err("body unreadable"),
                }
            }
        }
        let form = match form_body {
            true => form_urlencoded::parse(&body).into_owned().collect(),
            false => Vec::new(),
        };
        Ok(Request {
            method,
            path,
            query,
            cookies,
            form,
            body,
            origin,
            client,
            lang,
        })
    }

    /// A form field (the last one given), trimmed.
    pub fn field(&self, name: &str) -> String {
        self.form
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    }

    /// The query's pairs.
    pub fn params(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Content-Security-Policy of every page; passkey pages add the console's own script.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const CSP_SCRIPT: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One response, with the headers every answer of the console carries.
pub struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    location: Option<String>,
    cookies: Vec<String>,
    script: bool,
}

impl Reply {
    pub fn html(status: u16, body: String, script: bool) -> Reply {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
            location: None,
            cookies: Vec::new(),
            script,
        }
    }

    pub fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: v.to_string().into_bytes(),
            location: None,
            cookies: Vec::new(),
            script: false,
        }
    }

    /// A 303 to a path of the console's own.
    pub fn see(location: &str) -> Reply {
        Reply {
            status: 303,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            location: Some(location.to_string()),
            cookies: Vec::new(),
            script: false,
        }
    }

    pub fn with_cookie(mut self, cookie: String) -> Reply {
        self.cookies.push(cookie);
        self
    }

    fn into_response(self, tls: bool) -> Response<Vec<u8>> {
        // A value that is not a valid header (never expected: locations are checked, cookies
        // made here) answers 500 rather than panicking the worker.
        let fallback = || {
            Response::builder()
                .status(500)
                .header("content-type", "text/plain")
                .header("cache-control", "no-store")
                .body(b"error\n".to_vec())
                .expect("static response parts are valid")
        };
        let mut b = Response::builder()
            .status(self.status)
            .header("content-type", self.content_type)
            .header("cache-control", "no-store")
            .header(
                "content-security-policy",
                if self.script { CSP_SCRIPT } else { CSP },
            )
            .header("x-content-type-options", "nosniff")
            // Not `no-referrer`: browsers then send `Origin: null` on form posts, which the
            // Origin check refuses.
            .header("referrer-policy", "same-origin")
            .header("x-frame-options", "DENY")
            .header("content-length", self.body.len());
        if tls {
            b = b.header("strict-transport-security", "max-age=31536000");
        }
        if let Some(l) = self.location {
            b = b.header("location", l);
        }
        for c in self.cookies {
            b = b.header("set-cookie", c);
        }
        b.body(self.body).unwrap_or_else(|_| fallback())
    }
}

fn asset(content_type: &'static str, text: &'static str) -> Reply {
    Reply {
        status: 200,
        content_type,
        body: text.as_bytes().to_vec(),
        location: None,
        cookies: Vec::new(),
        script: false,
    }
}

impl Console {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: ConsoleConfig,
        users: Arc<UserStore>,
        factors: Arc<Factors>,
        alerts: Option<AlertStore>,
        detector: Option<Arc<crate::detect::Detector>>,
        gateway: Arc<Sessions>,
        audit: crate::audit::AuditLog,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let sessions = ConsoleSessions::new(
            clock.clone(),
            config.idle.as_secs(),
            config.lifetime.as_secs(),
        );
        Self {
            config,
            sessions,
            users,
            factors,
            alerts,
            detector,
            gateway,
            audit,
            clock,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn tls(&self) -> bool {
        self.config.tls.is_some()
    }

    fn cookie_name(&self) -> &'static str {
        match self.tls() {
            true => COOKIE_TLS,
            false => COOKIE,
        }
    }

    /// The session cookie carrying `token` (`SameSite=Strict`: no other site's page sends it).
    fn session_cookie(&self, token: &str) -> String {
        let secure = if self.tls() { "; Secure" } else { "" };
        format!(
            "{}={token}; Path=/; HttpOnly; SameSite=Strict{secure}",
            self.cookie_name()
        )
    }

    fn clear_cookie(&self) -> String {
        let secure = if self.tls() { "; Secure" } else { "" };
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            self.cookie_name()
        )
    }

    /// The analyst behind the request, with their token. The account is read again at each
    /// request: disabled, removed, locked or out of every console role ends the session, and
    /// the roles are today's (a store that does not answer fails closed, ending nothing).
    async fn analyst(&self, req: &Request) -> Option<(String, Analyst)> {
        let token = req.cookies.get(self.cookie_name())?;
        let mut a = self.sessions.get(token)?;
        let (users, name) = (self.users.clone(), a.user.clone());
        let found = tokio::task::spawn_blocking(move || users.find(&name))
            .await
            .ok()?
            .ok()?;
        let roles = found
            .filter(|u| !u.disabled)
            .map(|u| self.roles_of(&u.groups))
            .unwrap_or_default();
        let locked = self.locked_now(&a.user);
        if roles.is_empty() || locked {
            self.sessions.end(token);
            let why = if locked {
                "account_locked"
            } else {
                "no_longer_allowed"
            };
            tracing::warn!(target: "vigie::audit", event = "console_session_ended", user = %a.user, reason = why, session = %a.fingerprint);
            return None;
        }
        a.roles = roles;
        Some((token.clone(), a))
    }

    /// The console roles of these groups.
    fn roles_of(&self, groups: &[String]) -> Vec<Role> {
        let c = &self.config;
        roles::of_groups(groups, &c.soc_groups, &c.dpo_groups, &c.it_groups)
    }

    /// Whether this replica knows `user` as locked (no I/O).
    fn locked_now(&self, user: &str) -> bool {
        let held = self.gateway.locks.held();
        held.contains(user) || held.contains(&user.to_lowercase())
    }

    /// Whether a POST comes from the console's own pages: an `Origin` it serves. Browsers send
    /// it on every POST; a request without one is refused (no other client needs the forms).
    fn same_origin(&self, req: &Request) -> bool {
        req.origin
            .as_deref()
            .is_some_and(|o| self.config.origins.iter().any(|ours| ours == o))
    }

    /// The frame of a page for `analyst`.
    fn frame(&self, req: &Request, analyst: Option<&Analyst>, page: &'static str) -> Frame {
        let roles: &[Role] = analyst.map_or(&[], |a| &a.roles);
        Frame {
            analyst: analyst
                .filter(|a| a.stage == Stage::Passkey || !self.config.require_passkey)
                .map(|a| a.user.clone()),
            roles: roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            csrf: analyst.map(|a| a.csrf.clone()).unwrap_or_default(),
            can: Can {
                alerts: may(roles, Action::ViewAlerts),
                triage: may(roles, Action::Triage),
                holds: may(roles, Action::ViewHolds),
                sessions: may(roles, Action::ViewSessions),
                revoke: may(roles, Action::RevokeSessions),
                break_glass: may(roles, Action::ReviewBreakGlass),
            },
            switch: {
                let here = crate::pages::without_lang(&req.path, req.query.as_deref());
                let q: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("set", if req.lang == Lang::Fr { "en" } else { "fr" })
                    .append_pair("return", &here)
                    .finish();
                format!("/lang?{q}")
            },
            page,
            flash: None,
            problem: None,
            live: false,
            script: false,
        }
    }

    /// A page with a title and a sentence (refusals, not found).
    fn message(
        &self,
        req: &Request,
        analyst: Option<&Analyst>,
        status: u16,
        title: &str,
        text: &str,
    ) -> Reply {
        let frame = self.frame(req, analyst, "");
        let html = render::render(
            "message.html",
            req.lang,
            &frame,
            minijinja::context! {
                title => render::message(req.lang, title),
                text => render::message(req.lang, text),
            },
        );
        Reply::html(status, html, false)
    }

    /// Refused for the role: said, and recorded.
    fn forbidden(&self, req: &Request, a: &Analyst, action: Action) -> Reply {
        tracing::warn!(target: "vigie::audit", event = "console_refused", user = %a.user, action = ?action, path = %req.path, roles = %a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","));
        self.message(req, Some(a), 403, "forbidden_title", "forbidden_text")
    }

    async fn handle(&self, req: Request) -> Reply {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/static/vigie.css") => return asset("text/css", crate::pages::STYLESHEET),
            ("GET", "/static/console.css") => return asset("text/css", render::STYLESHEET),
            ("GET", "/static/webauthn.js") => {
                return asset("text/javascript", crate::pages::SCRIPT)
            }
            ("GET", "/static/console.js") => return asset("text/javascript", render::SCRIPT),
            ("GET", "/lang") => return self.language(&req),
            ("GET", "/login") => return self.login_page(&req, false),
            _ => {}
        }
        if req.method == http::Method::POST && !self.same_origin(&req) {
            let origin: String = req
                .origin
                .as_deref()
                .unwrap_or("-")
                .chars()
                .filter(|c| !c.is_control())
                .take(80)
                .collect();
            let path: String = req.path.chars().take(80).collect();
            tracing::warn!(target: "vigie::audit", event = "console_refused", reason = "cross_origin", path = %path, origin = %origin);
            return self.message(&req, None, 403, "forbidden_title", "expired");
        }
        if (req.method.as_str(), req.path.as_str()) == ("POST", "/login") {
            return self.login(&req).await;
        }
        let Some((token, analyst)) = self.analyst(&req).await else {
            return match req.path.starts_with("/passkey/") && req.method == http::Method::POST {
                true => Reply::json(401, serde_json::json!({ "error": "signed out" })),
                false => Reply::see("/login"),
            };
        };
        if req.method == http::Method::POST
            && !req.path.starts_with("/passkey/")
            && !analyst.csrf_ok(&req.field("csrf"))
        {
            return self.message(&req, Some(&analyst), 403, "forbidden_title", "expired");
        }
        if (req.method.as_str(), req.path.as_str()) == ("POST", "/logout") {
            return self.logout(&token, &analyst);
        }
        if analyst.stage == Stage::Password && self.config.require_passkey {
            return self.passkey(&req, &token, &analyst).await;
        }
        match req.method {
            http::Method::GET => self.view(&req, &analyst).await,
            http::Method::POST => self.act(&req, &analyst).await,
            _ => self.message(
                &req,
                Some(&analyst),
                405,
                "not_found_title",
                "not_found_text",
            ),
        }
    }

    /// `GET /lang?set=en&return=/…`: the language cookie, and back (to a console path only).
    fn language(&self, req: &Request) -> Reply {
        let Some((cookie, back)) = crate::pages::language_switch(req.query.as_deref()) else {
            return Reply::see("/");
        };
        Reply::see(&local_path(&back)).with_cookie(cookie)
    }

    fn logout(&self, token: &str, analyst: &Analyst) -> Reply {
        self.sessions.end(token);
        tracing::info!(target: "vigie::audit", event = "console_logout", user = %analyst.user, session = %analyst.fingerprint);
        Reply::see("/login").with_cookie(self.clear_cookie())
    }
}

/// `back` if it is a path of the console's own (one `/`, no scheme, no backslash, no control
/// character browsers would strip into `//evil`), else `/`.
pub fn local_path(back: &str) -> String {
    let ok = back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && !back.chars().any(|c| c.is_control());
    match ok {
        true => back.to_string(),
        false => "/".into(),
    }
}

/// The console as a Pingora app.
pub struct ConsoleApp(pub Arc<Console>);

#[async_trait]
impl ServeHttp for ConsoleApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let tls = self.0.tls();
        let reply = match Request::read(session).await {
            Ok(req) => self.0.handle(req).await,
            Err(why) => Reply::json(400, serde_json::json!({ "error": why })),
        };
        reply.into_response(tls)
    }
}
