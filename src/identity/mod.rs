//! Identity and sessions: who is behind a request, held server-side.
//!
//! The browser holds one cookie with an opaque signed token ([`token`]); the record it names
//! ([`session`]) carries the identity, the authentication level, when each factor was proven,
//! and the portal's own session cookies ([`vault`]), which never reach the browser. How a
//! portal's login looks is read from its profile ([`login`]). Records live in a
//! [`store::SessionStore`].

pub mod assertion;
pub mod collation;
pub mod ending;
pub mod locks;
pub mod login;
pub mod logout;
pub mod persisted;
pub mod prelogin;
pub mod session;
pub mod store;
pub mod token;
pub mod vault;

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::SessionConfig;
pub use ending::{Ending, Farewell, PortalEnd, Sweeper};
use session::{AuthLevel, Clock, Lifetimes, SessionRecord};
use store::{Admission, Admitted, Cap, SessionStore, StoreError, Updated};
use token::{SessionId, TokenCodec};
use vault::VaultedCookie;

/// Longest user agent kept in a session record.
const MAX_USER_AGENT: usize = 256;
/// `last_seen` is written back at most this often, so reads stay reads (a write-back is a
/// compare-and-set script: at this pace it costs Redis no more commands than the plain write
/// every 5 s did before; idle timeouts are minutes).
const TOUCH_EVERY: u64 = 15;
/// A write-back that keeps meeting newer versions gives up after this many tries.
const CHANGE_TRIES: usize = 5;

/// What became of a new session.
#[derive(Debug, PartialEq, Eq)]
pub enum Begun {
    /// Stored: the `Set-Cookie` value.
    Started(String),
    /// The account is locked.
    Locked,
    /// The session it replaces ended meanwhile.
    Ended,
    /// The account is at its pack's cap.
    AtCap,
}

/// Sessions: the store, the token codec, lifetimes and the clock.
pub struct Sessions {
    pub store: Arc<dyn SessionStore>,
    pub locks: Arc<dyn locks::LockStore>,
    codec: TokenCodec,
    config: SessionConfig,
    clock: Arc<dyn Clock>,
    /// `[plain, "__Host-" prefixed]`, built once: every request looks them up.
    cookie_names: [String; 2],
    /// Ends the portal's session of every signed-in session that ends.
    portal_end: Option<Arc<dyn PortalEnd>>,
}

impl Sessions {
    pub fn new(
        store: Arc<dyn SessionStore>,
        locks: Arc<dyn locks::LockStore>,
        key: &[u8],
        config: SessionConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let cookie_names = [
            config.cookie_name.clone(),
            format!("__Host-{}", config.cookie_name),
        ];
        Self {
            store,
            locks,
            codec: TokenCodec::new(key),
            config,
            clock,
            cookie_names,
            portal_end: None,
        }
    }

    /// End the portal's session whenever one of these sessions ends.
    pub fn ending_portal_sessions_with(mut self, end: Arc<dyn PortalEnd>) -> Self {
        self.portal_end = Some(end);
        self
    }

    /// Lock an account and end its sessions on every replica; returns how many ended. The
    /// lock lands first: a session being created meanwhile is either refused by it or ended
    /// with the others.
    /// A lock the store could not keep still ends the sessions (a store that holds it in
    /// memory meanwhile, as PostgreSQL's does, refuses the user too); the error says so.
    pub async fn lock_user(&self, user: &str, reason: &str) -> Result<usize, StoreError> {
        let locked = self.locks.lock(user, reason).await;
        let ended = self.end_user(user, None, Ending::Locked).await;
        locked?;
        ended
    }

    pub(crate) fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            idle: self.config.idle_timeout,
            absolute: self.config.absolute_timeout,
            anonymous: self.config.anonymous_timeout,
        }
    }

    /// Unix microseconds, on the same clock (the detector counts in them).
    pub fn now_us(&self) -> i64 {
        self.clock.now_us() as i64
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The cookie's name: `__Host-` prefixed where the browser will accept it (TLS).
    pub fn cookie_name(&self, tls: bool) -> &str {
        &self.cookie_names[usize::from(tls)]
    }

    /// Both spellings, so a request never carries the gateway's cookie upstream.
    pub fn cookie_names(&self) -> &[String] {
        &self.cookie_names
    }

    /// The session named by the request's cookies. Missing, duplicated, malformed, forged,
    /// expired or revoked cookies all mean "no session" (threat model 10, 11).
    pub async fn identify<'a>(
        &self,
        cookie_headers: impl Iterator<Item = &'a [u8]>,
        tls: bool,
        portal: &str,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let name = self.cookie_name(tls);
        let mut found = None;
        for header in cookie_headers {
            let Ok(header) = std::str::from_utf8(header) else {
                return Ok(None);
            };
            for (k, v) in vault::parse_cookie_header(header) {
                if k == name {
                    if found.is_some() {
                        return Ok(None);
                    }
                    found = Some(v);
                }
            }
        }
        let Some(id) = found.and_then(|t| self.codec.decode(t)) else {
            return Ok(None);
        };
        let Some(record) = self.store.get(&id).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if record.portal != portal {
            return Ok(None);
        }
        // Every request of a locked account is refused, whatever happened to its sessions.
        if record
            .user
            .as_deref()
            .is_some_and(|u| self.locks.held().contains(u))
        {
            self.end(&id, Ending::Locked).await?;
            return Ok(None);
        }
        if record.expired(now, &self.lifetimes()) {
            self.end(&id, Ending::Timeout).await?;
            return Ok(None);
        }
        if record.break_glass_until.is_some_and(|until| now >= until) {
            return self.close_break_glass(record, now).await;
        }
        if now.saturating_sub(record.last_seen) >= TOUCH_EVERY {
            let mut touched = (*record).clone();
            touched.last_seen = now;
            // Not recording the activity only shortens the idle timeout: a store that cannot
            // take the write (an outage within its grace) does not refuse the request.
            return match self.store.update(touched).await {
                Ok(Updated::Stored(r)) => Ok(Some(r)),
                // Ended between the read and the write: it stays ended.
                Ok(Updated::Ended) => Ok(None),
                // Another request wrote it meanwhile (and recorded the activity).
                Ok(Updated::Changed) => Ok(Some(record)),
                Err(e) => {
                    tracing::debug!(error = %e, "session activity not recorded");
                    Ok(Some(record))
                }
            };
        }
        Ok(Some(record))
    }

    /// A break-glass window has run out: the session goes on under the ordinary policy, and
    /// the end is recorded once (by the request whose write lands; another that raced it
    /// goes on with its copy, no longer in break-glass by the clock).
    async fn close_break_glass(
        &self,
        record: Arc<SessionRecord>,
        now: u64,
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let mut closed = (*record).clone();
        closed.break_glass_until = None;
        closed.break_glass_reason = None;
        closed.break_glass_record = None;
        closed.last_seen = now;
        match self.store.update(closed).await {
            Ok(Updated::Stored(r)) => {
                ending::break_glass_ended(&record, &record.id.fingerprint(), "window_over", now);
                Ok(Some(r))
            }
            Ok(Updated::Ended) => Ok(None),
            Ok(Updated::Changed) => Ok(Some(record)),
            Err(e) => {
                tracing::debug!(error = %e, "break-glass end not recorded yet");
                Ok(Some(record))
            }
        }
    }

    /// Apply `change` to the stored session `record`, read again and reapplied if another
    /// request changed it meanwhile. `Ok(None)`: the session has ended, and stays ended.
    pub async fn change(
        &self,
        record: &SessionRecord,
        change: impl Fn(&mut SessionRecord),
    ) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let mut current = record.clone();
        for _ in 0..CHANGE_TRIES {
            let mut next = current.clone();
            change(&mut next);
            match self.store.update(next).await? {
                Updated::Stored(r) => return Ok(Some(r)),
                Updated::Ended => return Ok(None),
                Updated::Changed => match self.store.get(&record.id).await? {
                    Some(fresh) => current = (*fresh).clone(),
                    None => return Ok(None),
                },
            }
        }
        Err(StoreError::Unavailable(
            "the session kept changing under this write".into(),
        ))
    }

    /// A new record with a fresh id (a new id at every change of level: threat model 8).
    pub fn new_record(
        &self,
        portal: &str,
        user: Option<String>,
        level: AuthLevel,
        ip: IpAddr,
        user_agent: &str,
        vault: Vec<VaultedCookie>,
    ) -> SessionRecord {
        let now = self.clock.now();
        let user_agent = user_agent
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT)
            .collect();
        SessionRecord::new(portal, user, level, ip, user_agent, vault, now)
    }

    /// Apply a privileged pack to a new login: its shorter timeouts.
    pub fn admit(&self, record: &mut SessionRecord, pack: Option<&crate::policy::Pack>) {
        let Some(pack) = pack else {
            return;
        };
        record.privileged = true;
        record.idle_limit = pack.idle_timeout.map(|d| d.as_secs());
        record.absolute_limit = pack.absolute_timeout.map(|d| d.as_secs());
    }

    /// A privileged pack's cap on concurrent sessions, applied when `record` reaches the
    /// pack's level (a password alone must not be able to log the real user out, or fill the
    /// cap). Only live sessions at that level count.
    pub fn cap_for(record: &SessionRecord, pack: Option<&crate::policy::Pack>) -> Option<Cap> {
        let pack = pack?;
        let max = pack.max_sessions?;
        (record.level >= pack.level).then_some(Cap {
            level: pack.level,
            max,
            evict_oldest: pack.on_excess != crate::policy::Excess::Refuse,
        })
    }

    /// Store a new session (ending the one it replaces: a new id at every change of level),
    /// in one step with the checks of the account lock, the replaced session and the pack's
    /// cap; on success, the `Set-Cookie` value that hands it to the browser.
    pub async fn begin(
        &self,
        record: SessionRecord,
        replaces: Option<&SessionId>,
        pack: Option<&crate::policy::Pack>,
        tls: bool,
    ) -> Result<Begun, StoreError> {
        let id = record.id;
        let user = record.user.clone().unwrap_or_default();
        let cap = Self::cap_for(&record, pack);
        let admitted = self
            .store
            .create(record, Admission { replaces, cap })
            .await?;
        Ok(match admitted {
            Admitted::Stored { evicted } => {
                for r in &evicted {
                    tracing::warn!(target: "vigie::audit", event = "session_cap", user = %user, ended = %r.fingerprint, pack = %pack.map_or("-", |p| p.name.as_str()));
                }
                self.farewells(&evicted, Ending::Evicted);
                Begun::Started(self.set_cookie(&id, tls))
            }
            Admitted::Locked => Begun::Locked,
            Admitted::Ended => Begun::Ended,
            Admitted::AtCap => Begun::AtCap,
        })
    }

    /// `Set-Cookie` value carrying a session.
    pub fn set_cookie(&self, id: &SessionId, tls: bool) -> String {
        let secure = if tls { "; Secure" } else { "" };
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name(tls),
            self.codec.encode(id)
        )
    }

    /// `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(&self, tls: bool) -> String {
        let secure = if tls { "; Secure" } else { "" };
        format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name(tls)
        )
    }
}

#[cfg(test)]
pub(crate) mod tests;
