//! Whether the shared state in Redis can be trusted, and getting it back when it cannot.
//!
//! Redis holds what replicas share: sessions, locks, factors, replay markers. A Redis that
//! restarts without its data, or from an old snapshot, would silently unlock accounts and
//! forget revocations. So Redis keeps a generation counter, raised at every check, and each
//! replica mirrors the last value it saw in its SQLite file with the account locks. A Redis
//! whose counter is missing or behind the mirror has lost data: sessions and sign-ins fail
//! closed, a critical alert goes out, and the replica re-establishes the state from its file
//! (every session ended, its locks written back, a new generation) before serving again.
//! Redis without persistence is refused outright, at start and about once a minute after.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::ConnectionLike;

use crate::identity::locks::DurableLocks;
use crate::identity::store::StoreError;
use crate::storage::redis::sessions::{deadline, scan_page};

mod ledger;
mod mirror;

pub use ledger::Ledger;

/// How often each replica checks the generation (and resynchronises its copy of the locks).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How far a re-establishment moves the generation: more than all replicas' checks between
/// two of one replica's, so the others' marks are behind it.
const RECOVERY_JUMP: i64 = 1000;
/// Redis's persistence settings are asked at every this many checks (and while the state is
/// not trusted).
const PERSISTENCE_EVERY: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Not checked yet (Redis unreachable since the start): fail closed.
    Unchecked,
    Trusted,
    /// Lost, or not safe to use; why.
    Refused(String),
}

/// The verdict every session operation consults (no I/O).
#[derive(Debug)]
pub struct StateHealth {
    state: RwLock<State>,
    wake: tokio::sync::Notify,
    /// Redis misbehaved since the last check (an error, a reconnection): said in `/readyz`
    /// until the next check, without refusing sessions (the outage grace decides that).
    rechecking: std::sync::atomic::AtomicBool,
    /// The last loss this replica re-established, and when (unix seconds): `/readyz` keeps
    /// saying it, for whoever looks after the alert.
    last_loss: RwLock<Option<(u64, String)>>,
}

impl Default for StateHealth {
    fn default() -> Self {
        Self {
            state: RwLock::new(State::Unchecked),
            wake: tokio::sync::Notify::new(),
            rechecking: Default::default(),
            last_loss: RwLock::new(None),
        }
    }
}

impl StateHealth {
    /// A health that trusts at once (unit tests of the store alone).
    pub fn trusted() -> Self {
        let h = Self::default();
        h.trust();
        h
    }

    fn set(&self, s: State) {
        *self.state.write().expect("state health") = s;
    }

    /// `Ok` when sessions may be used.
    pub fn verified(&self) -> Result<(), StoreError> {
        match &*self.state.read().expect("state health") {
            State::Trusted => Ok(()),
            State::Unchecked => Err(StoreError::Unavailable(
                "the shared state has not been checked yet".into(),
            )),
            State::Refused(why) => Err(StoreError::Unavailable(why.clone())),
        }
    }

    /// Redis misbehaved (an error, a reconnection): check again now.
    pub fn suspect(&self) {
        self.unverified();
        self.wake.notify_one();
    }

    /// A check could not be made: say so until one succeeds.
    fn unverified(&self) {
        self.rechecking
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn trust(&self) {
        self.rechecking
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.set(State::Trusted);
    }

    fn recovered(&self, why: &str) {
        let now = unix_secs();
        *self.last_loss.write().expect("last loss") = Some((now, why.to_string()));
        self.trust();
    }

    /// Lost data was seen on the request path: fail closed until the check has recovered it.
    pub fn lost(&self, why: &str) {
        self.set(State::Refused(why.to_string()));
        self.wake.notify_one();
    }

    /// For `/readyz`: whether sessions are served, and the state in a word or a reason.
    pub fn readiness(&self) -> (bool, String) {
        let rechecking = self.rechecking.load(std::sync::atomic::Ordering::Relaxed);
        match &*self.state.read().expect("state health") {
            State::Trusted if rechecking => (true, "rechecking".into()),
            State::Trusted => (true, "trusted".into()),
            State::Unchecked => (false, "unchecked".into()),
            State::Refused(why) => (false, why.clone()),
        }
    }

    /// The last loss re-established here: (unix seconds, reason).
    pub fn last_loss(&self) -> Option<(u64, String)> {
        self.last_loss.read().expect("last loss").clone()
    }
}

/// The generation check, run at start, every [`CHECK_EVERY`], and at once when a replica
/// suspects Redis (a reconnect, a missing generation).
pub struct SharedState {
    pub health: Arc<StateHealth>,
    pub ledger: Arc<Ledger>,
    /// The durable copy of the locks (it keeps this replica's copy in memory too).
    pub locks: Arc<dyn DurableLocks>,
    pub prefix: String,
    /// The operator vouched for persistence where `CONFIG GET` is refused.
    pub vouched: bool,
    /// Checks made so far.
    pub rounds: std::sync::atomic::AtomicU64,
}

static GENERATION: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        "local g = redis.call('GET', KEYS[1])
         local e = redis.call('GET', KEYS[2]) or ''
         if not g then return {-1, e} end
         redis.call('INCR', KEYS[1])
         return {tonumber(g), e}",
    )
});

/// What a check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    Trusted,
    /// First start against this Redis: the generation was set up.
    Initialised,
    /// Data was lost, and the state re-established from this replica's file.
    Recovered(String),
}

impl SharedState {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Check Redis on `conn`; on lost data, fail closed, alert, and re-establish.
    pub async fn check<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Finding, StoreError> {
        // Persistence is a setting: asked at the first check, then about once a minute and
        // whenever the state is not trusted.
        let round = self
            .rounds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if round % PERSISTENCE_EVERY == 0 || self.health.verified().is_err() {
            if let Some(problem) = self.persistence(conn).await? {
                self.health.set(State::Refused(problem.clone()));
                return Err(StoreError::Unavailable(problem));
            }
        }
        let mut call = GENERATION.prepare_invoke();
        call.key(self.key("generation")).key(self.key("epoch"));
        let (prior, epoch): (i64, String) = deadline(call.invoke_async(conn)).await?;
        let (mark, known_epoch) = self.ledger.mark()?;
        let lost = if prior < 0 && mark == 0 {
            None
        } else if prior < 0 {
            Some("Redis came back without its data (no generation)".to_string())
        } else if prior < mark {
            Some(format!(
                "Redis came back from an older snapshot (generation {prior}, this replica saw {mark})"
            ))
        } else {
            None
        };
        if let Some(why) = lost {
            // A Redis that came back empty may have come back without persistence too.
            if let Some(problem) = self.persistence(conn).await? {
                self.health.set(State::Refused(problem.clone()));
                return Err(StoreError::Unavailable(problem));
            }
            return self.recover(conn, why, prior.max(mark)).await;
        }
        if prior < 0 {
            let epoch = new_epoch();
            self.write_mark(conn, 1, &epoch).await?;
            self.sync_locks(conn).await?;
            self.sync_enrolled(conn, true).await?;
            self.health.trust();
            return Ok(Finding::Initialised);
        }
        // Another replica re-established the state: this file's enrollments go back whole
        // (its locks go back at every check).
        let elsewhere = !known_epoch.is_empty() && epoch != known_epoch;
        self.ledger.set_mark(prior + 1, &epoch)?;
        self.sync_locks(conn).await?;
        self.sync_enrolled(conn, elsewhere).await?;
        if elsewhere {
            self.ledger.quarantine(unix_secs());
            self.health
                .recovered("the shared state was re-established by another replica");
        } else {
            self.health.trust();
        }
        Ok(Finding::Trusted)
    }

    /// `Some(problem)` when Redis would lose what it holds at a restart.
    async fn persistence<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<Option<String>, StoreError> {
        let config = |name: &'static str| {
            let mut c = redis::cmd("CONFIG");
            c.arg("GET").arg(name);
            c
        };
        let aof: redis::RedisResult<Vec<String>> = config("appendonly").query_async(conn).await;
        let rdb: redis::RedisResult<Vec<String>> = config("save").query_async(conn).await;
        match (aof, rdb) {
            (Ok(aof), Ok(rdb)) => {
                let aof = aof.get(1).is_some_and(|v| v == "yes");
                let rdb = rdb.get(1).is_some_and(|v| !v.trim().is_empty());
                Ok((!aof && !rdb).then(|| {
                    "Redis keeps no data on disk (appendonly no, save \"\"): locks, factors and \
                     invitations would vanish at its next restart. Set `appendonly yes` in \
                     redis.conf"
                        .to_string()
                }))
            }
            (Err(e), _) | (_, Err(e)) if e.is_io_error() || e.is_timeout() => {
                Err(StoreError::Unavailable(e.to_string()))
            }
            _ if self.vouched => Ok(None),
            _ => Ok(Some(
                "Redis refuses `CONFIG GET`, so Vigie cannot see whether it keeps its data on \
                 disk. Check that it does (appendonly or RDB snapshots), then set \
                 `[storage] redis_persistence = true`"
                    .to_string(),
            )),
        }
    }

    async fn recover<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        why: String,
        behind: i64,
    ) -> Result<Finding, StoreError> {
        self.health.set(State::Refused(format!(
            "{why}; sessions and sign-ins wait until it is re-established"
        )));
        tracing::error!(target: "vigie::alert", severity = "critical", event = "shared_state_lost", reason = %why, "the shared state in Redis was lost: every session ends, locks are restored from this replica's file, enrolled users need an invitation for a new factor; recovery codes and invitations used since the loss may be usable again");
        // Sessions in an old snapshot may have been revoked since: none survives.
        for pattern in ["session:*", "user:*"] {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys) = scan_page(conn, cursor, &self.key(pattern), 1000).await?;
                if !keys.is_empty() {
                    deadline(redis::cmd("DEL").arg(&keys).query_async::<()>(conn)).await?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        self.ledger.quarantine(unix_secs());
        self.sync_locks(conn).await?;
        self.sync_enrolled(conn, true).await?;
        // Well past every other replica's mark, so that none takes this for a loss of its own.
        let epoch = new_epoch();
        let generation = self
            .write_mark(conn, behind + RECOVERY_JUMP, &epoch)
            .await?;
        self.health.recovered(&why);
        tracing::warn!(target: "vigie::alert", severity = "high", event = "shared_state_reestablished", generation, "the shared state was re-established from this replica's file");
        Ok(Finding::Recovered(why))
    }

    /// Set the generation to at least `generation` (another replica re-establishing at the
    /// same moment may have set more: the higher stays, so neither takes the other's for a
    /// loss), with a new epoch; mirror what Redis then holds.
    async fn write_mark<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        generation: i64,
        epoch: &str,
    ) -> Result<i64, StoreError> {
        let mut call = RAISE.prepare_invoke();
        call.key(self.key("generation"))
            .key(self.key("epoch"))
            .arg(generation)
            .arg(epoch);
        let set: i64 = deadline(call.invoke_async(conn)).await?;
        self.ledger.set_mark(set, epoch)?;
        Ok(set)
    }
}

static RAISE: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    redis::Script::new(
        "local g = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
         redis.call('SET', KEYS[1], g)
         redis.call('SET', KEYS[2], ARGV[2])
         return g",
    )
});

fn unix_secs() -> u64 {
    (crate::identity::locks::unix_now_ms() / 1000) as u64
}

fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Whether Redis refused the credentials (a cluster reports it as text, not as a kind).
fn auth_refused(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || [
            "NOAUTH",
            "WRONGPASS",
            "Password authentication failed",
            "invalid username-password",
        ]
        .iter()
        .any(|w| text.contains(w))
}

/// Whether a connection failed in its TLS handshake (not because Redis is down).
fn tls_refused(e: &redis::RedisError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    ["certificate", "handshake", "ssl", "tls"]
        .iter()
        .any(|w| text.contains(w))
}

/// Check the shared state at start, on a connection of its own (the serving runtime does not
/// exist yet). Redis without persistence stops the start; an unreachable Redis does not: the
/// replica starts with sessions refused until [`Watch`] has checked it.
pub fn check_at_start(state: &SharedState, redis: &super::redis::Redis) -> anyhow::Result<()> {
    let outcome: anyhow::Result<Option<Result<Finding, StoreError>>> = std::thread::scope(
        |scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(async {
                        let connecting = redis.connect();
                        match tokio::time::timeout(Duration::from_secs(2), connecting).await {
                            Ok(Ok(mut conn)) => Ok(Some(state.check(&mut conn).await)),
                            // Reached, but the credentials are refused: a configuration
                            // error, said at once rather than run refusing every session.
                            Ok(Err(e)) if auth_refused(&e) => {
                                Err(anyhow::anyhow!(
                                    "Redis refused the credentials: check [storage] redis_username and redis_password_file"
                                ))
                            }
                            // Reached, but TLS failed: Redis's certificate is not one the
                            // configured CA vouches for (or ours is refused). Also a
                            // configuration error: it would not heal by waiting.
                            Ok(Err(e)) if tls_refused(&e) => Err(anyhow::anyhow!(
                                "the TLS handshake with Redis failed ({e}): check [storage] redis_ca_file (the CA that signed Redis's certificate, whose names must include the URL's host) and redis_client_cert_file"
                            )),
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "Redis refused the connection at start");
                                Ok(None)
                            }
                            Err(_) => Ok(None),
                        }
                    })
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the shared-state check panicked"))?
        },
    );
    match outcome? {
        Some(Ok(finding)) => {
            tracing::info!(?finding, "shared state in Redis checked");
            Ok(())
        }
        Some(Err(e)) => match state.health.readiness() {
            (false, why) if why != "unchecked" => Err(anyhow::anyhow!("{why}")),
            _ => {
                tracing::warn!(error = %e, "Redis did not answer the shared-state check: sessions are refused until it does");
                Ok(())
            }
        },
        None => {
            tracing::warn!("Redis is unreachable at start: sessions are refused until it answers");
            Ok(())
        }
    }
}

/// Checks the shared state every [`CHECK_EVERY`], and at once when the store suspects Redis.
pub struct Watch {
    pub state: Arc<SharedState>,
    pub redis: Arc<crate::storage::redis::sessions::RedisStore>,
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Watch {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        loop {
            let checked = match self.redis.conn().await {
                Ok(mut conn) => self.state.check(&mut conn).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = checked {
                tracing::debug!(error = %e, "shared-state check failed");
                self.state.health.unverified();
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = self.state.health.wake.notified() => {}
            }
        }
    }
}
