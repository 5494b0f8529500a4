//! Signing in to the console: a local user's password, a console role from their groups, then
//! a passkey of the console's relying party (a first one only with an invitation IT handed
//! over in person). Failures are counted per name and per address; after too many, sign-ins
//! wait. Every outcome is audited.

use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::roles::{self, Role};
use super::session::{Analyst, Stage};
use super::{factor_key, render, Console, Reply, Request, LOGIN_COOKIE};
use crate::factors::{Binding, Verdict};

/// Failures before sign-ins wait: of one name from one address (a guesser), of one name from
/// anywhere (a spread guesser), from one address (many names). The last two are higher, so
/// someone who knows an analyst's name cannot easily keep them out, nor a SOC behind one
/// NAT address; IT sees every refusal in the trail.
const PAIR_FAILURES: u32 = 5;
const NAME_FAILURES: u32 = 20;
const ADDRESS_FAILURES: u32 = 50;
/// Wrong invitation codes before the console stops taking them from that analyst.
const INVITATION_FAILURES: u32 = 5;
/// How long they wait, and how long failures are remembered.
const FAILURE_WINDOW: u64 = 15 * 60;

impl Console {
    /// `GET /login`: the form, with a fresh double-submit token in its own cookie.
    pub(super) fn login_page(&self, req: &Request, failed: bool) -> Reply {
        let token = req
            .cookies
            .get(LOGIN_COOKIE)
            .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .cloned()
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        let frame = self.frame(req, None, "login");
        let html = render::render(
            "login.html",
            req.lang,
            &frame,
            minijinja::context! { failed, login_csrf => &token },
        );
        let secure = if self.tls() { "; Secure" } else { "" };
        Reply::html(if failed { 401 } else { 200 }, html, false).with_cookie(format!(
            "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict{secure}"
        ))
    }

    /// Whether `key` has failed too often lately.
    fn waiting(&self, key: &str, limit: u32) -> bool {
        let now = self.clock.now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .is_some_and(|(n, at)| *n >= limit && now < at + FAILURE_WINDOW)
    }

    fn failed(&self, key: String) {
        let now = self.clock.now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, (_, at)| now < *at + FAILURE_WINDOW);
        let entry = map.entry(key).or_insert((0, now));
        entry.0 += 1;
    }

    /// `POST /login`: the password, then the role; one answer for every failure.
    pub(super) async fn login(&self, req: &Request) -> Reply {
        let sent = req.field("csrf");
        let expected = req.cookies.get(LOGIN_COOKIE).cloned().unwrap_or_default();
        if sent.is_empty()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(
                sent.as_bytes(),
                expected.as_bytes(),
            ))
        {
            return self.message(req, None, 403, "forbidden_title", "expired");
        }
        let user = req.field("username");
        let password = req.field("password");
        let ip = req.client.map(|ip| ip.to_string()).unwrap_or_default();
        let address = format!("ip:{ip}");
        if password.is_empty() || !crate::storage::users::valid_name(&user) {
            // Not a user name (a password typed in the wrong field, a flood of bytes): refused
            // before any lookup, and never written to the trail.
            self.failed(address.clone());
            tracing::warn!(target: "vigie::audit", event = "console_login", outcome = "failure", user = "-", invalid_name = true, name_chars = user.chars().count(), client = %ip);
            return self.login_page(req, true);
        }
        let name_key = format!("user:{user}");
        let pair_key = format!("pair:{user}:{ip}");
        if self.waiting(&pair_key, PAIR_FAILURES)
            || self.waiting(&name_key, NAME_FAILURES)
            || self.waiting(&address, ADDRESS_FAILURES)
        {
            tracing::warn!(target: "vigie::audit", event = "console_login", outcome = "throttled", user = %user, client = %ip);
            return self.login_page(req, true);
        }
        let users = self.users.clone();
        let (name, pw) = (user.clone(), password);
        let checked = tokio::task::spawn_blocking(move || users.verify(&name, &pw)).await;
        let found = match checked {
            Ok(Ok(found)) => found,
            _ => {
                tracing::error!(target: "vigie::audit", event = "console_login", outcome = "store_error", user = %user);
                return self.message(req, None, 503, "forbidden_title", "unavailable");
            }
        };
        let roles: Vec<Role> = found.as_ref().map_or_else(Vec::new, |u| {
            let c = &self.config;
            roles::of_groups(&u.groups, &c.soc_groups, &c.dpo_groups, &c.it_groups)
        });
        let locked = match self.gateway.locks.locked(&user).await {
            Ok(l) => l.is_some() || self.locked_now(&user),
            // Fail closed: a lock store that does not answer lets nobody in.
            Err(_) => true,
        };
        if found.is_none() || roles.is_empty() || locked {
            self.failed(name_key);
            self.failed(pair_key);
            self.failed(address.clone());
            let outcome = match (found.is_none(), locked) {
                (true, _) => "failure",
                (false, true) => "locked",
                (false, false) => "no_role",
            };
            tracing::warn!(target: "vigie::audit", event = "console_login", outcome, user = %user, client = %ip);
            return self.login_page(req, true);
        }
        let stage = match self.config.require_passkey {
            true => Stage::Password,
            false => Stage::Passkey,
        };
        let token = self.sessions.begin(&user, roles.clone(), stage);
        let roles_text: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        tracing::info!(target: "vigie::audit", event = "console_login", outcome = "password", user = %user, roles = %roles_text.join(","), client = %ip);
        let next = if stage == Stage::Password {
            "/passkey"
        } else {
            "/"
        };
        Reply::see(next).with_cookie(self.session_cookie(&token))
    }

    /// The passkey step: the page, the invitation, and the WebAuthn ceremonies.
    pub(super) async fn passkey(&self, req: &Request, token: &str, a: &Analyst) -> Reply {
        let key = factor_key(&a.user);
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/passkey/invitation") => {
                let tries = format!("invite:{}", a.user);
                if self.waiting(&tries, INVITATION_FAILURES) {
                    tracing::warn!(target: "vigie::audit", event = "console_invitation", outcome = "throttled", user = %a.user);
                    return self.passkey_page(req, a, true).await;
                }
                let code = req.field("code");
                match self.factors.redeem(&key, &code).await {
                    Ok(Verdict::Accepted) => {
                        self.sessions.mark_invited(token);
                        tracing::warn!(target: "vigie::audit", event = "console_invitation", outcome = "accepted", user = %a.user);
                        Reply::see("/passkey")
                    }
                    _ => {
                        self.failed(tries);
                        tracing::warn!(target: "vigie::audit", event = "console_invitation", outcome = "refused", user = %a.user);
                        self.passkey_page(req, a, true).await
                    }
                }
            }
            ("POST", "/passkey/auth/start") => {
                match self
                    .factors
                    .start_authentication(&key, &a.fingerprint)
                    .await
                {
                    Ok(Some(options)) => json_text(&options),
                    _ => Reply::json(400, json!({ "error": "no passkey" })),
                }
            }
            ("POST", "/passkey/auth/finish") => {
                let answer = serde_json::from_slice::<serde_json::Value>(&req.body)
                    .ok()
                    .and_then(|v| {
                        serde_json::from_value::<PublicKeyCredential>(v["credential"].clone()).ok()
                    });
                let Some(answer) = answer else {
                    return Reply::json(400, json!({ "error": "malformed answer" }));
                };
                let verdict = self
                    .factors
                    .finish_authentication(&key, &a.fingerprint, &answer)
                    .await;
                self.signed_in(
                    token,
                    a,
                    matches!(verdict, Ok(Verdict::Accepted)),
                    "passkey",
                )
            }
            ("POST", "/passkey/register/start") if a.invited => {
                match self.factors.start_registration(&key, &a.fingerprint).await {
                    Ok(Some(options)) => json_text(&options),
                    _ => Reply::json(400, json!({ "error": "registration refused" })),
                }
            }
            ("POST", "/passkey/register/finish") if a.invited => {
                let body =
                    serde_json::from_slice::<serde_json::Value>(&req.body).unwrap_or_default();
                let name: String = body["name"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(60)
                    .collect();
                let Ok(answer) = serde_json::from_value::<RegisterPublicKeyCredential>(
                    body["credential"].clone(),
                ) else {
                    return Reply::json(400, json!({ "error": "malformed answer" }));
                };
                let name = if name.trim().is_empty() {
                    "passkey".into()
                } else {
                    name
                };
                let verdict = self
                    .factors
                    .finish_registration(&key, &a.fingerprint, &name, &answer, Binding::Add)
                    .await;
                self.signed_in(
                    token,
                    a,
                    matches!(verdict, Ok(Verdict::Accepted)),
                    "passkey_registered",
                )
            }
            ("GET", _) => self.passkey_page(req, a, false).await,
            _ => Reply::json(403, json!({ "error": "the passkey step comes first" })),
        }
    }

    /// After a ceremony: a new session token at the signed-in stage, or a refusal.
    fn signed_in(&self, token: &str, a: &Analyst, ok: bool, how: &str) -> Reply {
        if !ok {
            tracing::warn!(target: "vigie::audit", event = "console_login", outcome = "passkey_refused", user = %a.user);
            return Reply::json(403, json!({ "error": "passkey refused" }));
        }
        let Some(fresh) = self.sessions.promote(token) else {
            return Reply::json(401, json!({ "error": "signed out" }));
        };
        tracing::info!(target: "vigie::audit", event = "console_login", outcome = "success", method = how, user = %a.user);
        Reply::json(200, json!({ "redirect": "/" })).with_cookie(self.session_cookie(&fresh))
    }

    async fn passkey_page(&self, req: &Request, a: &Analyst, bad_code: bool) -> Reply {
        let has_passkey = match self.factors.load(&factor_key(&a.user)).await {
            Ok(f) => !f.passkeys.is_empty(),
            Err(_) => return self.message(req, None, 503, "forbidden_title", "unavailable"),
        };
        let mut frame = self.frame(req, Some(a), "passkey");
        frame.script = true;
        let html = render::render(
            "passkey.html",
            req.lang,
            &frame,
            minijinja::context! { has_passkey, invited => a.invited, bad_code },
        );
        Reply::html(if bad_code { 400 } else { 200 }, html, true)
    }
}

/// A JSON document already serialised (WebAuthn options).
fn json_text(text: &str) -> Reply {
    match serde_json::from_str(text) {
        Ok(v) => Reply::json(200, v),
        Err(_) => Reply::json(500, json!({ "error": "options" })),
    }
}
