//! Ending the portal's own session when the gateway lets one go (sign-out, revoke, lock,
//! timeout, eviction, a refused login): the vaulted cookies would otherwise stay valid at the
//! portal, usable by anyone who ever copies them, until the portal's own timeout. The call is
//! made the portal's way (`[logout]` in the profile: method, CSRF token) and checked against
//! what the profile says a logout looks like; one retry, then a log line, a metric and an
//! alert, because a portal session nobody can end is exactly what the SOC must know about.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::portal_call::{self, Call};
use super::route::Portal;
use crate::config::PortalConfig;
use crate::identity::logout::{self, LogoutRule, Method};
use crate::identity::{Farewell, PortalEnd};
use crate::metrics::METRICS;

/// Pages read for a token or a check: at most this much of each.
const MAX_PAGE: usize = 256 * 1024;
/// Wait before the one retry (a portal restarting, a connection reset).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The portal logout of every configured portal that holds sessions.
pub struct PortalLogout {
    portals: HashMap<String, Portal>,
    alerts: Arc<crate::alerts::Alerts>,
}

impl PortalLogout {
    pub fn new(portals: &[PortalConfig], alerts: Arc<crate::alerts::Alerts>) -> Self {
        let portals = portals
            .iter()
            .filter(|p| p.holds_sessions())
            .map(|p| (p.name.clone(), Portal::new(p.clone())))
            .collect();
        Self { portals, alerts }
    }
}

#[async_trait]
impl PortalEnd for PortalLogout {
    async fn end(&self, farewell: Farewell) {
        let Some(portal) = self.portals.get(&farewell.portal) else {
            return;
        };
        let name = portal.config.name.as_str();
        let user = farewell.user.as_deref().unwrap_or("-");
        let why = farewell.why.label();
        let Some(rule) = portal
            .config
            .profile
            .as_ref()
            .and_then(|p| p.logout.as_ref())
        else {
            METRICS
                .portal_logouts
                .with_label_values(&[name, "no_logout"])
                .inc();
            tracing::warn!(target: "vigie::audit", event = "portal_logout", outcome = "no_logout", portal = %name, user = %user, session = %farewell.session, why, "the profile has no [logout]: the portal session lives until the portal's own timeout");
            return;
        };
        let mut result = attempt(portal, rule, &farewell).await;
        if result.is_err() {
            tokio::time::sleep(RETRY_AFTER).await;
            result = attempt(portal, rule, &farewell).await;
        }
        match result {
            Ok(done) => {
                let outcome = match done {
                    Done::AlreadyEnded => "already_ended",
                    Done::LoggedOut => "done",
                };
                METRICS
                    .portal_logouts
                    .with_label_values(&[name, outcome])
                    .inc();
                tracing::info!(target: "vigie::audit", event = "portal_logout", outcome, portal = %name, user = %user, session = %farewell.session, why);
            }
            Err(failure) => {
                METRICS
                    .portal_logouts
                    .with_label_values(&[name, "failed"])
                    .inc();
                tracing::warn!(target: "vigie::audit", event = "portal_logout", outcome = "failed", portal = %name, user = %user, session = %farewell.session, why, failure = %failure);
                self.alerts.raise(alert(&farewell, &failure));
            }
        }
    }
}

/// What a logout attempt found.
#[derive(Debug, PartialEq, Eq)]
enum Done {
    /// The portal had already ended the session (its own logout, its own timeout).
    AlreadyEnded,
    LoggedOut,
}

/// Whether the portal shows the session signed out: its confirmation page (`[login.confirm]`)
/// read with the session's cookies answers and names nobody, or sends to the login page.
/// `None` without a confirmation page; `Err` when the answer proves neither (a 5xx, a 429).
async fn signed_out(portal: &Portal, vaulted: &[(String, String)]) -> Result<Option<bool>, String> {
    let Some(profile) = portal.config.profile.as_ref() else {
        return Ok(None);
    };
    let Some(confirm) = &profile.login.confirm else {
        return Ok(None);
    };
    let answer = get(portal, &confirm.page, vaulted).await?;
    let text = String::from_utf8_lossy(&answer.body);
    match answer.status {
        200 => Ok(Some(!confirm.pattern.is_match(&text))),
        301..=303 | 307 | 308 => {
            let location = answer.location.as_deref().unwrap_or("");
            let target = location.split_once("://").map_or(location, |(_, rest)| {
                rest.find('/').map_or("/", |i| &rest[i..])
            });
            let target = target.split('#').next().unwrap_or(target);
            // The login page exactly, its query included: on a front-controller portal the
            // application and the login page share a path (`/index.php?m=home` is not it).
            let login_page = profile.prelogin.login_page.as_str();
            match target == login_page || target == profile.login.path {
                true => Ok(Some(true)),
                false => Err(format!(
                    "the confirmation page redirects elsewhere than the login page ({})",
                    answer.status
                )),
            }
        }
        other => Err(format!(
            "the confirmation page answered {other}: whether the session ended is not known"
        )),
    }
}

/// One logout, checked. `Err`: what went wrong, in words for the log and the alert.
async fn attempt(portal: &Portal, rule: &LogoutRule, f: &Farewell) -> Result<Done, String> {
    let vaulted: Vec<(String, String)> = f
        .vault
        .iter()
        .map(|c| (c.name.clone(), c.value.clone()))
        .collect();
    // Measured first, but only to judge a failure: a session the portal already ended needs
    // no logout (a strict portal refuses one), yet a page that merely hides the user's name (a
    // password-expiry screen) must not spare a live session its logout.
    let ended_before = matches!(signed_out(portal, &vaulted).await, Ok(Some(true)));
    match logout(portal, rule, &vaulted).await {
        Ok(()) => Ok(Done::LoggedOut),
        Err(_) if ended_before => Ok(Done::AlreadyEnded),
        Err(e) => Err(e),
    }
}

/// The logout call, made the portal's way, and its check.
async fn logout(
    portal: &Portal,
    rule: &LogoutRule,
    vaulted: &[(String, String)],
) -> Result<(), String> {
    let mut cookies = vaulted.to_vec();
    let origin = format!(
        "{}://{}",
        if portal.config.upstream_tls.is_some() {
            "https"
        } else {
            "http"
        },
        portal_call::host(portal)
    );
    let mut headers: Vec<(&str, String)> = Vec::new();
    let mut form = None;
    if rule.method == Method::Post {
        headers.push(("origin", origin.clone()));
        headers.push(("referer", format!("{origin}{}", rule.path)));
        form = Some(String::new());
    }
    if let Some(token) = &rule.token {
        let mut page = None;
        if let Some(path) = &token.page {
            let answer = get(portal, path, &cookies).await?;
            for (k, v) in answer.set_cookies {
                cookies.retain(|(n, _)| *n != k);
                cookies.push((k, v));
            }
            page = Some(String::from_utf8_lossy(&answer.body).into_owned());
        }
        let value = logout::token_from(token, page.as_deref(), &cookies)
            .ok_or("no logout token found (the page or cookie the profile names has none)")?;
        if let Some(h) = &token.header {
            headers.push((h.as_str(), value.clone()));
        }
        form = Some(
            form_urlencoded::Serializer::new(String::new())
                .append_pair(&token.field, &value)
                .finish(),
        );
    }
    let target = rule.target();
    let call = Call {
        method: match rule.method {
            Method::Get => "GET",
            Method::Post => "POST",
        },
        uri: &target,
        cookies: &cookies,
        headers: &headers,
        form,
        max_body: 0,
    };
    let answer = portal_call::send(portal, &call)
        .await
        .map_err(|e| format!("the logout did not answer: {e}"))?;
    if !rule.answered_success(answer.status, answer.location.as_deref()) {
        return Err(format!(
            "the portal answered the logout {} (the profile's [logout.success] expects otherwise)",
            answer.status
        ));
    }
    // Measured, not assumed: with the old cookies, the portal no longer names anyone.
    if rule.confirm {
        if let Some(false) = signed_out(portal, vaulted).await? {
            return Err("the portal still shows the session signed in after the logout".into());
        }
    }
    Ok(())
}

async fn get(
    portal: &Portal,
    uri: &str,
    cookies: &[(String, String)],
) -> Result<portal_call::Answer, String> {
    let call = Call {
        method: "GET",
        uri,
        cookies,
        headers: &[],
        form: None,
        max_body: MAX_PAGE,
    };
    portal_call::send(portal, &call)
        .await
        .map_err(|e| format!("{uri} did not answer: {e}"))
}

fn alert(f: &Farewell, failure: &str) -> crate::alerts::Alert {
    let user = f.user.clone().unwrap_or_default();
    let name = format!(
        "A portal session outlived the gateway's ({}): {failure}",
        f.why.label()
    );
    let mut alert =
        crate::alerts::Alert::account_event("VIGIE-PORTAL-LOGOUT-FAILED", name, &user, &f.portal);
    alert.severity = crate::alerts::Severity::Medium;
    alert.risk_score = 50;
    alert.session_hash = f.session.clone();
    alert.techniques = vec!["T1550.004"];
    alert
}
