//! A small stand-in for a legacy EHR (modelled on Mediboard's URLs and login), so every
//! gateway feature and benchmark has a realistic portal to protect. Run it with
//! `vigie sample-portal`; `vigie demo` starts it behind the gateway.
//!
//! It behaves like such portals do: a login form with a CSRF token (hidden field plus
//! cookie), its own session cookie, patient pages addressed by `patient_id` with a
//! "current patient" kept in the session, an admin-only CSV export, a paged JSON API.

pub mod data;
mod html;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use data::{Patient, Role, ACCOUNTS};

/// Name of the portal's own session cookie, the one the gateway will hold back.
pub const SESSION_COOKIE: &str = "mediboard_session";
/// Pre-login CSRF cookie, which must keep working through the gateway.
pub const CSRF_COOKIE: &str = "mediboard_csrf";
/// Default patient count and seed.
pub const DEFAULT_PATIENTS: u32 = 5000;
pub const SEED: u64 = 0x5EED_2024;
/// Sessions kept at most; the oldest go first, so anonymous floods cannot grow memory.
const MAX_SESSIONS: usize = 50_000;
const PAGE_SIZE: usize = 50;
/// The JSON API accepts large pages, as careless real portals do: detection must cope.
const MAX_API_LIMIT: usize = 10_000;

struct PortalSession {
    username: &'static str,
    role: Role,
    current_patient: Option<u32>,
    created: u64,
    /// What the strict logout form must carry.
    logout_token: String,
}

pub struct SamplePortal {
    patients: Vec<Patient>,
    sessions: Mutex<HashMap<String, PortalSession>>,
    /// PHP-style portals open their session on the login page and keep the CSRF token in it.
    session_before_login: bool,
    /// Pre-login session id -> CSRF token (only with `session_before_login`).
    pre_login: Mutex<HashMap<String, String>>,
    counter: std::sync::atomic::AtomicU64,
    bench_1k: Vec<u8>,
    bench_64k: Vec<u8>,
    accounts: Vec<data::Account>,
    /// Log out only by `POST /logout` with the session's token; a `GET` logout gets 405
    /// (as Django and other CSRF-protected portals do).
    strict_logout: bool,
    /// Bytes of posted forms received (for tests: what reached the portal of a refused one).
    form_bytes: std::sync::atomic::AtomicU64,
    /// Requests other than GET and HEAD received, counted on their head (for tests: a refused
    /// one must not have reached the portal at all, even without a body).
    posts: std::sync::atomic::AtomicU64,
}

type Reply = Response<Vec<u8>>;

fn head(status: u16, content_type: &str) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
}

fn html(status: u16, body: String) -> Reply {
    finish(head(status, "text/html; charset=utf-8"), body.into_bytes())
}

fn finish(builder: http::response::Builder, body: Vec<u8>) -> Reply {
    builder
        .header("content-length", body.len())
        .body(body)
        .expect("response parts are valid")
}

fn redirect(location: &str, cookies: &[String]) -> Reply {
    let mut b = Response::builder()
        .status(302)
        .header("location", location)
        .header("cache-control", "no-store");
    for c in cookies {
        b = b.header("set-cookie", c);
    }
    finish(b, Vec::new())
}

fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Constant-time comparison, so the demo portal does not teach bad habits.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie<'a>(session: &'a ServerSession, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The portal reads parameters as its profile declares (`[request]` in
/// config/profiles/sample-portal.toml: PHP 8 with its defaults), through the gateway's own
/// reader, so the demo shows what a PHP portal would do with a crafted request.
pub(crate) fn reading() -> crate::http::RequestSpec {
    crate::http::RequestSpec::php()
}

/// The scalar parameters (arrays are not values this portal reads).
fn scalars(vars: &crate::http::Vars) -> HashMap<String, String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    vars.map
        .iter()
        .filter_map(|(k, v)| match v {
            crate::http::Value::Scalar(v) => Some((text(k), text(v))),
            crate::http::Value::Array => None,
        })
        .collect()
}

fn params(query: Option<&str>) -> HashMap<String, String> {
    let all = crate::http::Wanted::all();
    scalars(&crate::http::read_query(
        &reading(),
        query.unwrap_or("").as_bytes(),
        &all,
    ))
}

impl SamplePortal {
    pub fn new(patient_count: u32) -> Self {
        let line = b"Vigie sample portal benchmark payload. ";
        let fill = |n: usize| line.iter().copied().cycle().take(n).collect::<Vec<u8>>();
        Self {
            patients: data::generate(patient_count, SEED),
            sessions: Mutex::new(HashMap::new()),
            session_before_login: false,
            pre_login: Mutex::new(HashMap::new()),
            counter: std::sync::atomic::AtomicU64::new(0),
            bench_1k: fill(1024),
            bench_64k: fill(64 * 1024),
            accounts: ACCOUNTS.to_vec(),
            strict_logout: false,
            form_bytes: std::sync::atomic::AtomicU64::new(0),
            posts: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Log out only by a `POST /logout` carrying the session's token (405 on `GET`).
    pub fn with_strict_logout(mut self) -> Self {
        self.strict_logout = true;
        self
    }

    /// The strict logout: the session's token in the form, else 403; the session ends.
    async fn strict_logout(&self, session: &mut ServerSession) -> Reply {
        let form = self.read_form(session).await.unwrap_or_default();
        let sent = form.get("csrf_token").map(String::as_str).unwrap_or("");
        let Some(sid) = cookie(session, SESSION_COOKIE).map(str::to_string) else {
            return redirect("/index.php", &[]);
        };
        let mut sessions = self.sessions.lock().expect("session lock");
        let token_ok = sessions
            .get(&sid)
            .is_some_and(|s| same(s.logout_token.as_bytes(), sent.as_bytes()));
        if !token_ok {
            return html(
                403,
                html::message("Jeton invalide", None, "La déconnexion a été refusée."),
            );
        }
        sessions.remove(&sid);
        redirect(
            "/index.php",
            &[format!("{SESSION_COOKIE}=; Path=/; Max-Age=0")],
        )
    }

    /// In strict mode, signed-in pages log out with a form carrying the session's token.
    fn logout_form(&self, session: &ServerSession, mut reply: Reply) -> Reply {
        let token = cookie(session, SESSION_COOKIE).and_then(|sid| {
            let sessions = self.sessions.lock().expect("session lock");
            sessions.get(sid).map(|s| s.logout_token.clone())
        });
        let (Some(token), true) = (token, self.strict_logout) else {
            return reply;
        };
        let link = html::LOGOUT_LINK.as_bytes();
        let body = reply.body_mut();
        if let Some(at) = body.windows(link.len()).position(|w| w == link) {
            let form = format!(
                "<form method=\"post\" action=\"/logout\" class=\"logout\"><input type=\"hidden\" name=\"csrf_token\" value=\"{token}\"><button>Déconnexion</button></form>"
            );
            body.splice(at..at + link.len(), form.into_bytes());
            let len = body.len();
            reply.headers_mut().insert("content-length", len.into());
        }
        reply
    }

    /// More accounts than the demo's four (the traffic simulator signs in a whole ward).
    pub fn with_accounts(mut self, more: impl IntoIterator<Item = data::Account>) -> Self {
        self.accounts.extend(more);
        self
    }

    /// Behave like PHP portals that open their session (and keep the login form's CSRF token
    /// in it) before anyone logs in.
    pub fn with_session_before_login(mut self) -> Self {
        self.session_before_login = true;
        self
    }

    fn patient(&self, id: u32) -> Option<&Patient> {
        id.checked_sub(1)
            .and_then(|i| self.patients.get(i as usize))
    }

    fn user_of(&self, session: &ServerSession) -> Option<(String, &'static str, Role)> {
        let sid = cookie(session, SESSION_COOKIE)?;
        let sessions = self.sessions.lock().expect("session lock");
        sessions
            .get(sid)
            .map(|s| (sid.to_string(), s.username, s.role))
    }

    fn login_page(&self, session: &ServerSession, error: Option<&str>, status: u16) -> Reply {
        let csrf = random_token();
        if self.session_before_login {
            let mut pre = self.pre_login.lock().expect("pre-login lock");
            if pre.len() >= MAX_SESSIONS {
                pre.clear();
            }
            let (sid, fresh) =
                match cookie(session, SESSION_COOKIE).filter(|sid| pre.contains_key(*sid)) {
                    Some(sid) => (sid.to_string(), false),
                    None => (random_token(), true),
                };
            pre.insert(sid.clone(), csrf.clone());
            let mut b = head(status, "text/html; charset=utf-8");
            if fresh {
                b = b.header(
                    "set-cookie",
                    format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly"),
                );
            }
            return finish(b, html::login(&csrf, error).into_bytes());
        }
        let b = head(status, "text/html; charset=utf-8").header(
            "set-cookie",
            format!("{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Lax"),
        );
        finish(b, html::login(&csrf, error).into_bytes())
    }

    /// The CSRF token the login form must carry.
    fn expected_csrf(&self, session: &ServerSession) -> String {
        if self.session_before_login {
            let pre = self.pre_login.lock().expect("pre-login lock");
            return cookie(session, SESSION_COOKIE)
                .and_then(|sid| pre.get(sid).cloned())
                .unwrap_or_default();
        }
        cookie(session, CSRF_COOKIE).unwrap_or("").to_string()
    }

    /// `$_POST`: a urlencoded or multipart body, read as PHP under Apache's mod_php reads it:
    /// a body cut short (its sender gone) is read for what came; past `post_max_size`,
    /// nothing is (`None`).
    async fn read_form(&self, session: &mut ServerSession) -> Option<HashMap<String, String>> {
        let head = session.req_header();
        let content_type = head
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let method = head.method.as_str().to_string();
        let mut reader = crate::http::BodyReader::new(
            &reading(),
            crate::http::Wanted::all(),
            &method,
            content_type.as_deref(),
            None,
        );
        while let Ok(Some(chunk)) = session.read_request_body().await {
            self.form_bytes
                .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            reader.feed(&chunk);
        }
        reader.finish();
        (!reader.unreadable()).then(|| scalars(reader.post()))
    }

    async fn login(&self, session: &mut ServerSession) -> Reply {
        let Some(form) = self.read_form(session).await else {
            return html(
                413,
                html::message(
                    "Formulaire trop volumineux",
                    None,
                    "Le formulaire envoyé est trop volumineux.",
                ),
            );
        };
        let sent = form.get("csrf_token").map(String::as_str).unwrap_or("");
        let expected = self.expected_csrf(session);
        if expected.is_empty() || !same(sent.as_bytes(), expected.as_bytes()) {
            return self.login_page(
                session,
                Some("Jeton CSRF invalide, veuillez réessayer."),
                403,
            );
        }
        let username = form.get("username").map(String::as_str).unwrap_or("");
        let password = form.get("password").map(String::as_str).unwrap_or("");
        // Compare against every account so unknown users cost the same as wrong passwords.
        let mut found = None;
        for a in &self.accounts {
            let user_ok = same(a.username.as_bytes(), username.as_bytes());
            let pass_ok = same(a.password.as_bytes(), password.as_bytes());
            if user_ok && pass_ok {
                found = Some(a);
            }
        }
        let Some(account) = found else {
            return self.login_page(session, Some("Identifiant ou mot de passe incorrect."), 200);
        };
        // A new id at login (PHP's session_regenerate_id); the pre-login session ends.
        if let Some(old) = cookie(session, SESSION_COOKIE) {
            self.pre_login.lock().expect("pre-login lock").remove(old);
        }
        let sid = random_token();
        let created = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut sessions = self.sessions.lock().expect("session lock");
            if sessions.len() >= MAX_SESSIONS {
                if let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.created)
                    .map(|(k, _)| k.clone())
                {
                    sessions.remove(&oldest);
                }
            }
            sessions.insert(
                sid.clone(),
                PortalSession {
                    username: account.username,
                    role: account.role,
                    current_patient: None,
                    created,
                    logout_token: random_token(),
                },
            );
        }
        redirect(
            "/index.php?m=dPpatients&tab=vw_idx_patients",
            &[
                format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"),
                format!("{CSRF_COOKIE}=; Path=/; Max-Age=0"),
            ],
        )
    }

    fn logout(&self, session: &ServerSession) -> Reply {
        if let Some(sid) = cookie(session, SESSION_COOKIE) {
            self.sessions.lock().expect("session lock").remove(sid);
        }
        redirect(
            "/index.php",
            &[format!("{SESSION_COOKIE}=; Path=/; Max-Age=0")],
        )
    }

    fn index(&self, session: &ServerSession, q: &HashMap<String, String>) -> Reply {
        let Some((sid, username, role)) = self.user_of(session) else {
            return self.login_page(session, None, 200);
        };
        let user = (username, role);
        let m = q.get("m").map(String::as_str).unwrap_or("dPpatients");
        if m != "dPpatients" {
            return html(
                404,
                html::message(
                    "Module inconnu",
                    Some(user),
                    "Ce module n'existe pas dans le portail de démonstration.",
                ),
            );
        }
        if q.get("raw").map(String::as_str) == Some("ajax_export_patients_csv") {
            return self.export_csv(user);
        }
        match q
            .get("tab")
            .map(String::as_str)
            .unwrap_or("vw_idx_patients")
        {
            "vw_full_patients" => {
                let id = match q.get("patient_id") {
                    Some(raw) => raw.parse::<u32>().ok(),
                    None => self
                        .sessions
                        .lock()
                        .expect("session lock")
                        .get(&sid)
                        .and_then(|s| s.current_patient),
                };
                let Some(p) = id.and_then(|id| self.patient(id)) else {
                    return html(
                        404,
                        html::message(
                            "Patient introuvable",
                            Some(user),
                            "Aucun patient ne correspond.",
                        ),
                    );
                };
                if let Some(s) = self.sessions.lock().expect("session lock").get_mut(&sid) {
                    s.current_patient = Some(p.id);
                }
                html(200, html::patient(user, p))
            }
            "vw_idx_patients" => {
                let query = q.get("q").map(|s| s.to_uppercase()).unwrap_or_default();
                let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
                let matching: Vec<&Patient> = self
                    .patients
                    .iter()
                    .filter(|p| query.is_empty() || p.nom.contains(&query))
                    .collect();
                let start = page.saturating_mul(PAGE_SIZE).min(matching.len());
                let end = (start + PAGE_SIZE).min(matching.len());
                html(
                    200,
                    html::patient_list(
                        user,
                        &matching[start..end],
                        &query,
                        page,
                        end < matching.len(),
                    ),
                )
            }
            _ => html(
                404,
                html::message("Onglet inconnu", Some(user), "Cet onglet n'existe pas."),
            ),
        }
    }

    fn export_csv(&self, user: (&str, Role)) -> Reply {
        if user.1 != Role::Admin {
            return html(
                403,
                html::message(
                    "Accès refusé",
                    Some(user),
                    "L'export est réservé aux administrateurs.",
                ),
            );
        }
        let mut csv = String::from("id;ipp;nom;prenom;naissance;sexe;service;motif;medecin\n");
        for p in &self.patients {
            csv.push_str(&format!(
                "{};{};{};{};{};{};{};{};{}\n",
                p.id, p.ipp, p.nom, p.prenom, p.naissance, p.sexe, p.service, p.motif, p.medecin
            ));
        }
        let b = head(200, "text/csv; charset=utf-8").header(
            "content-disposition",
            "attachment; filename=\"patients.csv\"",
        );
        finish(b, csv.into_bytes())
    }

    fn api(&self, session: &ServerSession, path: &str, q: &HashMap<String, String>) -> Reply {
        if self.user_of(session).is_none() {
            return finish(
                head(401, "application/json"),
                br#"{"error":"not authenticated"}"#.to_vec(),
            );
        }
        let json = |status: u16, v: serde_json::Value| {
            finish(head(status, "application/json"), v.to_string().into_bytes())
        };
        let rest = path.trim_start_matches("/api/dossierpatient/patients");
        if rest.is_empty() || rest == "/" {
            let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
            let limit: usize = q
                .get("limit")
                .and_then(|v| v.parse().ok())
                .unwrap_or(PAGE_SIZE)
                .min(MAX_API_LIMIT);
            let start = offset.min(self.patients.len());
            let end = start.saturating_add(limit).min(self.patients.len());
            return json(
                200,
                serde_json::json!({ "total": self.patients.len(), "offset": start, "limit": limit, "patients": &self.patients[start..end] }),
            );
        }
        match rest
            .trim_start_matches('/')
            .parse::<u32>()
            .ok()
            .and_then(|id| self.patient(id))
        {
            Some(p) => json(200, serde_json::json!(p)),
            None => json(404, serde_json::json!({ "error": "no such patient" })),
        }
    }
}

#[async_trait]
impl ServeHttp for SamplePortal {
    async fn response(&self, session: &mut ServerSession) -> Reply {
        let method = session.req_header().method.clone();
        let uri = session.req_header().uri.clone();
        if method != http::Method::GET && method != http::Method::HEAD {
            self.posts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let q = params(uri.query());
        let gzip = accepts_gzip(session.req_header());
        let reply = match (method.as_str(), uri.path()) {
            ("GET", "/static/bench-1k.txt") => {
                finish(head(200, "text/plain"), self.bench_1k.clone())
            }
            ("GET", "/static/bench-64k.txt") => {
                finish(head(200, "text/plain"), self.bench_64k.clone())
            }
            ("GET", "/style.css") => finish(head(200, "text/css"), html::STYLE.as_bytes().to_vec()),
            ("GET", "/") => redirect("/index.php", &[]),
            // For tests and operators: how many portal sessions are open (no personal data).
            ("GET", "/status") => {
                let n = self.sessions.lock().expect("session lock").len();
                let posted = self.form_bytes.load(std::sync::atomic::Ordering::Relaxed);
                let posts = self.posts.load(std::sync::atomic::Ordering::Relaxed);
                let status =
                    serde_json::json!({"sessions": n, "form_bytes": posted, "posts": posts});
                finish(
                    head(200, "application/json"),
                    status.to_string().into_bytes(),
                )
            }
            ("GET", "/index.php") if q.contains_key("logout") && self.strict_logout => {
                let b = head(405, "text/html; charset=utf-8").header("allow", "POST");
                finish(b, b"Method Not Allowed".to_vec())
            }
            ("POST", "/logout") if self.strict_logout => self.strict_logout(session).await,
            ("GET", "/index.php") if q.contains_key("logout") => self.logout(session),
            ("POST", "/index.php") => self.login(session).await,
            ("GET" | "HEAD", "/index.php") => self.index(session, &q),
            ("GET", p) if p.starts_with("/api/dossierpatient/patients") => {
                let p = p.to_string();
                self.api(session, &p, &q)
            }
            _ => html(
                404,
                html::message("Page introuvable", None, "Cette page n'existe pas."),
            ),
        };
        let reply = self.logout_form(session, reply);
        if gzip {
            compressed(reply)
        } else {
            reply
        }
    }
}

/// Whether the browser takes gzip (as most portals' web servers do, pages and JSON are then
/// sent compressed: the gateway must count them all the same).
fn accepts_gzip(req: &pingora::http::RequestHeader) -> bool {
    req.headers
        .get_all("accept-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("gzip")
        })
}

/// Pages and JSON over 1 KiB, gzip-encoded.
fn compressed(reply: Reply) -> Reply {
    use std::io::Write;
    let (mut parts, body) = reply.into_parts();
    let text = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let fits =
        text.is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"));
    if !fits || body.len() < 1024 {
        return Response::from_parts(parts, body);
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let gz = e.write_all(&body).and_then(|_| e.finish());
    let Ok(gz) = gz else {
        return Response::from_parts(parts, body);
    };
    parts
        .headers
        .insert("content-encoding", http::HeaderValue::from_static("gzip"));
    parts
        .headers
        .insert("vary", http::HeaderValue::from_static("accept-encoding"));
    parts.headers.insert("content-length", gz.len().into());
    Response::from_parts(parts, gz)
}
