//! Factors in Redis, for replicas. Keys hang off the storage prefix; each atomic rule is one
//! command or one Lua script, so two replicas racing on one code cannot both accept it.

use std::sync::Arc;

use async_trait::async_trait;
use redis::AsyncCommands;

use crate::factors::store::{FactorStore, Invitation};
use crate::identity::store::StoreError;
use crate::storage::redis::sessions::{deadline, retried, RedisStore};

pub struct RedisFactors {
    redis: Arc<RedisStore>,
}

impl RedisFactors {
    pub fn new(redis: Arc<RedisStore>) -> Self {
        Self { redis }
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.redis.prefix)
    }
}

static CLAIM_STEP: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        "local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
         local step = tonumber(ARGV[1])
         if step > last or (ARGV[2] == '1' and step == last) then
           redis.call('SET', KEYS[1], ARGV[1]) return 1
         end
         return 0",
    )
});

static TAKE_INVITATION: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        "local d = redis.call('HGET', KEYS[1], 'digest')
         local e = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
         if not d or e <= tonumber(ARGV[1]) then return 0 end
         for i = 2, #ARGV do
           if ARGV[i] == d then redis.call('DEL', KEYS[1]) return 1 end
         end
         return 0",
    )
});

static SAVE: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        "local v = redis.call('HGET', KEYS[1], 'version') or '0'
         if v ~= ARGV[2] then return 0 end
         redis.call('HSET', KEYS[1], 'sealed', ARGV[1], 'version', ARGV[3])
         return 1",
    )
});

static RESERVE: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        "local c = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
         local l = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
         local now = tonumber(ARGV[1])
         local forget = tonumber(ARGV[2])
         if forget > 0 and l + forget < now then c = 0 end
         redis.call('HSET', KEYS[1], 'count', c + 1, 'last', now)
         if forget > 0 then redis.call('EXPIRE', KEYS[1], forget) end
         return {c, l}",
    )
});

static RELEASE: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        "local c = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
         if c > 0 then redis.call('HSET', KEYS[1], 'count', c - 1) end
         return 0",
    )
});

#[async_trait]
impl FactorStore for RedisFactors {
    async fn load(&self, user: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let mut c = self.redis.conn().await?;
        let (sealed, version): (Option<Vec<u8>>, Option<u64>) =
            retried!(c.hmget(self.key("factors", user), &["sealed", "version"]))?;
        Ok(sealed.map(|s| (s, version.unwrap_or(0))))
    }

    async fn save(&self, user: &str, sealed: Vec<u8>, version: u64) -> Result<bool, StoreError> {
        let mut c = self.redis.conn().await?;
        let stored: i64 = deadline(
            SAVE.key(self.key("factors", user))
                .arg(sealed)
                .arg(version)
                .arg(crate::factors::store::new_version())
                .invoke_async(&mut c),
        )
        .await?;
        Ok(stored == 1)
    }

    async fn noted_enrolled(&self, user: &str) -> Result<bool, StoreError> {
        let mut conn = self.redis.conn().await?;
        let key = format!("{}enrolled", self.redis.prefix);
        retried!(conn.sismember(&key, user))
    }

    async fn delete_user(&self, user: &str) -> Result<(), StoreError> {
        let mut c = self.redis.conn().await?;
        let keys = [self.key("factors", user), self.key("recovery", user)];
        deadline(c.del(&keys[..])).await
    }

    async fn claim_totp_step(
        &self,
        user: &str,
        step: u64,
        or_same: bool,
    ) -> Result<bool, StoreError> {
        let mut c = self.redis.conn().await?;
        let won: i64 = deadline(
            CLAIM_STEP
                .key(self.key("totp-step", user))
                .arg(step)
                .arg(if or_same { "1" } else { "0" })
                .invoke_async(&mut c),
        )
        .await?;
        Ok(won == 1)
    }

    async fn set_recovery_codes(&self, user: &str, digests: &[String]) -> Result<(), StoreError> {
        let mut c = self.redis.conn().await?;
        let key = self.key("recovery", user);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key);
        if !digests.is_empty() {
            pipe.sadd(&key, digests);
        }
        deadline(pipe.query_async::<()>(&mut c)).await
    }

    async fn use_recovery_code(
        &self,
        user: &str,
        candidates: &[String],
    ) -> Result<bool, StoreError> {
        let mut c = self.redis.conn().await?;
        for d in candidates {
            let n: i64 = deadline(c.srem(self.key("recovery", user), d)).await?;
            if n == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn recovery_codes_left(&self, user: &str) -> Result<usize, StoreError> {
        let mut c = self.redis.conn().await?;
        deadline(c.scard(self.key("recovery", user))).await
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: u64,
        forget_after: Option<u64>,
    ) -> Result<(u32, u64), StoreError> {
        let mut c = self.redis.conn().await?;
        let (count, last): (u32, u64) = deadline(
            RESERVE
                .key(self.key("failures", key))
                .arg(now)
                .arg(forget_after.unwrap_or(0))
                .invoke_async(&mut c),
        )
        .await?;
        Ok((count, last))
    }

    async fn release_attempt(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.redis.conn().await?;
        let _: i64 = deadline(RELEASE.key(self.key("failures", key)).invoke_async(&mut c)).await?;
        Ok(())
    }

    async fn failures(&self, key: &str) -> Result<(u32, u64), StoreError> {
        let mut c = self.redis.conn().await?;
        let (n, last): (Option<u32>, Option<u64>) =
            deadline(c.hmget(self.key("failures", key), &["count", "last"])).await?;
        Ok((n.unwrap_or(0), last.unwrap_or(0)))
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.redis.conn().await?;
        deadline(c.del(self.key("failures", key))).await
    }

    async fn put_invitation(&self, user: &str, inv: Invitation) -> Result<(), StoreError> {
        let mut c = self.redis.conn().await?;
        let key = self.key("invitation", user);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .del(&key)
            .hset(&key, "digest", &inv.digest)
            .hset(&key, "expires", inv.expires);
        deadline(pipe.query_async::<()>(&mut c)).await
    }

    async fn take_invitation(
        &self,
        user: &str,
        candidates: &[String],
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut c = self.redis.conn().await?;
        let mut call = TAKE_INVITATION.key(self.key("invitation", user));
        call.arg(now);
        for d in candidates {
            call.arg(d);
        }
        let won: i64 = deadline(call.invoke_async(&mut c)).await?;
        Ok(won == 1)
    }

    async fn put_challenge(
        &self,
        key: &str,
        state: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        let mut c = self.redis.conn().await?;
        let now = crate::identity::session::Clock::now(&crate::identity::session::SystemClock);
        let ttl = expires.saturating_sub(now).max(5);
        deadline(c.set_ex(self.key("challenge", key), state, ttl)).await
    }

    async fn take_challenge(&self, key: &str, _now: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.redis.conn().await?;
        deadline(c.get_del(self.key("challenge", key))).await
    }
}

#[cfg(test)]
mod tests;
