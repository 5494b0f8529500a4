//! Account locks: a locked user cannot start a session, and locking ends the sessions they
//! have on every replica. Locks are durable: SQLite in the embedded backend, Redis when
//! replicas share state (mirrored in each replica's SQLite file, so a Redis that lost its
//! data gets them back). Every request is also checked against [`LockedUsers`], this
//! replica's copy in memory, so a session that escaped the ending (or a store that lost it)
//! still serves nothing to a locked account.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::store::StoreError;

#[async_trait]
pub trait LockStore: Send + Sync {
    async fn lock(&self, user: &str, reason: &str) -> Result<(), StoreError>;
    /// Whether a lock was lifted.
    async fn unlock(&self, user: &str) -> Result<bool, StoreError>;
    /// The lock's reason, if the user is locked.
    async fn locked(&self, user: &str) -> Result<Option<String>, StoreError>;
    /// This replica's copy of the locked users, checked on every request without I/O.
    fn held(&self) -> &Arc<LockedUsers>;
}

/// A lock store that is the durable record of the locks, reconciled with Redis's copy when
/// replicas share state ([`crate::storage::shared_state`]): the SQLite file, or PostgreSQL.
/// Synchronous: the reconciliation runs on its own thread.
pub trait DurableLocks: LockStore {
    /// Every lock, with its reason and when the store got it (unix milliseconds; older
    /// versions wrote seconds, which only ever makes a later unlock win).
    fn all(&self) -> Result<Vec<(String, String, i64)>, StoreError>;
    /// Learn a lock made elsewhere (kept as it is if already known).
    fn learn(&self, user: &str, reason: &str) -> Result<(), StoreError>;
    /// Date a lock the store holds from now (it was lifted and set again elsewhere).
    fn refresh(&self, user: &str) -> Result<(), StoreError>;
    /// Forget a lock lifted elsewhere; whether there was one.
    fn forget(&self, user: &str) -> Result<bool, StoreError>;
}

/// The locked users as this replica knows them. Kept in step by the lock store: at once for
/// locks made here, by a message for locks made on another replica, and by a periodic
/// resynchronisation should a message be lost.
#[derive(Default)]
pub struct LockedUsers(RwLock<HashSet<String>>);

impl LockedUsers {
    pub fn contains(&self, user: &str) -> bool {
        self.0.read().expect("locked users").contains(user)
    }

    pub fn set(&self, user: &str, locked: bool) {
        let mut set = self.0.write().expect("locked users");
        if locked {
            set.insert(user.to_string());
        } else {
            set.remove(user);
        }
    }

    pub fn replace(&self, users: HashSet<String>) {
        *self.0.write().expect("locked users") = users;
    }
}

/// Unix milliseconds: when a file got a lock, and when Redis recorded an unlock, are compared
/// ([`crate::storage::shared_state`]); a lock and an unlock in one second must not tie.
pub(crate) fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
