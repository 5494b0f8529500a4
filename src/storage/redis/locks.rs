//! Account locks shared by every replica through Redis, kept in the records store too.

use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;

use super::sessions::{deadline, retried, RedisStore};
use crate::identity::locks::{DurableLocks, LockStore, LockedUsers};
use crate::identity::store::StoreError;

/// Account locks shared by every replica, in a Redis hash (user -> reason), mirrored in this
/// replica's SQLite file so a Redis that lost its data gets them back.
pub struct RedisLocks {
    store: Arc<RedisStore>,
    durable: Arc<dyn DurableLocks>,
}

impl RedisLocks {
    pub fn new(store: Arc<RedisStore>, durable: Arc<dyn DurableLocks>) -> Self {
        Self { store, durable }
    }
}

#[async_trait]
impl LockStore for RedisLocks {
    async fn lock(&self, user: &str, reason: &str) -> Result<(), StoreError> {
        // The records store first: a lock Redis took but it missed could be lost with Redis.
        self.durable.lock(user, reason).await?;
        let told = async {
            let mut conn = self.store.conn().await?;
            let mut pipe = redis::pipe();
            pipe.atomic()
                .hset(self.store.locks_key(), user, reason)
                .hdel(self.store.unlocked_key(), user)
                .publish(self.store.locks_channel(), format!("+{user}"));
            deadline(pipe.query_async::<()>(&mut conn)).await
        };
        told.await.map_err(|e| {
            let why = match e {
                StoreError::Unavailable(why) => why,
                other => other.to_string(),
            };
            StoreError::Unavailable(format!(
                "{why}; the lock is stored and in force on this replica, and reaches the others when they read the records store or Redis is back"
            ))
        })
    }

    /// Lifted in Redis with the time, so that every replica's file forgets the lock (a lock
    /// missing from Redis without such a record was lost, and goes back).
    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let mut conn = self.store.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(self.store.locks_key(), user)
            .hset(
                self.store.unlocked_key(),
                user,
                crate::identity::locks::unix_now_ms(),
            )
            .publish(self.store.locks_channel(), format!("-{user}"));
        let (n, _, _): (usize, usize, usize) = deadline(pipe.query_async(&mut conn)).await?;
        let in_file = self.durable.unlock(user).await?;
        Ok(n > 0 || in_file)
    }

    async fn locked(&self, user: &str) -> Result<Option<String>, StoreError> {
        self.store.health.verified()?;
        let mut conn = self.store.conn().await?;
        retried!(conn.hget(self.store.locks_key(), user))
    }

    fn held(&self) -> &Arc<LockedUsers> {
        &self.store.locked
    }
}
