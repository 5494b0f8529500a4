//! `[storage]` turned into the stores, in one place: the server calls [`open`] once and never
//! asks which backend it got. Adding a backend means a branch here (and its stores), nothing
//! in the server or the pipeline.
//!
//! Two choices, independent: where hot state lives (`backend`: this process's memory, or
//! Redis shared by replicas) and where durable records live (`records`: the SQLite file, or
//! PostgreSQL shared by replicas).
//!
//! | `backend`  | sessions                         | holds                      |
//! |------------|----------------------------------|----------------------------|
//! | `embedded` | memory, signed-in ones in SQLite | the records store          |
//! | `redis`    | Redis (sealed), local 1 s cache  | Redis                      |
//!
//! | `records`  | locks                | factors                            | alerts         |
//! |------------|----------------------|------------------------------------|----------------|
//! | `sqlite`   | SQLite (with Redis: Redis, mirrored in SQLite) | SQLite (with Redis: Redis) | SQLite |
//! | `postgres` | PostgreSQL (with Redis: Redis, reconciled with PostgreSQL) | PostgreSQL | PostgreSQL |
//!
//! Local users and the audit trail follow `records` too. The shared-state ledger (with Redis) and embedded
//! sessions are in the SQLite file.

use std::sync::Arc;

use anyhow::Context;

use super::holds::{HoldStore, SqliteHolds};
use super::postgres::{
    alerts::PgAlerts, audit::PgAudit, factors::PgFactors, holds::PgHolds, locks::PgLocks,
    users::PgUsers, Pg,
};
use super::redis::factors::RedisFactors;
use super::shared_state::{self, Ledger, SharedState, StateHealth, Watch};
use super::sqlite::audit::SqliteAudit;
use super::sqlite::factors::SqliteFactors;
use super::users::UserStore;
use crate::alerts::AlertStore;
use crate::audit::AuditRecords;
use crate::config::{Config, LoginMode, Records, StorageBackend};
use crate::factors::crypto::KeyRing;
use crate::factors::store::FactorStore;
use crate::identity::locks::{DurableLocks, LockStore};
use crate::identity::persisted::Persisted;
use crate::identity::session::Lifetimes;
use crate::identity::store::{MemoryStore, SessionStore};
use crate::storage::redis::locks::RedisLocks;
use crate::storage::redis::sessions::RedisStore;
use crate::storage::sqlite::locks::SqliteLocks;

/// Every store the gateway uses, opened.
pub struct Stores {
    /// Signs session cookies and keys patient pseudonyms.
    pub session_key: Vec<u8>,
    /// Seals what is kept at rest (factors, session vaults): see [`key_ring`].
    pub keys: Arc<KeyRing>,
    pub sessions: Arc<dyn SessionStore>,
    pub locks: Arc<dyn LockStore>,
    /// When some portal holds sessions (second factors are asked there).
    pub factors: Option<Arc<dyn FactorStore>>,
    /// When some portal's logins are the gateway's own.
    pub users: Option<Arc<UserStore>>,
    /// Where the detector keeps holds across restarts (embedded; Redis carries them otherwise).
    pub holds: Option<Arc<dyn HoldStore>>,
    /// Where alerts are kept for the admin API, when `[alerts] store` is on.
    pub alerts: Option<AlertStore>,
    /// Where the audit trail and break-glass records are kept (always: the records store).
    pub audit: Arc<dyn AuditRecords>,
    /// With replicas: what they share through Redis.
    pub shared: Option<Shared>,
}

pub struct Shared {
    pub client: super::redis::Redis,
    pub prefix: String,
    /// The shared-state checks, run as a background service (with the session store, which
    /// budgets and factors use too).
    pub watch: Watch,
}

impl Shared {
    pub fn ledger(&self) -> Arc<Ledger> {
        self.watch.state.ledger.clone()
    }
    pub fn health(&self) -> Arc<StateHealth> {
        self.watch.state.health.clone()
    }
}

pub fn open(config: &Config) -> anyhow::Result<Stores> {
    let db = &config.storage.database;
    let in_db = |what: &str| format!("{what} in {}", db.display());
    let session_key = session_key(config)?;
    let keys = key_ring(config);
    let pg = match &config.storage.records {
        Records::Sqlite => None,
        Records::Postgres(settings) => {
            let pg = postgres(settings, db)?;
            super::postgres::epoch::watch(pg.clone(), db.clone())
                .context("the records epoch thread")?;
            Some(pg)
        }
    };
    let in_records = |what: &str| match &pg {
        Some(pg) => format!("{what} in PostgreSQL at {}", pg.at()),
        None => in_db(what),
    };
    let durable_locks: Arc<dyn DurableLocks> = match &pg {
        Some(pg) => {
            let locks =
                Arc::new(PgLocks::open(pg.clone()).with_context(|| in_records("account locks"))?);
            // Gateways learn each other's locks from it (without Redis; and with Redis, those
            // stored while Redis is away).
            let replace = matches!(config.storage.backend, StorageBackend::Embedded);
            locks
                .refreshing(replace)
                .context("the lock refresh thread")?;
            locks
        }
        None => Arc::new(SqliteLocks::open(db).with_context(|| in_db("account locks"))?),
    };
    let alerts = match (&config.alerts.store, &pg) {
        (None, _) => None,
        (Some(_), Some(pg)) => {
            Some(AlertStore::new(Arc::new(PgAlerts(pg.clone()))).sealing_with(keys.clone()))
        }
        (Some(path), None) => Some(
            AlertStore::open(path)
                .with_context(|| format!("alerts in {}", path.display()))?
                .sealing_with(keys.clone()),
        ),
    };
    let audit: Arc<dyn AuditRecords> = match &pg {
        Some(pg) => Arc::new(PgAudit(pg.clone())),
        None => Arc::new(SqliteAudit::open(db).with_context(|| in_db("the audit trail"))?),
    };
    let pg_factors = |pg: &Pg| Arc::new(PgFactors(pg.clone())) as Arc<dyn FactorStore>;
    let holds_sessions = config.portals.iter().any(|p| p.holds_sessions());
    let gateway_logins = config
        .portals
        .iter()
        .any(|p| matches!(p.login, LoginMode::Gateway { .. }));
    let users = match (gateway_logins, &pg) {
        (false, _) => None,
        (true, Some(pg)) => Some(Arc::new(UserStore::new(Box::new(PgUsers(pg.clone()))))),
        (true, None) => Some(Arc::new(
            UserStore::open(db).with_context(|| in_db("local users"))?,
        )),
    };
    let s = &config.session;
    match &config.storage.backend {
        StorageBackend::Embedded => {
            let memory = MemoryStore::new(
                s.max_sessions,
                s.max_anonymous_sessions,
                durable_locks.held().clone(),
            );
            let disk =
                super::sessions::SqliteSessions::open(db).with_context(|| in_db("sessions"))?;
            let (sessions, restored) = Persisted::open(memory, disk, keys.clone())
                .with_context(|| in_db("the sessions kept"))?;
            tracing::info!(
                sessions = restored.sessions,
                dropped = restored.dropped,
                "signed-in sessions kept from the last run"
            );
            let factors: Option<Arc<dyn FactorStore>> = match (holds_sessions, &pg) {
                (false, _) => None,
                (true, Some(pg)) => Some(pg_factors(pg)),
                (true, None) => Some(Arc::new(
                    SqliteFactors::open(db).with_context(|| in_db("second factors"))?,
                )),
            };
            let holds: Arc<dyn HoldStore> = match &pg {
                Some(pg) => PgHolds::new(pg.clone()),
                None => Arc::new(SqliteHolds::open(db).with_context(|| in_db("holds"))?),
            };
            Ok(Stores {
                session_key,
                keys,
                sessions: Arc::new(sessions),
                locks: durable_locks,
                factors,
                users,
                holds: Some(holds),
                alerts,
                audit,
                shared: None,
            })
        }
        StorageBackend::Redis {
            url,
            cluster,
            prefix,
            vouched_persistent,
            tls,
        } => {
            let key = match cluster.is_empty() {
                true => "redis_url",
                false => "redis_cluster_urls",
            };
            let at = || format!("Redis at {} ([storage] {key})", redact(url));
            let client = match cluster.is_empty() {
                true => super::redis::Redis::one(url, tls),
                false => super::redis::Redis::cluster(cluster, tls, prefix),
            }
            .with_context(at)?;
            if let Some(pg) = &pg {
                if let Some(copied) =
                    super::postgres::import::from_redis(pg, &client, &redact(url), prefix)
                        .with_context(|| {
                            format!("copying the factors in {} into PostgreSQL", at())
                        })?
                {
                    tracing::info!(to = %pg.at(), ?copied, "second factors copied from Redis into PostgreSQL");
                }
            }
            let life = Lifetimes {
                idle: s.idle_timeout,
                absolute: s.absolute_timeout,
                anonymous: s.anonymous_timeout,
            };
            let health = Arc::new(StateHealth::default());
            let store = Arc::new(
                RedisStore::new(
                    client.clone(),
                    prefix,
                    life,
                    health.clone(),
                    durable_locks.held().clone(),
                )
                .context("Redis session store")?
                .with_outage_grace(config.storage.outage_grace)
                .with_anonymous_cap(s.max_anonymous_sessions)
                // Vaults and break-glass reasons sealed with the ring every replica shares.
                .sealing_with(keys.clone()),
            );
            let state = Arc::new(SharedState {
                health,
                ledger: Arc::new(Ledger::open(db).with_context(|| in_db("shared-state ledger"))?),
                locks: durable_locks.clone(),
                prefix: prefix.clone(),
                vouched: *vouched_persistent,
                rounds: Default::default(),
            });
            shared_state::check_at_start(&state, &client).with_context(at)?;
            let factors: Option<Arc<dyn FactorStore>> = match (holds_sessions, &pg) {
                (false, _) => None,
                (true, Some(pg)) => Some(pg_factors(pg)),
                (true, None) => Some(Arc::new(RedisFactors::new(store.clone()))),
            };
            Ok(Stores {
                session_key,
                keys,
                sessions: store.clone(),
                locks: Arc::new(RedisLocks::new(store.clone(), durable_locks)),
                factors,
                users,
                holds: None,
                alerts,
                audit,
                shared: Some(Shared {
                    client,
                    prefix: prefix.clone(),
                    watch: Watch {
                        state,
                        redis: store,
                    },
                }),
            })
        }
    }
}

/// The local users, for `vigie user …`: where the gateway keeps them (with PostgreSQL, after
/// the file's records were copied there, as a start would).
pub fn users(config: &Config) -> anyhow::Result<UserStore> {
    let db = &config.storage.database;
    match &config.storage.records {
        Records::Sqlite => {
            UserStore::open(db).with_context(|| format!("local users in {}", db.display()))
        }
        Records::Postgres(settings) => {
            let pg = postgres(settings, db)?;
            Ok(UserStore::new(Box::new(PgUsers(pg))))
        }
    }
}

/// The per-person API tokens, where the records live, under the key ring.
pub fn tokens(config: &Config) -> anyhow::Result<super::tokens::ApiTokens> {
    let keys = config.second_factor.keys.clone().context(
        "no [second_factor] key ring: API tokens are kept as digests under it (set key_file or key_env)",
    )?;
    let db = &config.storage.database;
    let rows: Arc<dyn super::tokens::TokenRows> = match &config.storage.records {
        Records::Sqlite => Arc::new(
            super::tokens::SqliteTokens::open(db)
                .with_context(|| format!("API tokens in {}", db.display()))?,
        ),
        Records::Postgres(settings) => {
            Arc::new(super::postgres::tokens::PgTokens(postgres(settings, db)?))
        }
    };
    Ok(super::tokens::ApiTokens::new(rows, keys))
}

/// The audit trail and the key ring its chains are MACed under, for `vigie audit …`.
pub fn audit(config: &Config) -> anyhow::Result<(Arc<dyn AuditRecords>, Arc<KeyRing>)> {
    let keys = config.second_factor.keys.clone().context(
        "no [second_factor] key ring: the audit chains are MACed under it (set key_file or key_env)",
    )?;
    let db = &config.storage.database;
    let store: Arc<dyn AuditRecords> = match &config.storage.records {
        Records::Sqlite => {
            if !db.exists() {
                anyhow::bail!(
                    "no database at {}: the gateway has not run yet",
                    db.display()
                );
            }
            Arc::new(
                SqliteAudit::open(db)
                    .with_context(|| format!("the audit trail in {}", db.display()))?,
            )
        }
        Records::Postgres(settings) => Arc::new(PgAudit(postgres(settings, db)?)),
    };
    Ok((store, keys))
}

/// PostgreSQL connected, its schema up to date, and the file's records copied in (once).
fn postgres(settings: &super::postgres::PgSettings, db: &std::path::Path) -> anyhow::Result<Pg> {
    let (pg, applied) = Pg::connect(settings)
        .with_context(|| format!("PostgreSQL at {} ([storage] postgres_url)", settings.shown))?;
    if !applied.is_empty() {
        tracing::info!(at = %pg.at(), migrations = ?applied, "PostgreSQL schema brought up to date");
    }
    // An existing deployment's records come along, once.
    if let Some(copied) = super::postgres::import::from_sqlite(&pg, db)
        .with_context(|| format!("copying {} into PostgreSQL", db.display()))?
    {
        tracing::info!(from = %db.display(), to = %pg.at(), ?copied, "records copied into PostgreSQL");
    }
    Ok(pg)
}

/// The `[second_factor]` key ring: it seals factors, session vaults and break-glass reasons at
/// rest, and replicas share it (validation requires one where sessions are held). Without one
/// (only the demo runs so) one random ring for all of them: they die with the process.
fn key_ring(config: &Config) -> Arc<KeyRing> {
    config.second_factor.keys.clone().unwrap_or_else(|| {
        tracing::warn!(
            "no second_factor key ring (demo): factors and kept sessions are lost at exit"
        );
        Arc::new(KeyRing::ephemeral())
    })
}

/// The key that signs session cookies and keys patient pseudonyms: the configured one, else
/// (one gateway) one made into the state directory on first start, so sessions and
/// pseudonyms outlive a restart. Replicas must configure theirs (validation says so).
fn session_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(key) = &config.storage.session_key {
        return Ok(key.clone());
    }
    match config.storage.backend {
        StorageBackend::Embedded => {
            let path = super::session_key::path_for(&config.storage.database);
            super::session_key::load_or_create(&path).with_context(|| {
                format!(
                    "the session key {} (or set [storage] session_key_file)",
                    path.display()
                )
            })
        }
        StorageBackend::Redis { .. } => Ok(rand::random::<[u8; 32]>().to_vec()),
    }
}

/// A Redis URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}
