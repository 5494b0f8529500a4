//! Where sessions live. One interface; the embedded backend keeps them in process memory
//! (bounded), the Redis backend (shared by replicas) comes next.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::locks::LockedUsers;
use super::session::{AuthLevel, Lifetimes, SessionRecord};
use super::token::SessionId;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("the session store is full")]
    Full,
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
}

/// What a new session must satisfy. Checked together with its insertion, in one step, so a
/// lock, a revocation or a parallel sign-in landing meanwhile is never missed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission<'a> {
    /// The session it replaces (a new id at every change of level): it must still exist, and
    /// ends in the same step.
    pub replaces: Option<&'a SessionId>,
    /// A privileged pack's cap on the user's sessions.
    pub cap: Option<Cap>,
}

/// At most `max` sessions of one user at `level` or above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub level: AuthLevel,
    pub max: usize,
    /// End the oldest to make room (`false`: refuse the new one).
    pub evict_oldest: bool,
}

/// A session a store ended, as it was: the portal's logout needs its vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub fingerprint: String,
    pub record: Arc<SessionRecord>,
}

impl Removed {
    pub fn of(record: Arc<SessionRecord>) -> Self {
        Self {
            fingerprint: record.id.fingerprint(),
            record,
        }
    }
}

/// What became of a new session.
#[derive(Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Stored; the sessions the cap ended to make room.
    Stored { evicted: Vec<Removed> },
    /// The user is locked.
    Locked,
    /// The session it replaces ended meanwhile (revoked, locked, logged out), or its id was
    /// revoked before.
    Ended,
    /// The user is at the cap, and the pack refuses the excess.
    AtCap,
}

/// What became of a write-back.
#[derive(Debug, PartialEq, Eq)]
pub enum Updated {
    /// Written; the record as stored (its new version).
    Stored(Arc<SessionRecord>),
    /// The session ended meanwhile: nothing was written, and it stays ended.
    Ended,
    /// Another request changed it since it was read: read it again and reapply.
    Changed,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn get(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Store a new session if `admission` allows it, in one step with the checks. A user's
    /// lock is checked here too, so a login in flight when the lock lands cannot outlive it.
    async fn create(
        &self,
        record: SessionRecord,
        admission: Admission<'_>,
    ) -> Result<Admitted, StoreError>;
    /// Write back a session read earlier, only if it still exists at the version read. Every
    /// change to a live session goes through here, so a request in flight never brings an
    /// ended session back, nor overwrites a change made meanwhile.
    async fn update(&self, record: SessionRecord) -> Result<Updated, StoreError>;
    /// End a session; its id can never be stored again. Of two callers at once, exactly one
    /// gets the record (a login taking its pre-login session for itself).
    async fn remove(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Same as [`Self::remove`], named for a login taking its pre-login session.
    async fn take(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.remove(id).await
    }
    /// End every session of a user but `except`, in one step; returns those it ended.
    async fn remove_user(
        &self,
        user: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<Removed>, StoreError>;
    /// Every live session of a user, with its fingerprint ([`SessionId::fingerprint`]).
    async fn list_user(&self, user: &str) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError>;
    /// Ask every live session of `user` for a proof of a factor newer than `after_us` before
    /// it goes on (a SOC's step-up); how many sessions will ask. A session that already gave
    /// one since is left as it is.
    async fn want_proof(&self, user: &str, after_us: i64) -> Result<usize, StoreError>;
    /// The signed-in sessions of every user, newest first, at most `max` (the SOC's view);
    /// each with its fingerprint.
    async fn list_all(&self, max: usize) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError>;
    /// Remove one session of a user, named by its fingerprint; the one it ended.
    async fn remove_fingerprint(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<Option<Removed>, StoreError>;
    /// End the sessions past their lifetimes at `now` that no request came to end, at most
    /// `max` of them; returns those it ended (so the portal's sessions end too). With several
    /// replicas one at a time sweeps (the others return nothing).
    async fn sweep(
        &self,
        now: u64,
        lifetimes: &Lifetimes,
        max: usize,
    ) -> Result<Vec<Removed>, StoreError>;
    /// Sessions by level (see [`Census`]), as of the last count; `None` where not counted.
    /// (No default: a store that wraps another must pass it on.)
    async fn census(&self) -> Result<Option<Census>, StoreError>;
}

/// Sessions by [`AuthLevel`], in its order (none, password, second factor, phishing-resistant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census(pub [u64; 4]);

impl Census {
    pub fn add(&mut self, level: AuthLevel) {
        self.0[level as usize] += 1;
    }

    /// `a,b,c,d`, as kept in Redis.
    pub fn to_text(self) -> String {
        self.0.map(|n| n.to_string()).join(",")
    }

    pub fn from_text(text: &str) -> Option<Self> {
        let v: Vec<u64> = text
            .split(',')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        Some(Census(v.try_into().ok()?))
    }

    /// Into the `vigie_sessions_active` gauges.
    pub fn publish(self) {
        let levels = [
            AuthLevel::None,
            AuthLevel::Password,
            AuthLevel::SecondFactor,
            AuthLevel::PhishingResistant,
        ];
        for (level, n) in levels.iter().zip(self.0) {
            crate::metrics::METRICS
                .sessions
                .with_label_values(&[level.label()])
                .set(n as i64);
        }
    }
}

/// In-process sessions with hard caps, so neither logins nor anonymous visitors can grow
/// memory without bound. Pre-login sessions are evicted oldest-first when their cap is hit;
/// authenticated ones are never evicted silently: a full store refuses new logins.
pub struct MemoryStore {
    inner: RwLock<Inner>,
    max_authenticated: usize,
    max_anonymous: usize,
    locked: Arc<LockedUsers>,
}

/// Ended ids remembered at most (oldest forgotten first): ids are random, so a tombstone only
/// has to outlive the copies of a record that requests in flight still hold.
const MAX_TOMBSTONES: usize = 100_000;

#[derive(Default)]
struct Inner {
    map: HashMap<SessionId, Arc<SessionRecord>>,
    /// Counts by kind, kept in step with `map` so caps cost O(1).
    authenticated: usize,
    anonymous: usize,
    ended: HashSet<SessionId>,
    ended_order: std::collections::VecDeque<SessionId>,
}

impl Inner {
    fn count(&mut self, r: &SessionRecord, delta: isize) {
        let c = if r.is_authenticated() {
            &mut self.authenticated
        } else {
            &mut self.anonymous
        };
        *c = c.saturating_add_signed(delta);
    }

    fn insert(&mut self, r: Arc<SessionRecord>) {
        self.count(&r, 1);
        if let Some(old) = self.map.insert(r.id, r) {
            self.count(&old, -1);
        }
    }

    /// End a session and leave its tombstone.
    fn remove(&mut self, id: &SessionId) -> Option<Arc<SessionRecord>> {
        if self.ended.insert(*id) {
            self.ended_order.push_back(*id);
            if self.ended_order.len() > MAX_TOMBSTONES {
                if let Some(old) = self.ended_order.pop_front() {
                    self.ended.remove(&old);
                }
            }
        }
        let old = self.map.remove(id)?;
        self.count(&old, -1);
        Some(old)
    }

    fn of_user<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Arc<SessionRecord>> {
        self.map
            .values()
            .filter(move |r| r.user.as_deref() == Some(user))
    }
}

impl MemoryStore {
    /// `locked`: the lock store's view of locked users, checked when a session is created.
    pub fn new(max_authenticated: usize, max_anonymous: usize, locked: Arc<LockedUsers>) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            max_authenticated,
            max_anonymous,
            locked,
        }
    }

    /// Put back a signed-in session read from disk at start. False (not restored) for a
    /// session that is not signed in, of a locked user, or past the cap.
    pub fn restore(&self, mut record: SessionRecord) -> bool {
        let mut inner = self.inner.write().expect("session map lock");
        let locked = record
            .user
            .as_deref()
            .is_none_or(|u| self.locked.contains(u));
        if !record.is_authenticated() || locked || inner.authenticated >= self.max_authenticated {
            return false;
        }
        record.version = record.version.max(1);
        inner.insert(Arc::new(record));
        true
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn get(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        Ok(self
            .inner
            .read()
            .expect("session map lock")
            .map
            .get(id)
            .cloned())
    }

    async fn create(
        &self,
        mut record: SessionRecord,
        admission: Admission<'_>,
    ) -> Result<Admitted, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        if inner.ended.contains(&record.id) || inner.map.contains_key(&record.id) {
            return Ok(Admitted::Ended);
        }
        if let Some(user) = &record.user {
            if self.locked.contains(user) {
                return Ok(Admitted::Locked);
            }
        }
        if let Some(old) = admission.replaces {
            let Some(current) = inner.map.get(old) else {
                return Ok(Admitted::Ended);
            };
            // A step-up asked after the replaced copy was read stays asked of its successor.
            record.proof_wanted_after_us = record
                .proof_wanted_after_us
                .max(current.proof_wanted_after_us);
        }
        let mut evicted = Vec::new();
        if let (Some(cap), Some(user)) = (admission.cap, record.user.as_deref()) {
            let mut others: Vec<_> = inner
                .of_user(user)
                .filter(|r| Some(&r.id) != admission.replaces && r.level >= cap.level)
                .map(|r| (r.created, r.id))
                .collect();
            let excess = (others.len() + 1).saturating_sub(cap.max);
            if excess > 0 && !cap.evict_oldest {
                return Ok(Admitted::AtCap);
            }
            others.sort_by_key(|(created, _)| *created);
            for (_, id) in others.into_iter().take(excess) {
                evicted.extend(inner.remove(&id).map(Removed::of));
            }
        }
        if record.is_authenticated() && inner.authenticated >= self.max_authenticated {
            return Err(StoreError::Full);
        }
        if !record.is_authenticated() && inner.anonymous >= self.max_anonymous {
            // Rare (only under a flood): a scan is acceptable here.
            let oldest = inner
                .map
                .values()
                .filter(|r| !r.is_authenticated())
                .min_by_key(|r| r.created)
                .map(|r| r.id);
            if let Some(oldest) = oldest {
                inner.remove(&oldest);
            }
        }
        if let Some(old) = admission.replaces {
            inner.remove(old);
        }
        record.version = 1;
        inner.insert(Arc::new(record));
        Ok(Admitted::Stored { evicted })
    }

    async fn update(&self, mut record: SessionRecord) -> Result<Updated, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        let Some(current) = inner.map.get(&record.id) else {
            return Ok(Updated::Ended);
        };
        if current.version != record.version {
            return Ok(Updated::Changed);
        }
        record.version += 1;
        let record = Arc::new(record);
        inner.insert(record.clone());
        Ok(Updated::Stored(record))
    }

    async fn remove(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        Ok(self.inner.write().expect("session map lock").remove(id))
    }

    async fn remove_user(
        &self,
        user: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<Removed>, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        let ids: Vec<SessionId> = inner
            .of_user(user)
            .map(|r| r.id)
            .filter(|id| Some(id) != except)
            .collect();
        Ok(ids
            .iter()
            .filter_map(|id| inner.remove(id).map(Removed::of))
            .collect())
    }

    async fn list_user(&self, user: &str) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        let inner = self.inner.read().expect("session map lock");
        Ok(inner
            .of_user(user)
            .map(|r| (r.id.fingerprint(), r.clone()))
            .collect())
    }

    async fn want_proof(&self, user: &str, after_us: i64) -> Result<usize, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        let asked: Vec<SessionRecord> = inner
            .of_user(user)
            .filter(|r| r.proof_at_us.unwrap_or(0) < after_us)
            .map(|r| {
                let mut r = SessionRecord::clone(r);
                r.proof_wanted_after_us = Some(after_us);
                r.version += 1;
                r
            })
            .collect();
        let n = asked.len();
        for r in asked {
            inner.insert(Arc::new(r));
        }
        Ok(n)
    }

    async fn list_all(&self, max: usize) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        let inner = self.inner.read().expect("session map lock");
        let mut all: Vec<_> = inner
            .map
            .values()
            .filter(|r| r.is_authenticated())
            .map(|r| (r.id.fingerprint(), r.clone()))
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.1.created));
        all.truncate(max);
        Ok(all)
    }

    async fn remove_fingerprint(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<Option<Removed>, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        let id = inner
            .of_user(user)
            .find(|r| r.id.fingerprint() == fingerprint)
            .map(|r| r.id);
        Ok(id.and_then(|id| inner.remove(&id)).map(Removed::of))
    }

    async fn sweep(
        &self,
        now: u64,
        lifetimes: &Lifetimes,
        max: usize,
    ) -> Result<Vec<Removed>, StoreError> {
        let expired: Vec<SessionId> = {
            let inner = self.inner.read().expect("session map lock");
            inner
                .map
                .values()
                .filter(|r| r.expired(now, lifetimes))
                .map(|r| r.id)
                .take(max)
                .collect()
        };
        let mut inner = self.inner.write().expect("session map lock");
        // A request may have ended one meanwhile: only those still here are this sweep's.
        Ok(expired
            .iter()
            .filter_map(|id| inner.remove(id).map(Removed::of))
            .collect())
    }

    async fn census(&self) -> Result<Option<Census>, StoreError> {
        let inner = self.inner.read().expect("session map lock");
        let mut census = Census::default();
        inner.map.values().for_each(|r| census.add(r.level));
        Ok(Some(census))
    }
}

#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod tests;
