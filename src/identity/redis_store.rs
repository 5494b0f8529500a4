//! Sessions shared by every replica through Redis.
//!
//! Keys hold the SHA-256 of the session id, never the id itself, so a Redis dump holds no
//! usable bearer token. Each replica keeps a local cache (at most [`CACHE_TTL`] old) so an
//! authenticated request needs no round trip in the common case; revocations are published
//! on a channel every replica listens to and evict the cached copy at once. If that channel
//! breaks, the cache is dropped once it is back and the TTL alone bounds staleness. Every
//! Redis call has a short deadline; a store that cannot answer makes callers fail closed,
//! except that a session this replica saw within the outage grace stays usable, so care goes
//! on through a short outage (new logins still fail closed).

use std::collections::HashMap;
use std::sync::{Arc, Once, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::session::{Lifetimes, SessionRecord};
use super::store::{SessionStore, StoreError};
use super::token::SessionId;

/// How old a locally cached session may be.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Deadline of one Redis operation.
const OP_TIMEOUT: Duration = Duration::from_millis(500);
/// Cached entries at most; past this the cache is simply emptied.
const MAX_CACHED: usize = 200_000;

/// Session key hash -> record and when it was fetched.
type Cache = Arc<RwLock<HashMap<String, (Arc<SessionRecord>, Instant)>>>;

pub struct RedisStore {
    client: redis::Client,
    /// Made on first use: the manager spawns its reconnect task on the serving runtime.
    conn: tokio::sync::OnceCell<ConnectionManager>,
    pub(crate) prefix: String,
    lifetimes: Lifetimes,
    cache: Cache,
    subscriber: Once,
    /// How long a cached session outlives an unreachable Redis.
    outage_grace: Duration,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) async fn deadline<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("timed out")),
    }
}

impl RedisStore {
    /// Connects lazily: nothing is contacted until the first request.
    pub fn new(url: &str, prefix: &str, lifetimes: Lifetimes) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        Ok(Self {
            client,
            conn: tokio::sync::OnceCell::new(),
            prefix: prefix.to_string(),
            lifetimes,
            cache: Arc::new(RwLock::new(HashMap::new())),
            subscriber: Once::new(),
            outage_grace: Duration::ZERO,
        })
    }

    /// Keep serving sessions seen within `grace` while Redis is unreachable.
    pub fn with_outage_grace(mut self, grace: Duration) -> Self {
        self.outage_grace = grace;
        self
    }

    pub(crate) async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(OP_TIMEOUT))
                    .set_response_timeout(Some(OP_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                self.client
                    .get_connection_manager_lazy(config)
                    .map_err(unavailable)
            })
            .await
            .cloned()
    }

    fn hash(id: &SessionId) -> String {
        Sha256::digest(id.0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn key(&self, hash: &str) -> String {
        format!("{}session:{hash}", self.prefix)
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}user:{user}", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}revoked", self.prefix)
    }

    /// Seconds the record may live in Redis from now.
    fn ttl(&self, r: &SessionRecord) -> u64 {
        let now = r.last_seen.max(r.created);
        if r.is_authenticated() {
            let absolute_left = (r.created + self.lifetimes.absolute.as_secs()).saturating_sub(now);
            self.lifetimes.idle.as_secs().min(absolute_left).max(1)
        } else {
            self.lifetimes.anonymous.as_secs().max(1)
        }
    }

    /// Listen for revocations from other replicas (started on first use, inside the runtime).
    fn ensure_subscriber(&self) {
        self.subscriber.call_once(|| {
            let (client, channel, cache) =
                (self.client.clone(), self.channel(), self.cache.clone());
            tokio::spawn(async move {
                let mut first = true;
                loop {
                    if let Ok(mut pubsub) = client.get_async_pubsub().await {
                        if pubsub.subscribe(&channel).await.is_ok() {
                            // Revocations may have been missed while disconnected.
                            if !first {
                                cache.write().expect("cache lock").clear();
                            }
                            first = false;
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                if let Ok(hash) = msg.get_payload::<String>() {
                                    cache.write().expect("cache lock").remove(&hash);
                                }
                            }
                        }
                    }
                    // Disconnected: the cache stays for the outage grace, and is dropped once
                    // the subscription is back (revocations may have been missed meanwhile).
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
        });
    }

    fn cache_put(&self, hash: String, record: Arc<SessionRecord>) {
        let mut cache = self.cache.write().expect("cache lock");
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(hash, (record, Instant::now()));
    }

    async fn revoke(&self, hash: &str, user: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic().del(self.key(hash));
        if let Some(user) = user {
            pipe.srem(self.user_key(user), hash);
        }
        pipe.publish(self.channel(), hash);
        deadline(pipe.query_async::<()>(&mut conn)).await?;
        self.cache.write().expect("cache lock").remove(hash);
        Ok(())
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn get(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.ensure_subscriber();
        let hash = Self::hash(id);
        let cached = self.cache.read().expect("cache lock").get(&hash).cloned();
        if let Some((record, at)) = &cached {
            if at.elapsed() < CACHE_TTL {
                return Ok(Some(record.clone()));
            }
        }
        let fetched = async {
            let mut conn = self.conn().await?;
            deadline(conn.get::<_, Option<String>>(self.key(&hash))).await
        };
        let raw = match fetched.await {
            Ok(raw) => raw,
            Err(e) => {
                // Privileged and break-glass sessions get no grace: a revocation must reach them.
                let graced = |(r, at): &(Arc<SessionRecord>, Instant)| {
                    at.elapsed() < self.outage_grace
                        && !r.privileged
                        && r.break_glass_until.is_none()
                };
                return match cached.filter(graced) {
                    Some((record, _)) => Ok(Some(record)),
                    None => Err(e),
                };
            }
        };
        let Some(raw) = raw else {
            self.cache.write().expect("cache lock").remove(&hash);
            return Ok(None);
        };
        let mut record: SessionRecord = serde_json::from_str(&raw)
            .map_err(|e| unavailable(format!("corrupt session record: {e}")))?;
        record.id = *id;
        let record = Arc::new(record);
        self.cache_put(hash, record.clone());
        Ok(Some(record))
    }

    async fn put(&self, record: SessionRecord) -> Result<(), StoreError> {
        self.ensure_subscriber();
        let hash = Self::hash(&record.id);
        let json = serde_json::to_string(&record).map_err(unavailable)?;
        let ttl = self.ttl(&record);
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic().set_ex(self.key(&hash), json, ttl);
        if let Some(user) = &record.user {
            pipe.sadd(self.user_key(user), &hash).expire(
                self.user_key(user),
                self.lifetimes.absolute.as_secs() as i64,
            );
        }
        deadline(pipe.query_async::<()>(&mut conn)).await?;
        self.cache_put(hash, Arc::new(record));
        Ok(())
    }

    async fn update(&self, record: SessionRecord) -> Result<bool, StoreError> {
        self.ensure_subscriber();
        let hash = Self::hash(&record.id);
        let json = serde_json::to_string(&record).map_err(unavailable)?;
        let ttl = self.ttl(&record);
        let mut conn = self.conn().await?;
        // `XX`: only if the key still exists, in one step, so a revocation between the read
        // and this write stands.
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&hash))
            .arg(json)
            .arg("EX")
            .arg(ttl)
            .arg("XX");
        let written: Option<String> = deadline(cmd.query_async(&mut conn)).await?;
        if written.is_none() {
            self.cache.write().expect("cache lock").remove(&hash);
            return Ok(false);
        }
        self.cache_put(hash, Arc::new(record));
        Ok(true)
    }

    async fn take(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.ensure_subscriber();
        let hash = Self::hash(id);
        let mut conn = self.conn().await?;
        // GETDEL: read and delete in one step, so two replicas cannot both take it.
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.key(&hash));
        let json: Option<String> = deadline(cmd.query_async(&mut conn)).await?;
        let Some(json) = json else {
            self.cache.write().expect("cache lock").remove(&hash);
            return Ok(None);
        };
        let record: SessionRecord = serde_json::from_str(&json).map_err(unavailable)?;
        self.revoke(&hash, record.user.as_deref()).await?;
        Ok(Some(Arc::new(record)))
    }

    async fn remove(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let existing = self.get(id).await?;
        self.revoke(
            &Self::hash(id),
            existing.as_ref().and_then(|r| r.user.as_deref()),
        )
        .await?;
        Ok(existing)
    }

    async fn remove_user(&self, user: &str) -> Result<usize, StoreError> {
        let mut conn = self.conn().await?;
        let hashes: Vec<String> = deadline(conn.smembers(self.user_key(user))).await?;
        let mut removed = 0;
        for hash in &hashes {
            let existed: bool = deadline(conn.exists(self.key(hash))).await?;
            self.revoke(hash, Some(user)).await?;
            removed += usize::from(existed);
        }
        deadline(conn.del::<_, ()>(self.user_key(user))).await?;
        Ok(removed)
    }

    async fn list_user(&self, user: &str) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        let mut conn = self.conn().await?;
        let hashes: Vec<String> = deadline(conn.smembers(self.user_key(user))).await?;
        let mut out = Vec::new();
        for hash in hashes {
            let raw: Option<String> = deadline(conn.get(self.key(&hash))).await?;
            // The id itself is not stored; the fingerprint is the head of its hash.
            if let Some(record) = raw.and_then(|r| serde_json::from_str::<SessionRecord>(&r).ok()) {
                out.push((hash[..12].to_string(), Arc::new(record)));
            }
        }
        Ok(out)
    }

    async fn remove_fingerprint(&self, user: &str, fingerprint: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let hashes: Vec<String> = deadline(conn.smembers(self.user_key(user))).await?;
        match hashes
            .iter()
            .find(|h| h.len() >= 12 && &h[..12] == fingerprint)
        {
            Some(hash) => {
                let existed: bool = deadline(conn.exists(self.key(hash))).await?;
                self.revoke(hash, Some(user)).await?;
                Ok(existed)
            }
            None => Ok(false),
        }
    }
}

/// Account locks shared by every replica, in a Redis hash (user -> reason).
pub struct RedisLocks {
    store: Arc<RedisStore>,
}

impl RedisLocks {
    pub fn new(store: Arc<RedisStore>) -> Self {
        Self { store }
    }

    fn key(&self) -> String {
        format!("{}locks", self.store.prefix)
    }
}

#[async_trait]
impl super::locks::LockStore for RedisLocks {
    async fn lock(&self, user: &str, reason: &str) -> Result<(), StoreError> {
        let mut conn = self.store.conn().await?;
        deadline(conn.hset::<_, _, _, ()>(self.key(), user, reason)).await
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let mut conn = self.store.conn().await?;
        let n: usize = deadline(conn.hdel(self.key(), user)).await?;
        Ok(n > 0)
    }

    async fn locked(&self, user: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.store.conn().await?;
        deadline(conn.hget(self.key(), user)).await
    }
}
