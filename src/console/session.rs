//! Console sessions: an analyst signed in with a password, then (by default) a passkey. Kept in
//! this process' memory, keyed by the SHA-256 of a random token (the cookie): a restart signs
//! analysts out, which a console may afford. Short idle timeout, bounded lifetime, one CSRF
//! token per session. Pure but for the clock, which is injected.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::roles::Role;
use crate::identity::session::Clock;

/// How far an analyst has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password only: the passkey page, nothing else.
    Password,
    /// Signed in.
    Passkey,
}

#[derive(Debug, Clone)]
pub struct Analyst {
    pub user: String,
    pub roles: Vec<Role>,
    pub stage: Stage,
    /// What forms carry back (compared in constant time).
    pub csrf: String,
    /// A short fingerprint for logs and the WebAuthn ceremony (never the token).
    pub fingerprint: String,
    /// An invitation was redeemed in this session: a first passkey may be registered.
    pub invited: bool,
    created: u64,
    last_seen: u64,
}

pub struct ConsoleSessions {
    map: Mutex<HashMap<[u8; 32], Analyst>>,
    clock: Arc<dyn Clock>,
    idle: u64,
    lifetime: u64,
}

/// At most this many console sessions at once (a flood of sign-ins cannot fill memory).
const MAX: usize = 10_000;

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl ConsoleSessions {
    pub fn new(clock: Arc<dyn Clock>, idle_secs: u64, lifetime_secs: u64) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            clock,
            idle: idle_secs,
            lifetime: lifetime_secs,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Analyst>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self, a: &Analyst, now: u64) -> bool {
        now < a.last_seen + self.idle && now < a.created + self.lifetime
    }

    /// A new session at `stage`; its token (the cookie's value).
    pub fn begin(&self, user: &str, roles: Vec<Role>, stage: Stage) -> String {
        let now = self.clock.now();
        let token = random_hex(32);
        let analyst = Analyst {
            user: user.to_string(),
            roles,
            stage,
            csrf: random_hex(16),
            fingerprint: random_hex(6),
            invited: false,
            created: now,
            last_seen: now,
        };
        let mut map = self.map();
        map.retain(|_, a| self.live(a, now));
        if map.len() >= MAX {
            // The oldest goes: better one analyst signed in again than none able to.
            if let Some(oldest) = map.iter().min_by_key(|(_, a)| a.last_seen).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(digest(&token), analyst);
        token
    }

    /// The session of `token`, seen now (its idle time starts again); `None` when unknown,
    /// idle too long or past its lifetime (then it is gone).
    pub fn get(&self, token: &str) -> Option<Analyst> {
        let now = self.clock.now();
        let key = digest(token);
        let mut map = self.map();
        let alive = map.get(&key).is_some_and(|a| self.live(a, now));
        if !alive {
            map.remove(&key);
            return None;
        }
        let a = map.get_mut(&key)?;
        a.last_seen = now;
        Some(a.clone())
    }

    /// The passkey was proven: a new token replaces the old one (no fixation of a session
    /// opened before the proof), same roles, signed in.
    pub fn promote(&self, token: &str) -> Option<String> {
        let old = self.map().remove(&digest(token))?;
        let fresh = self.begin(&old.user, old.roles, Stage::Passkey);
        Some(fresh)
    }

    /// An invitation was redeemed: this session may register the first passkey.
    pub fn mark_invited(&self, token: &str) {
        if let Some(a) = self.map().get_mut(&digest(token)) {
            a.invited = true;
        }
    }

    pub fn end(&self, token: &str) {
        self.map().remove(&digest(token));
    }

    /// End every console session of `user` (their account was locked or disabled).
    pub fn end_user(&self, user: &str) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, a| a.user != user);
        before - map.len()
    }
}

impl Analyst {
    /// Whether a form's token is this session's.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::session::ManualClock;

    #[test]
    fn a_session_ends_when_idle_or_old_and_a_proof_replaces_its_token() {
        let clock = Arc::new(ManualClock::at(1_000));
        let s = ConsoleSessions::new(clock.clone(), 900, 8 * 3600);
        let token = s.begin("ana.soc", vec![Role::Soc], Stage::Password);
        let a = s.get(&token).unwrap();
        assert_eq!((a.user.as_str(), a.stage), ("ana.soc", Stage::Password));
        assert!(a.csrf_ok(&a.csrf) && !a.csrf_ok("") && !a.csrf_ok("00"));

        let signed = s.promote(&token).unwrap();
        assert!(s.get(&token).is_none(), "the pre-proof token is dead");
        assert_eq!(s.get(&signed).unwrap().stage, Stage::Passkey);

        // Seen every 14 minutes: alive; 15 idle minutes: gone.
        for _ in 0..10 {
            clock.advance(std::time::Duration::from_secs(840));
            assert!(s.get(&signed).is_some());
        }
        clock.advance(std::time::Duration::from_secs(900));
        assert!(s.get(&signed).is_none());

        // Active all along, still ended at its lifetime.
        let t = s.begin("bob.soc", vec![Role::Soc], Stage::Passkey);
        for _ in 0..34 {
            clock.advance(std::time::Duration::from_secs(840));
            assert!(s.get(&t).is_some());
        }
        clock.advance(std::time::Duration::from_secs(840));
        assert!(s.get(&t).is_none(), "past 8 hours");

        let t = s.begin("carl.it", vec![Role::It], Stage::Passkey);
        assert_eq!(s.end_user("carl.it"), 1);
        assert!(s.get(&t).is_none());
    }
}
