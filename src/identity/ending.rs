//! How gateway sessions end, and how the portal's session ends with each: every ending goes
//! through here ([`Sessions::end`] and its siblings), so none can forget the portal. The store
//! hands an ended record to one caller only, so each portal session is logged out once; the
//! logout itself is the pipeline's ([`crate::pipeline::portal_logout`]).

use std::sync::Arc;
use std::time::Duration;

use super::session::SessionRecord;
use super::store::{Removed, StoreError};
use super::token::SessionId;
use super::vault::VaultedCookie;
use super::Sessions;

/// Why a gateway session ended (the portal's own session ends with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The user signed out through the gateway.
    SignOut,
    /// The user followed the portal's own logout.
    PortalLogout,
    /// Revoked by the SOC or IT (admin API), or by the user's own factor reset.
    Revoked,
    /// The account was locked.
    Locked,
    /// Idle or absolute timeout.
    Timeout,
    /// A privileged pack's cap made room for a newer session.
    Evicted,
    /// A login over a signed-in session ended it.
    Replaced,
    /// The portal accepted a login the gateway then refused (locked account, cap, identity).
    LoginRefused,
    /// The portal's session turned out to be another user's.
    IdentityMismatch,
    /// The portal signed in a visitor the gateway saw no login from.
    SignedInBeforeLogin,
    /// Ended while a request was at the portal, whose answer rotated the portal's session.
    EndedInFlight,
}

impl Ending {
    pub fn label(self) -> &'static str {
        match self {
            Ending::SignOut => "sign_out",
            Ending::PortalLogout => "portal_logout",
            Ending::Revoked => "revoked",
            Ending::Locked => "locked",
            Ending::Timeout => "timeout",
            Ending::Evicted => "evicted",
            Ending::Replaced => "replaced",
            Ending::LoginRefused => "login_refused",
            Ending::IdentityMismatch => "identity_mismatch",
            Ending::SignedInBeforeLogin => "signed_in_before_login",
            Ending::EndedInFlight => "ended_in_flight",
        }
    }
}

/// A portal session the gateway let go of: what the portal's logout needs.
#[derive(Debug, Clone)]
pub struct Farewell {
    pub portal: String,
    /// Who it was signed in as (`None`: a visitor the portal signed in on its own).
    pub user: Option<String>,
    pub vault: Vec<VaultedCookie>,
    /// The gateway session's fingerprint, for the audit line.
    pub session: String,
    pub why: Ending,
}

/// Ends portal sessions the gateway let go of ([`crate::pipeline::portal_logout`]).
#[async_trait::async_trait]
pub trait PortalEnd: Send + Sync {
    async fn end(&self, farewell: Farewell);
}

/// How long a sign-out waits for the portal's logout before answering.
const SIGN_OUT_WAIT: Duration = Duration::from_secs(5);

/// Sessions ended at most per sweep (the next sweep takes the rest).
const SWEEP_MAX: usize = 2_000;
/// How often timed-out sessions are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(20);

/// Ends timed-out sessions no request came back to, and their portal sessions (with
/// replicas, the one holding the store's lease does).
pub struct Sweeper {
    sessions: Arc<Sessions>,
    every: Duration,
}

impl Sweeper {
    pub fn new(sessions: Arc<Sessions>) -> Self {
        Self::every(sessions, SWEEP_EVERY)
    }

    /// Sweeping at another pace (tests).
    pub fn every(sessions: Arc<Sessions>, every: Duration) -> Self {
        Self { sessions, every }
    }
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
            if let Err(e) = self.sessions.sweep().await {
                tracing::debug!(error = %e, "session sweep skipped");
            }
        }
    }
}

impl Sessions {
    /// The portal's logout for a session that ended, when it held a signed-in portal session
    /// (`force`: held one the portal signed in on its own). The store handed `removed` to this
    /// caller alone, so each portal session is logged out once.
    fn farewell(
        &self,
        removed: &Removed,
        why: Ending,
        force: bool,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let r = &removed.record;
        if r.break_glass_until.is_some() {
            break_glass_ended(r, &removed.fingerprint, why.label(), self.clock.now());
        }
        if r.vault.is_empty() || (r.user.is_none() && !force) {
            return None;
        }
        self.send_off(Farewell {
            portal: r.portal.clone(),
            user: r.user.clone(),
            vault: r.vault.clone(),
            session: removed.fingerprint.clone(),
            why,
        })
    }

    fn send_off(
        &self,
        farewell: Farewell,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let end = self.portal_end.clone()?;
        Some(async move { end.end(farewell).await })
    }

    /// A portal session held by no gateway session (a login the portal accepted and the
    /// gateway refused): the portal's logout runs in the background.
    pub fn let_go(&self, farewell: Farewell) {
        if let (Some(f), false) = (self.send_off(farewell.clone()), farewell.vault.is_empty()) {
            spawn(f);
        }
    }

    /// End a session; the portal's session it held is logged out in the background. Of two
    /// callers at once, one gets the record (and the logout).
    pub async fn end(
        &self,
        id: &SessionId,
        why: Ending,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.end_with(id, why, false, Duration::ZERO).await
    }

    /// The same for a session whose portal cookies may be signed in although no user signed
    /// in through the gateway (the portal signed a visitor in on its own).
    pub async fn end_forced(
        &self,
        id: &SessionId,
        why: Ending,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.end_with(id, why, true, Duration::ZERO).await
    }

    /// End a session; its portal logout runs in the background, waited for up to `wait`.
    async fn end_with(
        &self,
        id: &SessionId,
        why: Ending,
        force: bool,
        wait: Duration,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let removed = self.store.remove(id).await?.map(Removed::of);
        if let Some(f) = removed.as_ref().and_then(|r| self.farewell(r, why, force)) {
            if let (Some(logout), false) = (spawn(f), wait.is_zero()) {
                let _ = tokio::time::timeout(wait, logout).await;
            }
        }
        Ok(removed.map(|r| r.record))
    }

    /// End a session and wait for the portal's logout (a sign-out: when the page says the
    /// user is signed out, the portal's session is gone too, or the failure is logged).
    pub async fn end_now(
        &self,
        id: &SessionId,
        why: Ending,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        // A portal slow to log out does not hold the sign-out page: past the wait, the logout
        // goes on (and its failure is still logged and alerted).
        self.end_with(id, why, false, SIGN_OUT_WAIT).await
    }

    /// End every session of `user` but `except`; returns how many ended.
    pub async fn end_user(
        &self,
        user: &str,
        except: Option<&SessionId>,
        why: Ending,
    ) -> Result<usize, StoreError> {
        let removed = self.store.remove_user(user, except).await?;
        self.farewells(&removed, why);
        Ok(removed.len())
    }

    /// End one session of `user`, named by its fingerprint; whether it was live.
    pub async fn end_fingerprint(
        &self,
        user: &str,
        fingerprint: &str,
        why: Ending,
    ) -> Result<bool, StoreError> {
        let removed = self.store.remove_fingerprint(user, fingerprint).await?;
        self.farewells(removed.as_slice(), why);
        Ok(removed.is_some())
    }

    pub(super) fn farewells(&self, removed: &[Removed], why: Ending) {
        for r in removed {
            if let Some(f) = self.farewell(r, why, false) {
                spawn(f);
            }
        }
    }

    /// End the sessions past their timeouts that no request came to end (a user who closed
    /// the tab), and their portal sessions; returns how many ended.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let removed = self
            .store
            .sweep(self.clock.now(), &self.lifetimes(), SWEEP_MAX)
            .await?;
        for r in &removed {
            tracing::info!(target: "vigie::audit", event = "session_expired", user = r.record.user.as_deref().unwrap_or("-"), session = %r.fingerprint);
        }
        self.farewells(&removed, Ending::Timeout);
        Ok(removed.len())
    }
}

/// The end of a break-glass, for the review beside its start: the session ended while in it
/// (`how`: the ending), or its window ran out (`window_over`). Once per break-glass: the
/// store hands an ended session, or a cleared window, to one caller.
pub(crate) fn break_glass_ended(r: &SessionRecord, fingerprint: &str, how: &str, now: u64) {
    let until = r.break_glass_until.unwrap_or(now);
    let record = r.break_glass_record.as_deref().unwrap_or("");
    tracing::warn!(target: "vigie::audit", event = "break_glass_ended", user = r.user.as_deref().unwrap_or("-"), portal = %r.portal, session = %fingerprint, ended_by = how, until, early = now < until, record);
}

/// Run a portal logout on the runtime serving this call (there is always one: requests, the
/// admin API and the sweeper all run on Tokio).
fn spawn(
    f: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => Some(rt.spawn(f)),
        Err(_) => {
            tracing::error!("no runtime to end a portal session on");
            None
        }
    }
}

#[cfg(test)]
mod tests;
