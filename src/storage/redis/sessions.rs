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

use crate::storage::redis::{Conn, Redis};
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::AsyncCommands;

use super::scripts;

mod many;
use crate::identity::locks::LockedUsers;
use crate::identity::session::{Lifetimes, SessionRecord};
use crate::identity::store::{Admission, Admitted, Removed, SessionStore, StoreError, Updated};
use crate::identity::token::SessionId;
use crate::storage::shared_state::StateHealth;

/// How old a locally cached session may be.
pub const CACHE_TTL: Duration = Duration::from_secs(1);
/// Deadline of one Redis operation.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_millis(500);
/// Cached entries at most; past this the cache is simply emptied.
const MAX_CACHED: usize = 200_000;
/// A signed-in record stays in Redis this long past its timeout, so the sweeper finds it and
/// ends the portal's session with its vault (Redis dropping it would lose the vault).
const SWEEP_GRACE: u64 = 300;
/// How long one replica's sweeper lease lasts (it is renewed at every sweep).
const SWEEP_LEASE_MS: u64 = 90_000;

/// Session key hash -> record and when it was fetched.
type Cache = Arc<RwLock<HashMap<String, (Arc<SessionRecord>, Instant)>>>;

pub struct RedisStore {
    redis: Redis,
    /// Made on first use: the manager spawns its reconnect task on the serving runtime.
    conn: tokio::sync::OnceCell<Conn>,
    pub(crate) prefix: String,
    lifetimes: Lifetimes,
    cache: Cache,
    subscriber: Once,
    /// How long a cached session outlives an unreachable Redis.
    outage_grace: Duration,
    /// Whether what Redis holds can be trusted ([`crate::storage::shared_state`]).
    pub(crate) health: Arc<StateHealth>,
    /// The locked users, kept in step by other replicas' messages.
    pub(crate) locked: Arc<LockedUsers>,
    /// Names this replica in the sweeper's lease.
    replica_id: String,
    /// Pre-login sessions at most (0: no cap).
    max_anonymous: usize,
    /// Seals the vault and the break-glass reason of every record written (the factors' key
    /// ring: replicas share it).
    sealer: Arc<crate::factors::crypto::KeyRing>,
}

/// What a sealed part of a session record is bound to: its purpose and the session's key, so
/// it cannot be moved to another record.
fn sealing_aad(hash: &str) -> Vec<u8> {
    format!("session-vault\0{hash}").into_bytes()
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

/// One page of `SCAN … MATCH pattern`: the next cursor (0 when done) and the keys found.
pub(crate) async fn scan_page<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    cursor: u64,
    pattern: &str,
    count: usize,
) -> Result<(u64, Vec<String>), StoreError> {
    deadline(
        redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count)
            .query_async(conn),
    )
    .await
}

/// Whether `e` says the connection broke (Redis restarted, a failover, a reset). The
/// connection manager reconnects as it reports it, so the same call made again reaches the
/// Redis that is back.
pub(crate) fn broken(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_io_error()
}

/// [`deadline`] for a call that may run twice: made once more if the connection broke under
/// it. Only for reads and for writes whose repetition is harmless (a conditional write that
/// then reports a conflict, a budget counted one request too many); `$call` is evaluated again
/// for the second try.
macro_rules! retried {
    ($call:expr) => {
        match tokio::time::timeout($crate::storage::redis::sessions::OP_TIMEOUT, $call).await {
            Ok(Err(e)) if $crate::storage::redis::sessions::broken(&e) => {
                tracing::debug!(error = %e, "redis: the connection broke; trying once more");
                $crate::storage::redis::sessions::deadline($call).await
            }
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err($crate::identity::store::StoreError::Unavailable(e.to_string())),
            Err(_) => Err($crate::identity::store::StoreError::Unavailable(
                "timed out".into(),
            )),
        }
    };
}
pub(crate) use retried;

impl RedisStore {
    /// Connects lazily: nothing is contacted until the first request. Sessions are refused
    /// until `health` trusts Redis; `locked` is the replica's copy of the locked users.
    pub fn new(
        redis: Redis,
        prefix: &str,
        lifetimes: Lifetimes,
        health: Arc<StateHealth>,
        locked: Arc<LockedUsers>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            redis,
            conn: tokio::sync::OnceCell::new(),
            prefix: prefix.to_string(),
            lifetimes,
            cache: Arc::new(RwLock::new(HashMap::new())),
            subscriber: Once::new(),
            outage_grace: Duration::ZERO,
            health,
            locked,
            replica_id: format!("{:032x}", rand::random::<u128>()),
            max_anonymous: 0,
            sealer: Arc::new(crate::factors::crypto::KeyRing::ephemeral()),
        })
    }

    /// Seal records with `keys` (every replica must use the same ring).
    pub fn sealing_with(mut self, keys: Arc<crate::factors::crypto::KeyRing>) -> Self {
        self.sealer = keys;
        self
    }

    /// The record as Redis keeps it: its vault (the portal's session cookies) and break-glass
    /// reason sealed, so a dump of Redis holds no usable portal session.
    fn sealed_json(&self, record: &SessionRecord, hash: &str) -> Result<String, StoreError> {
        use base64::Engine;
        let mut r = record.clone();
        let secret = serde_json::to_vec(&(&r.vault, &r.break_glass_reason)).map_err(unavailable)?;
        r.vault = Vec::new();
        r.break_glass_reason = None;
        let sealed = self.sealer.seal(&sealing_aad(hash), &secret);
        r.sealed = Some(base64::engine::general_purpose::STANDARD.encode(sealed));
        serde_json::to_string(&r).map_err(unavailable)
    }

    /// A record as Redis keeps it, opened. Records written before sealing (a clear vault) are
    /// read as they are.
    fn opened(&self, raw: &str, hash: &str) -> Result<SessionRecord, StoreError> {
        use base64::Engine;
        let mut r: SessionRecord = serde_json::from_str(raw)
            .map_err(|e| unavailable(format!("corrupt session record: {e}")))?;
        if let Some(sealed) = r.sealed.take() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(sealed)
                .map_err(|_| unavailable("corrupt sealed session record"))?;
            let (plain, _) = self
                .sealer
                .open(&sealing_aad(hash), &bytes)
                .map_err(|e| unavailable(format!("sealed session record: {e}")))?;
            let (vault, reason) = serde_json::from_slice(&plain)
                .map_err(|_| unavailable("corrupt sealed session record"))?;
            r.vault = vault;
            r.break_glass_reason = reason;
        }
        Ok(r)
    }

    /// Keep serving sessions seen within `grace` while Redis is unreachable.
    /// At most `max` pre-login sessions at once, the oldest ended first (0: no cap).
    pub fn with_anonymous_cap(mut self, max: usize) -> Self {
        self.max_anonymous = max;
        self
    }

    pub fn with_outage_grace(mut self, grace: Duration) -> Self {
        self.outage_grace = grace;
        self
    }

    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        self.conn
            .get_or_try_init(|| async { deadline(self.redis.shared(OP_TIMEOUT)).await })
            .await
            .cloned()
    }

    fn hash(id: &SessionId) -> String {
        id.stored_name()
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

    /// Lock changes: `+user` or `-user`.
    pub(crate) fn locks_channel(&self) -> String {
        format!("{}locked", self.prefix)
    }

    fn tomb_key(&self, hash: &str) -> String {
        format!("{}ended:{hash}", self.prefix)
    }

    pub(crate) fn locks_key(&self) -> String {
        format!("{}locks", self.prefix)
    }

    pub(crate) fn unlocked_key(&self) -> String {
        format!("{}unlocked", self.prefix)
    }

    fn generation_key(&self) -> String {
        format!("{}generation", self.prefix)
    }

    /// A tombstone outlives every copy of the record: the longest a session can live.
    fn tomb_ttl(&self) -> u64 {
        self.lifetimes
            .absolute
            .max(self.lifetimes.anonymous)
            .as_secs()
            .max(1)
    }

    /// Seconds the record may live in Redis from now: a signed-in one, until the sweeper has
    /// had time to end it (requests treat it as ended from its timeout on).
    fn ttl(&self, r: &SessionRecord) -> u64 {
        let now = r.last_seen.max(r.created);
        if r.is_authenticated() {
            let absolute_left = (r.created + self.lifetimes.absolute.as_secs()).saturating_sub(now);
            self.lifetimes.idle.as_secs().min(absolute_left).max(1) + SWEEP_GRACE
        } else {
            self.lifetimes.anonymous.as_secs().max(1)
        }
    }

    /// Listen for revocations and locks from other replicas (started on first use, inside
    /// the runtime).
    fn ensure_subscriber(&self) {
        self.subscriber.call_once(|| {
            let (subscribers, cache, health, locked) = (
                self.redis.subscribers(),
                self.cache.clone(),
                self.health.clone(),
                self.locked.clone(),
            );
            let channels = [self.channel(), self.locks_channel()];
            tokio::spawn(async move {
                let mut first = true;
                // On a cluster, any node carries every message: the next one when one is down.
                for client in subscribers.iter().cycle() {
                    if let Ok(mut pubsub) = client.get_async_pubsub().await {
                        if pubsub.subscribe(&channels).await.is_ok() {
                            // Revocations may have been missed while disconnected, and Redis
                            // may have restarted: forget every copy, and check it now.
                            if !first {
                                cache.write().expect("cache lock").clear();
                                health.suspect();
                            }
                            first = false;
                            let mut messages = pubsub.on_message();
                            while let Some(msg) = messages.next().await {
                                let Ok(payload) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                if msg.get_channel_name() == channels[1] {
                                    match payload.split_at_checked(1) {
                                        Some(("+", user)) => locked.set(user, true),
                                        Some(("-", user)) => locked.set(user, false),
                                        _ => {}
                                    }
                                } else {
                                    cache.write().expect("cache lock").remove(&payload);
                                }
                            }
                        }
                    }
                    // Disconnected: the cache stays for the outage grace, and is dropped once
                    // the subscription is back.
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

    /// End a user's sessions (but the one hashed `keep`; only those whose hash starts with
    /// `fingerprint`, if given), in one script.
    async fn end_of_user(
        &self,
        user: &str,
        keep: &str,
        fingerprint: &str,
    ) -> Result<Vec<Removed>, StoreError> {
        let mut call = scripts::REMOVE_USER.prepare_invoke();
        call.key(self.user_key(user))
            .arg(&self.prefix)
            .arg(keep)
            .arg(self.tomb_ttl())
            .arg(self.channel())
            .arg(fingerprint);
        // Forgotten here first: if Redis does not answer, this replica does not serve them
        // through the outage grace (the caller is told the end failed).
        let forget = || {
            self.cache.write().expect("cache lock").retain(|h, (r, _)| {
                r.user.as_deref() != Some(user) || h == keep || !h.starts_with(fingerprint)
            })
        };
        forget();
        let mut conn = self.conn().await?;
        let out: Vec<String> = deadline(call.invoke_async(&mut conn)).await?;
        // The other replicas learn it from the channel; this one forgets any copy read since.
        forget();
        Ok(self.removed(&out))
    }

    /// End the session keyed `hash` (its tombstone, the other replicas told); the record it
    /// was, to this caller alone.
    async fn end_hash(&self, conn: &mut Conn, hash: &str) -> Result<Option<String>, StoreError> {
        let mut call = scripts::REMOVE.prepare_invoke();
        call.key(self.key(hash))
            .arg(&self.prefix)
            .arg(hash)
            .arg(self.tomb_ttl())
            .arg(self.channel());
        self.cache.write().expect("cache lock").remove(hash);
        let raw: Option<String> = deadline(call.invoke_async(conn)).await?;
        self.cache.write().expect("cache lock").remove(hash);
        Ok(raw)
    }

    /// The write of `record` (read at its version, bumped here) under `hash`, which lands
    /// only if the stored one is still at that version: 1 stored, 2 changed meanwhile, 0 ended.
    fn write_back(
        &self,
        hash: &str,
        record: &mut SessionRecord,
    ) -> Result<redis::ScriptInvocation<'static>, StoreError> {
        let read = record.version;
        record.version += 1;
        let json = self.sealed_json(record, hash)?;
        let mut call = scripts::UPDATE.prepare_invoke();
        call.key(self.key(hash))
            .arg(json)
            .arg(self.ttl(record))
            .arg(read);
        Ok(call)
    }

    /// `hash, record, hash, record…` as a script returns ended sessions.
    fn removed(&self, pairs: &[String]) -> Vec<Removed> {
        pairs
            .chunks_exact(2)
            .filter_map(|p| {
                let record = self.opened(&p[1], &p[0]).ok()?;
                Some(Removed {
                    fingerprint: p[0].get(..12)?.to_string(),
                    record: Arc::new(record),
                })
            })
            .collect()
    }

    /// The last complete count of signed-in sessions by level (the sweeper writes it).
    fn census_key(&self) -> String {
        format!("{}census", self.prefix)
    }

    fn sweeper_key(&self) -> String {
        format!("{}sweeper", self.prefix)
    }

    /// Whether this replica holds the sweeper's lease (taken when free, renewed when held).
    async fn sweep_lease(&self, conn: &mut Conn) -> Result<bool, StoreError> {
        let me = self.replica_id.as_str();
        let taken: Option<String> = deadline(
            redis::cmd("SET")
                .arg(self.sweeper_key())
                .arg(me)
                .arg("NX")
                .arg("PX")
                .arg(SWEEP_LEASE_MS)
                .query_async(conn),
        )
        .await?;
        if taken.is_some() {
            return Ok(true);
        }
        let renewed: u8 = deadline(
            scripts::RENEW_LEASE
                .key(self.sweeper_key())
                .arg(me)
                .arg(SWEEP_LEASE_MS)
                .invoke_async(conn),
        )
        .await?;
        Ok(renewed == 1)
    }

    fn decode(&self, raw: &str, id: &SessionId) -> Result<SessionRecord, StoreError> {
        let mut record = self.opened(raw, &Self::hash(id))?;
        record.id = *id;
        Ok(record)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn get(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.ensure_subscriber();
        self.health.verified()?;
        let hash = Self::hash(id);
        let cached = self.cache.read().expect("cache lock").get(&hash).cloned();
        if let Some((record, at)) = &cached {
            if at.elapsed() < CACHE_TTL {
                return Ok(Some(record.clone()));
            }
        }
        let fetched = async {
            let mut conn = self.conn().await?;
            retried!(conn.get::<_, Option<String>>(self.key(&hash)))
        };
        let raw = match fetched.await {
            Ok(raw) => raw,
            Err(e) => {
                self.health.suspect();
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
        let record = Arc::new(self.decode(&raw, id)?);
        self.cache_put(hash, record.clone());
        Ok(Some(record))
    }

    async fn create(
        &self,
        mut record: SessionRecord,
        admission: Admission<'_>,
    ) -> Result<Admitted, StoreError> {
        self.ensure_subscriber();
        self.health.verified()?;
        let hash = Self::hash(&record.id);
        record.version = 1;
        let user = record.user.clone().unwrap_or_default();
        // This replica's copy of the locks answers first, as in the embedded store: a Redis
        // back from an old snapshot (not yet noticed) may have lost the lock the script checks.
        if !user.is_empty() && self.locked.contains(&user) {
            return Ok(Admitted::Locked);
        }
        let replaced = admission.replaces.map(Self::hash).unwrap_or_default();
        let (level, max, evict) = match admission.cap {
            Some(cap) => (cap.level as u8 + 1, cap.max, cap.evict_oldest),
            None => (0, 0, false),
        };
        let mut conn = self.conn().await?;
        // A step-up asked of the replaced session meanwhile is carried over (at most twice:
        // asked again, it would be a third write).
        let mut out: Vec<String> = Vec::new();
        for _ in 0..3 {
            let json = self.sealed_json(&record, &hash)?;
            let mut call = scripts::CREATE.prepare_invoke();
            call.key(self.key(&hash))
                .key(self.tomb_key(&hash))
                .key(self.user_key(&user))
                .key(self.locks_key())
                .key(self.generation_key())
                .arg(json)
                .arg(self.ttl(&record))
                .arg(&user)
                .arg(&hash)
                .arg(&replaced)
                .arg(level)
                .arg(max)
                .arg(if evict { "1" } else { "0" })
                .arg(self.tomb_ttl())
                .arg(self.channel())
                .arg(&self.prefix)
                .arg(self.lifetimes.absolute.as_secs())
                .arg(self.max_anonymous)
                .arg(self.lifetimes.anonymous.as_secs().max(1));
            // Made again after a broken connection, a creation that did land answers `ended`
            // (the key exists): the sign-in is refused, nothing is stored twice.
            out = retried!(call.invoke_async(&mut conn))?;
            match (
                out.first().map(String::as_str),
                out.get(1).and_then(|w| w.parse().ok()),
            ) {
                (Some("wanted"), Some(after)) => {
                    record.proof_wanted_after_us = record.proof_wanted_after_us.max(Some(after))
                }
                _ => break,
            }
        }
        let admitted = match out.first().map(String::as_str) {
            Some("stored") => Admitted::Stored {
                evicted: self.removed(&out[1..]),
            },
            Some("locked") => Admitted::Locked,
            Some("ended") => Admitted::Ended,
            Some("cap") => Admitted::AtCap,
            _ => {
                // No generation key: this Redis lost its data (or was never set up).
                self.health
                    .lost("Redis holds no generation: its data was lost");
                return Err(StoreError::Unavailable(
                    "the shared state was lost; sign-ins wait until it is re-established".into(),
                ));
            }
        };
        if let Admitted::Stored { .. } = admitted {
            let mut cache = self.cache.write().expect("cache lock");
            for ended in out[1..].iter().step_by(2).chain([&replaced]) {
                cache.remove(ended);
            }
            drop(cache);
            self.cache_put(hash, Arc::new(record));
        }
        Ok(admitted)
    }

    async fn update(&self, mut record: SessionRecord) -> Result<Updated, StoreError> {
        self.ensure_subscriber();
        self.health.verified()?;
        let hash = Self::hash(&record.id);
        let call = self.write_back(&hash, &mut record)?;
        let mut conn = self.conn().await?;
        // Made again after a broken connection, a write that did land reports a conflict.
        let written: u8 = retried!(call.invoke_async(&mut conn))?;
        match written {
            1 => {
                let record = Arc::new(record);
                self.cache_put(hash, record.clone());
                Ok(Updated::Stored(record))
            }
            2 => {
                self.cache.write().expect("cache lock").remove(&hash);
                Ok(Updated::Changed)
            }
            _ => {
                self.cache.write().expect("cache lock").remove(&hash);
                Ok(Updated::Ended)
            }
        }
    }

    async fn remove(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.ensure_subscriber();
        let hash = Self::hash(id);
        // Not served through an outage once its end was asked for (see `end_of_user`).
        self.cache.write().expect("cache lock").remove(&hash);
        let mut conn = self.conn().await?;
        let raw = self.end_hash(&mut conn, &hash).await?;
        raw.map(|raw| self.decode(&raw, id).map(Arc::new))
            .transpose()
    }

    async fn remove_user(
        &self,
        user: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<Removed>, StoreError> {
        self.end_of_user(user, &except.map(Self::hash).unwrap_or_default(), "")
            .await
    }

    async fn list_user(&self, user: &str) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        let mut conn = self.conn().await?;
        let set = self.user_key(user);
        // The id itself is not stored; the fingerprint is the head of its hash.
        Ok(self
            .of_set(&mut conn, &set)
            .await?
            .into_iter()
            .map(|(hash, record)| (hash[..12].to_string(), Arc::new(record)))
            .collect())
    }

    async fn want_proof(&self, user: &str, after_us: i64) -> Result<usize, StoreError> {
        self.ask_user(user, after_us).await
    }

    async fn list_all(&self, max: usize) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        self.every_session(max).await
    }

    async fn remove_fingerprint(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<Option<Removed>, StoreError> {
        // A fingerprint is 12 hex digits; anything else names no session.
        if fingerprint.len() != 12 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        Ok(self.end_of_user(user, "", fingerprint).await?.pop())
    }

    async fn sweep(
        &self,
        now: u64,
        lifetimes: &Lifetimes,
        max: usize,
    ) -> Result<Vec<Removed>, StoreError> {
        self.health.verified()?;
        let mut conn = self.conn().await?;
        if !self.sweep_lease(&mut conn).await? {
            return Ok(Vec::new());
        }
        // Signed-in sessions are in their users' sets; a sweep reads each set once.
        let users = self.user_sets(&mut conn).await?;
        let mut ended = Vec::new();
        // The sweeper counts what it reads for every replica's `vigie_sessions_active`.
        let mut census = crate::identity::store::Census::default();
        for user_key in users {
            for (hash, record) in self.of_set(&mut conn, &user_key).await? {
                if ended.len() >= max {
                    return Ok(ended);
                }
                if !record.expired(now, lifetimes) {
                    census.add(record.level);
                    continue;
                }
                // The script hands the record to exactly one ender: a request ending it
                // meanwhile gets it instead, and its portal session ends once.
                let raw = self.end_hash(&mut conn, &hash).await?;
                ended.extend(self.removed(&[hash, raw.unwrap_or_default()]));
            }
        }
        let _: Result<(), _> = deadline(conn.set_ex(self.census_key(), census.to_text(), 60)).await;
        Ok(ended)
    }

    async fn census(&self) -> Result<Option<crate::identity::store::Census>, StoreError> {
        let mut conn = self.conn().await?;
        let raw: Option<String> = deadline(conn.get(self.census_key())).await?;
        Ok(raw.and_then(|t| crate::identity::store::Census::from_text(&t)))
    }
}
