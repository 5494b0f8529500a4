//! Where sessions live. One interface; the embedded backend keeps them in process memory
//! (bounded), the Redis backend (shared by replicas) comes next.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::session::SessionRecord;
use super::token::SessionId;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("the session store is full")]
    Full,
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn get(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Insert or replace.
    async fn put(&self, record: SessionRecord) -> Result<(), StoreError>;
    /// Replace a session that still exists; false if it was removed meanwhile (revoked, locked,
    /// logged out), in which case nothing is written. Every write-back of a session read
    /// earlier goes through here, so a request in flight never brings an ended session back.
    async fn update(&self, record: SessionRecord) -> Result<bool, StoreError>;
    async fn remove(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError>;
    /// Remove a session, atomically: of two callers at once, exactly one gets it (a login
    /// taking its pre-login session for itself).
    async fn take(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.remove(id).await
    }
    /// Remove every session of a user; returns how many.
    async fn remove_user(&self, user: &str) -> Result<usize, StoreError>;
    /// Every live session of a user, with its fingerprint ([`SessionId::fingerprint`]).
    async fn list_user(&self, user: &str) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError>;
    /// Remove one session of a user, named by its fingerprint; whether it existed.
    async fn remove_fingerprint(&self, user: &str, fingerprint: &str) -> Result<bool, StoreError>;
}

/// In-process sessions with hard caps, so neither logins nor anonymous visitors can grow
/// memory without bound. Pre-login sessions are evicted oldest-first when their cap is hit;
/// authenticated ones are never evicted silently: a full store refuses new logins.
pub struct MemoryStore {
    inner: RwLock<Inner>,
    max_authenticated: usize,
    max_anonymous: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<SessionId, Arc<SessionRecord>>,
    /// Counts by kind, kept in step with `map` so caps cost O(1).
    authenticated: usize,
    anonymous: usize,
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

    fn remove(&mut self, id: &SessionId) -> Option<Arc<SessionRecord>> {
        let old = self.map.remove(id)?;
        self.count(&old, -1);
        Some(old)
    }
}

impl MemoryStore {
    pub fn new(max_authenticated: usize, max_anonymous: usize) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            max_authenticated,
            max_anonymous,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.read().expect("session map lock").map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    async fn put(&self, record: SessionRecord) -> Result<(), StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        if !inner.map.contains_key(&record.id) {
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
        }
        inner.insert(Arc::new(record));
        Ok(())
    }

    async fn update(&self, record: SessionRecord) -> Result<bool, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        if !inner.map.contains_key(&record.id) {
            return Ok(false);
        }
        inner.insert(Arc::new(record));
        Ok(true)
    }

    async fn remove(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        Ok(self.inner.write().expect("session map lock").remove(id))
    }

    async fn remove_user(&self, user: &str) -> Result<usize, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        let ids: Vec<SessionId> = inner
            .map
            .values()
            .filter(|r| r.user.as_deref() == Some(user))
            .map(|r| r.id)
            .collect();
        for id in &ids {
            inner.remove(id);
        }
        Ok(ids.len())
    }

    async fn list_user(&self, user: &str) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        let inner = self.inner.read().expect("session map lock");
        Ok(inner
            .map
            .values()
            .filter(|r| r.user.as_deref() == Some(user))
            .map(|r| (r.id.fingerprint(), r.clone()))
            .collect())
    }

    async fn remove_fingerprint(&self, user: &str, fingerprint: &str) -> Result<bool, StoreError> {
        let mut inner = self.inner.write().expect("session map lock");
        let id = inner
            .map
            .values()
            .find(|r| r.user.as_deref() == Some(user) && r.id.fingerprint() == fingerprint)
            .map(|r| r.id);
        Ok(id.and_then(|id| inner.remove(&id)).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::session::{record, AuthLevel};
    use super::*;

    #[tokio::test]
    async fn anonymous_flood_evicts_only_anonymous_sessions() {
        let store = MemoryStore::new(2, 3);
        let alice = record(Some("alice"), AuthLevel::Password, 1);
        store.put(alice.clone()).await.unwrap();
        for t in 0..10 {
            store
                .put(record(None, AuthLevel::None, 10 + t))
                .await
                .unwrap();
        }
        assert_eq!(store.len(), 4, "one user and three anonymous");
        assert!(store.get(&alice.id).await.unwrap().is_some());
        store
            .put(record(Some("bob"), AuthLevel::Password, 2))
            .await
            .unwrap();
        assert_eq!(
            store
                .put(record(Some("carol"), AuthLevel::Password, 3))
                .await,
            Err(StoreError::Full)
        );
    }

    #[tokio::test]
    async fn remove_user_revokes_all_their_sessions() {
        let store = MemoryStore::new(10, 10);
        for _ in 0..3 {
            store
                .put(record(Some("alice"), AuthLevel::Password, 1))
                .await
                .unwrap();
        }
        store
            .put(record(Some("bob"), AuthLevel::Password, 1))
            .await
            .unwrap();
        assert_eq!(store.remove_user("alice").await.unwrap(), 3);
        assert_eq!(store.len(), 1);
    }
}
