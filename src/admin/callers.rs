//! Who calls the admin API, and what they may call: a per-person token speaks for its holder
//! within its console role ([`crate::console::roles`]); the shared token (deprecated) may do
//! everything, as before, and says so once in the log.

use std::sync::atomic::{AtomicBool, Ordering};

use pingora::protocols::http::ServerSession;
use subtle::ConstantTimeEq;

use super::AdminApp;
use crate::console::roles::{may, Action, Role};

/// Who made a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token holder's name, or `admin-token` for the shared token.
    pub name: String,
    /// `None`: the shared token, with every right.
    pub role: Option<Role>,
}

impl Caller {
    pub fn may(&self, action: Option<Action>) -> bool {
        match (&self.role, action) {
            (None, _) => true,
            (Some(role), Some(action)) => may(&[*role], action),
            // An endpoint no role is given: the shared token only.
            (Some(_), None) => false,
        }
    }
}

/// The right an endpoint needs (`None`: none of the roles has it).
pub fn action_of(method: &str, path: &str) -> Option<Action> {
    use Action::*;
    Some(match (method, path) {
        ("GET", "/api/alerts" | "/api/alerts/show" | "/api/audit") => ViewAlerts,
        ("POST", "/api/alerts/status" | "/api/alerts/assign" | "/api/alerts/note") => Triage,
        ("GET", "/api/holds") => ViewHolds,
        ("POST", "/api/holds/release") => ReleaseHold,
        ("GET", "/api/sessions" | "/api/users/factors") => ViewSessions,
        ("POST", "/api/sessions/revoke") => RevokeSessions,
        ("POST", "/api/users/lock") => LockAccount,
        ("POST", "/api/sessions/step-up") => AskStepUp,
        ("POST", "/api/users/unlock") => UnlockAccount,
        ("POST", "/api/users/invite" | "/api/console/invite") => Invite,
        ("GET", "/api/break-glass") => ReviewBreakGlass,
        ("POST", "/api/reload") => Operate,
        _ => return None,
    })
}

static SHARED_WARNED: AtomicBool = AtomicBool::new(false);

impl AdminApp {
    /// The caller of `Authorization: Bearer …`: the shared token (constant-time compare), or
    /// a per-person token from the store. `None`: neither.
    pub(super) async fn caller(&self, session: &ServerSession) -> Option<Caller> {
        let sent = session
            .req_header()
            .headers
            .get("authorization")
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or(b"")
            .to_vec();
        if let Some(shared) = &self.token {
            if bool::from(sent.ct_eq(&shared.0)) {
                if !SHARED_WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!("the shared admin token is deprecated: give each person or tool a token of their own (`vigie tokens create`), which the trail names and its role bounds");
                }
                return Some(Caller {
                    name: super::alerts::SHARED_TOKEN.into(),
                    role: None,
                });
            }
        }
        let tokens = self.tokens.clone()?;
        let sent = String::from_utf8(sent).ok()?;
        let now = crate::audit::now_us() / 1_000_000;
        let holder = tokio::task::spawn_blocking(move || tokens.check(&sent, now))
            .await
            .ok()?
            .ok()??;
        // A locked holder's token is refused, as their console session is.
        let held = self.sessions.locks.held();
        if held.contains(&holder.name) || held.contains(&holder.name.to_lowercase()) {
            tracing::warn!(target: "vigie::audit", event = "admin_refused", user = %holder.name, reason = "holder_locked", by = "admin_api");
            return None;
        }
        Some(Caller {
            name: holder.name,
            role: Some(holder.role),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_needs_its_right_and_the_shared_token_has_them_all() {
        let soc = Caller {
            name: "siem-bot".into(),
            role: Some(Role::Soc),
        };
        let it = Caller {
            name: "ansible".into(),
            role: Some(Role::It),
        };
        let shared = Caller {
            name: "admin-token".into(),
            role: None,
        };
        // (method, path, soc, it)
        let table = [
            ("GET", "/api/alerts", true, false),
            ("POST", "/api/alerts/status", true, false),
            ("POST", "/api/holds/release", true, false),
            ("POST", "/api/users/unlock", false, true),
            ("POST", "/api/users/invite", false, true),
            ("POST", "/api/reload", false, true),
            ("GET", "/api/break-glass", false, false),
            ("DELETE", "/api/alerts", false, false),
            ("GET", "/api/unknown", false, false),
        ];
        for (method, path, s, i) in table {
            let action = action_of(method, path);
            assert_eq!(soc.may(action), s, "soc {method} {path}");
            assert_eq!(it.may(action), i, "it {method} {path}");
            assert!(shared.may(action));
        }
    }
}
