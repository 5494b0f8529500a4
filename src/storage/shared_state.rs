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

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redis::aio::ConnectionLike;
use rusqlite::{params, Connection, OptionalExtension};

use crate::identity::locks::{LockedUsers, SqliteLocks};
use crate::identity::redis_store::deadline;
use crate::identity::store::StoreError;

/// How often each replica checks the generation (and resynchronises its copy of the locks).
pub const CHECK_EVERY: Duration = Duration::from_secs(2);
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
}

impl Default for StateHealth {
    fn default() -> Self {
        Self {
            state: RwLock::new(State::Unchecked),
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl StateHealth {
    /// A health that trusts at once (unit tests of the store alone).
    pub fn trusted() -> Self {
        let h = Self::default();
        h.set(State::Trusted);
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

    /// Redis misbehaved (an error, a missing key that must exist): check again now.
    pub fn suspect(&self) {
        self.wake.notify_one();
    }

    /// Lost data was seen on the request path: fail closed until the check has recovered it.
    pub fn lost(&self, why: &str) {
        self.set(State::Refused(why.to_string()));
        self.wake.notify_one();
    }

    /// For `/readyz`: whether sessions are served, and the state in a word or a reason.
    pub fn readiness(&self) -> (bool, String) {
        match &*self.state.read().expect("state health") {
            State::Trusted => (true, "trusted".into()),
            State::Unchecked => (false, "unchecked".into()),
            State::Refused(why) => (false, why.clone()),
        }
    }
}

/// The durable mirror: the last generation and epoch this replica saw.
pub struct Ledger {
    conn: Mutex<Connection>,
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Ledger {
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS shared_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS enrolled_users (username TEXT PRIMARY KEY);",
        )
        .map_err(db_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// (generation, epoch); (0, "") before the first check.
    pub fn mark(&self) -> Result<(i64, String), StoreError> {
        let conn = self.conn.lock().expect("ledger");
        let read = |name: &str| {
            conn.query_row(
                "SELECT value FROM shared_state WHERE name = ?1",
                params![name],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(db_err)
        };
        let generation = read("generation")?
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        Ok((generation, read("epoch")?.unwrap_or_default()))
    }

    pub fn set_mark(&self, generation: i64, epoch: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().expect("ledger");
        for (name, value) in [
            ("generation", generation.to_string()),
            ("epoch", epoch.into()),
        ] {
            conn.execute(
                "INSERT INTO shared_state (name, value) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map_err(db_err)?;
        }
        Ok(())
    }

    /// Remember that a user has enrolled a factor: should the factors vanish with Redis, a
    /// new one then needs an invitation, as a reset does.
    pub fn mark_enrolled(&self, user: &str) -> Result<(), StoreError> {
        self.conn
            .lock()
            .expect("ledger")
            .execute(
                "INSERT OR IGNORE INTO enrolled_users (username) VALUES (?1)",
                params![user],
            )
            .map(drop)
            .map_err(db_err)
    }

    pub fn was_enrolled(&self, user: &str) -> Result<bool, StoreError> {
        self.conn
            .lock()
            .expect("ledger")
            .query_row(
                "SELECT 1 FROM enrolled_users WHERE username = ?1",
                params![user],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(db_err)
    }
}

/// The generation check, run at start, every [`CHECK_EVERY`], and at once when a replica
/// suspects Redis (a reconnect, a missing generation).
pub struct SharedState {
    pub health: Arc<StateHealth>,
    pub ledger: Arc<Ledger>,
    /// The durable copy of the locks, and this replica's copy in memory.
    pub locks: Arc<SqliteLocks>,
    pub held: Arc<LockedUsers>,
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
            return self.recover(conn, why, prior.max(mark)).await;
        }
        if prior < 0 {
            let epoch = new_epoch();
            self.write_mark(conn, 1, &epoch).await?;
            self.sync_locks(conn).await?;
            self.health.set(State::Trusted);
            return Ok(Finding::Initialised);
        }
        if !known_epoch.is_empty() && epoch != known_epoch {
            // Another replica re-established the state: add the locks only this file knows.
            self.push_locks(conn).await?;
        }
        self.ledger.set_mark(prior + 1, &epoch)?;
        self.sync_locks(conn).await?;
        self.health.set(State::Trusted);
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
                let (next, keys): (u64, Vec<String>) = deadline(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(self.key(pattern))
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(conn),
                )
                .await?;
                if !keys.is_empty() {
                    deadline(redis::cmd("DEL").arg(&keys).query_async::<()>(conn)).await?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        self.push_locks(conn).await?;
        let epoch = new_epoch();
        self.write_mark(conn, behind + 1, &epoch).await?;
        self.sync_locks(conn).await?;
        self.health.set(State::Trusted);
        tracing::warn!(target: "vigie::alert", severity = "high", event = "shared_state_reestablished", generation = behind + 1, "the shared state was re-established from this replica's file");
        Ok(Finding::Recovered(why))
    }

    async fn write_mark<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        generation: i64,
        epoch: &str,
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set(self.key("generation"), generation)
            .set(self.key("epoch"), epoch);
        deadline(pipe.query_async::<()>(conn)).await?;
        self.ledger.set_mark(generation, epoch)
    }

    /// Write this file's locks into Redis (adding, never lifting one).
    async fn push_locks<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<(), StoreError> {
        let locks = self.locks.all()?;
        if locks.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.key("locks"));
        for (user, reason) in &locks {
            cmd.arg(user).arg(reason);
        }
        deadline(cmd.query_async::<()>(conn)).await
    }

    /// Redis is trusted: its locks become this replica's (file and memory).
    async fn sync_locks<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<(), StoreError> {
        let mut locks: Vec<(String, String)> = deadline(
            redis::cmd("HGETALL")
                .arg(self.key("locks"))
                .query_async(conn),
        )
        .await?;
        locks.sort();
        let mut known = self.locks.all()?;
        known.sort();
        if locks != known {
            self.locks.replace_all(&locks)?;
        }
        self.held
            .replace(locks.into_iter().map(|(u, _)| u).collect());
        Ok(())
    }
}

fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Check the shared state at start, on a connection of its own (the serving runtime does not
/// exist yet). Redis without persistence stops the start; an unreachable Redis does not: the
/// replica starts with sessions refused until [`Watch`] has checked it.
pub fn check_at_start(state: &SharedState, url: &str) -> anyhow::Result<()> {
    let outcome: anyhow::Result<Option<Result<Finding, StoreError>>> =
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    rt.block_on(async {
                        let client = redis::Client::open(url).map_err(anyhow::Error::from)?;
                        let connecting = client.get_multiplexed_async_connection();
                        match tokio::time::timeout(Duration::from_secs(2), connecting).await {
                            Ok(Ok(mut conn)) => Ok(Some(state.check(&mut conn).await)),
                            _ => Ok(None),
                        }
                    })
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the shared-state check panicked"))?
        });
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
    pub redis: Arc<crate::identity::redis_store::RedisStore>,
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Watch {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        loop {
            if let Ok(mut conn) = self.redis.conn().await {
                if let Err(e) = self.state.check(&mut conn).await {
                    tracing::debug!(error = %e, "shared-state check failed");
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = self.state.health.wake.notified() => {}
            }
        }
    }
}
