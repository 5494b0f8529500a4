//! Stage 3, identify: who is behind the request, from the gateway's session cookie alone.
//! The browser's own cookies for the portal are never trusted for identity.

use std::sync::Arc;

use pingora::proxy::Session;

use super::refusal::{Reason, Refusal};
use super::route::Portal;
use crate::identity::session::SessionRecord;
use crate::identity::Sessions;

/// Who the gateway believes is behind a request.
#[derive(Debug, Clone, Default)]
pub enum Identity {
    /// No session (or a portal without a profile, where the gateway holds no sessions).
    #[default]
    Anonymous,
    /// A gateway session: pre-login (only the portal's pre-login cookies) or authenticated.
    Session(Arc<SessionRecord>),
}

impl Identity {
    /// Label for logs: the user name once authenticated; never a credential.
    pub fn label(&self) -> &str {
        match self {
            Identity::Session(s) if s.is_authenticated() => s.user.as_deref().unwrap_or("-"),
            Identity::Session(_) => "pre-login",
            Identity::Anonymous => "anonymous",
        }
    }

    pub fn session(&self) -> Option<&Arc<SessionRecord>> {
        match self {
            Identity::Session(s) => Some(s),
            Identity::Anonymous => None,
        }
    }
}

/// Look the session up. A store that cannot answer fails closed: the request is refused.
pub async fn run(
    sessions: &Sessions,
    session: &Session,
    portal: &Portal,
    tls: bool,
) -> Result<Identity, Refusal> {
    let holds_sessions = portal.config.profile.is_some()
        || matches!(
            portal.config.login,
            crate::config::LoginMode::Gateway { .. }
        );
    if !holds_sessions {
        return Ok(Identity::Anonymous);
    }
    let cookies = session
        .req_header()
        .headers
        .get_all("cookie")
        .into_iter()
        .map(|v| v.as_bytes());
    match sessions.identify(cookies, tls, &portal.config.name).await {
        Ok(Some(record)) => Ok(Identity::Session(record)),
        Ok(None) => Ok(Identity::Anonymous),
        Err(e) => {
            tracing::error!(error = %e, "session store unavailable; refusing the request");
            Err(Refusal::new(503, Reason::SessionStoreUnavailable))
        }
    }
}

#[cfg(test)]
mod tests;
