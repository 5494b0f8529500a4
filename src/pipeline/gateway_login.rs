//! Gateway-owned login, for portals that trust an identity header: the gateway checks the
//! password against its local users, then tells the portal who is there in headers and in a
//! signed assertion. Nobody reaches such a portal without a gateway session.

use std::sync::Arc;

use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::form::safe_return;
use super::identify::Identity;
use super::intercept::same_origin;
use super::normalise::Request;
use super::refusal::{Reason, Refusal};
use super::route::Portal;
use crate::config::AssertionConfig;
use crate::identity::assertion::{AssertionClaims, AssertionKeys};
use crate::identity::session::AuthLevel;
use crate::identity::{Begun, Sessions};
use crate::metrics::METRICS;
use crate::pages;
use crate::storage::users::UserStore;

pub use super::endpoints::LOGIN_PATH;
const MAX_FORM: usize = 8 * 1024;

/// Where an anonymous visitor is sent.
pub fn login_redirect(request: &Request) -> String {
    let here = request.target.to_uri();
    format!(
        "{LOGIN_PATH}?return={}",
        form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
    )
}

async fn send_page(session: &mut Session, status: u16, html: String) -> pingora::Result<()> {
    super::respond::send_html(session, status, html, false, None).await
}

fn login_page(
    session: &Session,
    request: &Request,
    portal: &Portal,
    failed: bool,
    return_to: &str,
) -> String {
    let lang = pages::Lang::of_request(session.req_header());
    let switch = pages::switch_url(LOGIN_PATH, request.target.query.as_deref(), lang);
    let brand = &portal.config.brand;
    pages::login_page(lang, failed, return_to, &switch, brand)
}

/// Serve `/.vigie/login`: the form (GET) or a login attempt (POST). Returns the status sent.
#[allow(clippy::too_many_arguments)]
pub async fn handle(
    config: &crate::config::Config,
    budgets: &crate::budget::Budgets,
    session: &mut Session,
    sessions: &Sessions,
    users: &Arc<UserStore>,
    portal: &Portal,
    request: &Request,
    identity: &Identity,
) -> Result<u16, Refusal> {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.target.query.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let return_to = safe_return(
        query
            .iter()
            .find(|(k, _)| k == "return")
            .map_or("/", |(_, v)| v.as_str()),
    );
    let io = |_| Refusal::framing(400, Reason::LoginIo);
    match session.req_header().method.as_str() {
        "GET" | "HEAD" => {
            let page = login_page(session, request, portal, false, &return_to);
            send_page(session, 200, page).await.map_err(io)?;
            Ok(200)
        }
        "POST" => {
            if !same_origin(session.req_header()) {
                return Err(Refusal::new(403, Reason::CrossSiteRequest));
            }
            let body = super::form::read_body(session, MAX_FORM).await?;
            let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| super::form::field(&form, name);
            let (username, password) = (field("username").trim().to_string(), field("password"));
            // Login attempts are budgeted per source and per name, before any hashing.
            super::authorise::login_allowed(budgets, Some(request.client.ip), Some(&username))
                .await?;
            let return_to = safe_return(&field("return"));
            let store = users.clone();
            let name = username.clone();
            let verified = tokio::task::spawn_blocking(move || store.verify(&name, &password))
                .await
                .map_err(|_| Refusal::new(503, Reason::UserStoreUnavailable))?
                .map_err(|e| {
                    tracing::error!(error = %e, "user store failed");
                    Refusal::new(503, Reason::UserStoreUnavailable)
                })?;
            let clean: String = username
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect();
            let Some(user) = verified else {
                METRICS
                    .portal_logins
                    .with_label_values(&[&portal.config.name, "failure"])
                    .inc();
                tracing::warn!(target: "vigie::audit", event = "login", outcome = "failure", user = %clean, portal = %portal.config.name, client = %request.client.ip, via = "gateway");
                let page = login_page(session, request, portal, true, &return_to);
                send_page(session, 200, page).await.map_err(io)?;
                return Ok(200);
            };
            let locked = sessions
                .locks
                .locked(&user.username)
                .await
                .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?;
            if let Some(reason) = locked {
                tracing::warn!(target: "vigie::audit", event = "login", outcome = "locked", user = %user.username, reason_chars = reason.chars().count(), via = "gateway");
                return Err(Refusal::new(423, Reason::AccountLocked));
            }
            let ua = super::normalise::headers::user_agent(session.req_header());
            let mut record = sessions.new_record(
                &portal.config.name,
                Some(user.username.clone()),
                AuthLevel::Password,
                request.client.ip,
                ua,
                vec![],
            );
            record.groups = user.groups.clone();
            for g in config
                .static_groups
                .get(&user.username)
                .into_iter()
                .flatten()
            {
                if !record.groups.contains(g) {
                    record.groups.push(g.clone());
                }
            }
            let pack = config.policy.pack_for(&record.groups);
            sessions.admit(&mut record, pack);
            let id = record.id;
            let begun = sessions
                .begin(record, None, pack, request.tls)
                .await
                .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?;
            if !matches!(begun, Begun::Started(_)) {
                tracing::warn!(target: "vigie::audit", event = "login", outcome = ?begun, user = %user.username, via = "gateway");
            }
            let cookie = super::refusal::started(begun)?;
            // The session it replaces (a new id at every change of level) ends.
            if let Some(old) = identity.session() {
                sessions
                    .end(&old.id, crate::identity::Ending::Replaced)
                    .await
                    .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))?;
            }
            METRICS
                .portal_logins
                .with_label_values(&[&portal.config.name, "success"])
                .inc();
            tracing::info!(target: "vigie::audit", event = "login", outcome = "success", user = %user.username, portal = %portal.config.name, client = %request.client.ip, session = %id.fingerprint(), via = "gateway");
            super::respond::send_redirect(session, &return_to, &[cookie])
                .await
                .map_err(io)?;
            Ok(303)
        }
        _ => Err(Refusal::new(405, Reason::MethodNotAllowed)),
    }
}

/// Identity headers and the signed assertion on a request to a gateway-login portal.
/// Client-sent copies of these headers were already stripped; they are removed again here
/// in case the names are custom ones.
pub fn add_identity(
    up: &mut RequestHeader,
    identity: &Identity,
    portal: &Portal,
    headers: (&str, &str),
    assertion: (&AssertionConfig, &AssertionKeys),
    now: u64,
) -> pingora::Result<()> {
    let (user_header, groups_header) = headers;
    let (config, keys) = assertion;
    for h in [user_header, groups_header, config.header.as_str()] {
        up.remove_header(h);
    }
    let Some(s) = identity.session().filter(|s| s.is_authenticated()) else {
        return Ok(());
    };
    let user = s.user.clone().unwrap_or_default();
    up.insert_header(user_header.to_string(), &user)?;
    up.insert_header(groups_header.to_string(), s.groups.join(","))?;
    let claims = AssertionClaims {
        iss: config.issuer.clone(),
        aud: portal.config.name.clone(),
        sub: user,
        groups: s.groups.clone(),
        iat: now,
        nbf: now,
        exp: now + config.lifetime.as_secs(),
        jti: format!("{:032x}", rand::random::<u128>()),
        acr: s.level.label().to_string(),
        sid: s.id.fingerprint(),
    };
    up.insert_header(config.header.clone(), keys.sign(&claims))?;
    Ok(())
}

#[cfg(test)]
mod tests;
