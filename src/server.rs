//! Assembling Pingora services from a validated [`Config`]: the gateway on its listeners,
//! the admin endpoints, and (for the demo) the sample portal.

use anyhow::Context;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use std::sync::Arc;

use crate::budget::Budgets;
use crate::config::{Config, LoginMode, StorageBackend};
use crate::detect::Detector;
use crate::factors::crypto::KeyRing;
use crate::factors::redis_store::RedisFactors;
use crate::factors::store::{FactorStore, SqliteFactors};
use crate::factors::Factors;
use crate::identity::assertion::AssertionKeys;
use crate::identity::locks::{LockStore, SqliteLocks};
use crate::identity::persisted::Persisted;
use crate::identity::redis_store::{RedisLocks, RedisStore};
use crate::identity::session::{Clock, Lifetimes, SystemClock};
use crate::identity::store::{MemoryStore, SessionStore};
use crate::identity::Sessions;
use crate::listener::peers::{self, Peers};
use crate::listener::ConnectionGuard;
use crate::pipeline::Gateway;
use crate::sample_portal::SamplePortal;
use crate::storage::shared_state::{self, Ledger, SharedState, StateHealth, Watch};
use crate::storage::users::UserStore;

/// A Pingora server with the gateway and admin services added, ready for `run_forever`.
pub fn build(config: &Config) -> anyhow::Result<Server> {
    build_with(config, Arc::new(SystemClock)).map(|(server, _)| server)
}

/// The same on a given clock (the simulator's runs hours in seconds), with the detector.
pub fn build_with(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Server, Option<Arc<Detector>>)> {
    let conf = ServerConf {
        threads: config.server.threads,
        work_stealing: config.server.work_stealing,
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(config.server.graceful_shutdown_timeout.as_secs()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let alerts = Arc::new(
        crate::alerts::Alerts::start(config.alerts.clone()).context("alert sinks ([alerts])")?,
    );
    let session_key = session_key(config)?;
    let (sessions, watch) = sessions(config, &session_key, clock.clone())?;
    let redis = watch.as_ref().map(|w| w.redis.clone());
    let shared = watch.as_ref().map(|w| w.state.health.clone());
    // Every gateway session that ends takes the portal's session with it.
    let portal_logout =
        crate::pipeline::portal_logout::PortalLogout::new(&config.portals, alerts.clone());
    let sessions = Arc::new(sessions.ending_portal_sessions_with(Arc::new(portal_logout)));
    let ledger = watch.as_ref().map(|w| w.state.ledger.clone());
    let factors = factors(config, redis.clone(), ledger, clock.clone())?;
    let budgets = Arc::new(Budgets::new(
        config.budgets.clone(),
        redis,
        config.storage.replicas,
        clock.clone(),
    ));
    let gateway_logins = config
        .portals
        .iter()
        .any(|p| matches!(p.login, LoginMode::Gateway { .. }));
    let users = if gateway_logins {
        let db = &config.storage.database;
        Some(Arc::new(UserStore::open(db).with_context(|| {
            format!("user database {}", db.display())
        })?))
    } else {
        None
    };
    let detector = detector(config, &session_key, alerts.clone(), clock.as_ref())?;
    let assertions = match &config.assertion.keys {
        Some(keys) => keys.clone(),
        None => Arc::new(AssertionKeys::ephemeral()),
    };

    let proxy = pingora::proxy::http_proxy(
        &server.configuration,
        Gateway::new(
            config.clone(),
            crate::pipeline::Parts {
                sessions: sessions.clone(),
                users,
                assertions,
                factors: factors.clone(),
                budgets: budgets.clone(),
                detector: detector.clone(),
                alerts: alerts.clone(),
            },
        ),
    );
    let mut gateway = Service::new(
        "vigie-gateway".to_string(),
        ConnectionGuard::new(proxy, peers(config), config.limits.head_timeout),
    );
    for l in &config.listeners {
        let addr = l.address.to_string();
        match &l.tls {
            Some(tls) => gateway
                .add_tls(
                    &addr,
                    &tls.cert.to_string_lossy(),
                    &tls.key.to_string_lossy(),
                )
                .with_context(|| format!("TLS listener {addr}: cannot load certificate or key"))?,
            None => gateway.add_tcp(&addr),
        }
    }
    gateway.threads = Some(config.server.threads);
    server.add_service(gateway);
    server.add_service(pingora::services::background::background_service(
        "session sweeper",
        crate::identity::Sweeper(sessions.clone()),
    ));
    if let Some(watch) = watch {
        server.add_service(pingora::services::background::background_service(
            "shared-state watch",
            watch,
        ));
    }
    if config.log.access_buffer_bytes > 0 {
        server.add_service(pingora::services::background::background_service(
            "access log",
            crate::pipeline::AccessLogDrain,
        ));
    }

    if let Some(admin) = config.admin {
        let portals = config
            .portals
            .iter()
            .map(|p| (p.name.clone(), p.upstream))
            .collect();
        let mut svc = Service::new(
            "vigie-admin".to_string(),
            HttpServer::new_app(
                AdminApp::new(
                    portals,
                    sessions,
                    factors,
                    Some(budgets),
                    config.admin_token.clone(),
                    detector.clone(),
                )
                // One portal's collation keys the names (the first profiled one).
                .keyed_by(config.portals.iter().find_map(|p| p.profile.clone()))
                .sharing(shared),
            ),
        );
        svc.add_tcp(&admin.to_string());
        svc.threads = Some(1);
        server.add_service(svc);
    }
    Ok((server, detector))
}

/// The per-peer connection count: `max_connections_per_peer`, and for any one peer (trusted
/// proxies too) at most 90% of the open-file limit.
fn peers(config: &Config) -> Peers {
    let per_peer = config.limits.max_connections_per_peer;
    let fd_share = peers::fd_share();
    if let Some(share) = fd_share.filter(|s| *s < per_peer) {
        tracing::warn!(
            "limits.max_connections_per_peer = {per_peer} is more than 90% of the open-file \
             limit allows one peer ({share}): raise the limit (LimitNOFILE=) or lower the cap"
        );
    }
    Peers::new(
        per_peer,
        fd_share.unwrap_or(usize::MAX),
        config.trusted_proxies.clone(),
    )
}

/// The detector, unless disabled. Pseudonyms are keyed from the session key when one is
/// configured (replicas then agree on them), else from a random per-process key.
fn detector(
    config: &Config,
    session_key: &[u8],
    alerts: Arc<crate::alerts::Alerts>,
    clock: &dyn Clock,
) -> anyhow::Result<Option<Arc<Detector>>> {
    if !config.detection.enabled {
        return Ok(None);
    }
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(session_key).expect("any key length");
    mac.update(b"vigie patient pseudonyms v1");
    let key = mac.finalize().into_bytes();
    let detector = Detector::new(
        config.detection.clone(),
        config.policy.zone.clone(),
        &key,
        alerts,
    );
    match &config.storage.backend {
        // One gateway: holds are kept in the database, so a restart releases nobody.
        StorageBackend::Embedded => {
            let db = &config.storage.database;
            let store = crate::storage::holds::SqliteHolds::open(db)
                .with_context(|| format!("holds in {}", db.display()))?;
            let detector = detector
                .holding_in(Arc::new(store), clock.now_us() as i64)
                .with_context(|| format!("the holds kept in {}", db.display()))?;
            Ok(Some(Arc::new(detector)))
        }
        // Replicas count one identity as one, and agree on holds and releases.
        StorageBackend::Redis {
            url, prefix, tls, ..
        } => {
            let client = crate::storage::redis::client(url, tls)
                .with_context(|| format!("the detector's Redis at {}", redact(url)))?;
            Ok(Some(detector.shared_through(client, prefix)))
        }
    }
}

/// Second factors in the configured backend, when some portal holds sessions. Without a key
/// ring (only the demo may run so) one random key seals them: they die with the process.
fn factors(
    config: &Config,
    redis: Option<Arc<RedisStore>>,
    ledger: Option<Arc<Ledger>>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<Arc<Factors>>> {
    if !config.portals.iter().any(|p| p.holds_sessions()) {
        return Ok(None);
    }
    let sf = &config.second_factor;
    let keys = match &sf.keys {
        Some(ring) => ring.clone(),
        None => {
            tracing::warn!("no second_factor key ring (demo): enrolled factors are lost at exit");
            Arc::new(KeyRing::ephemeral())
        }
    };
    let store: Arc<dyn FactorStore> = match redis {
        Some(redis) => Arc::new(RedisFactors::new(redis)),
        None => {
            let db = &config.storage.database;
            Arc::new(
                SqliteFactors::open(db)
                    .with_context(|| format!("second factors in {}", db.display()))?,
            )
        }
    };
    let mut factors = Factors::new(store, keys, sf.clone(), clock)
        .map_err(|e| anyhow::anyhow!("second_factor WebAuthn relying party: {e}"))?;
    if let Some(ledger) = ledger {
        factors = factors.noting_enrollments_in(ledger);
    }
    Ok(Some(Arc::new(factors)))
}

/// Sessions in the configured store (and, with replicas, the Redis connection and the
/// shared-state watch). Without a configured key (embedded only) the token key is random per
/// process: in-memory sessions do not outlive the process anyway.
fn sessions(
    config: &Config,
    key: &[u8],
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Sessions, Option<Watch>)> {
    let s = &config.session;
    let db = &config.storage.database;
    let durable_locks = Arc::new(
        SqliteLocks::open(db).with_context(|| format!("account locks in {}", db.display()))?,
    );
    let mut watch = None;
    let (store, locks): (Arc<dyn SessionStore>, Arc<dyn LockStore>) = match &config.storage.backend
    {
        // Signed-in sessions are kept (sealed) in the database: a restart signs nobody out.
        StorageBackend::Embedded => {
            let memory = MemoryStore::new(
                s.max_sessions,
                s.max_anonymous_sessions,
                durable_locks.held().clone(),
            );
            let disk = crate::storage::sessions::SqliteSessions::open(db)
                .with_context(|| format!("sessions in {}", db.display()))?;
            let (store, restored) = Persisted::open(memory, disk, sealer(config))
                .with_context(|| format!("the sessions kept in {}", db.display()))?;
            tracing::info!(
                sessions = restored.sessions,
                dropped = restored.dropped,
                "signed-in sessions kept from the last run"
            );
            (Arc::new(store), durable_locks)
        }
        StorageBackend::Redis {
            url,
            prefix,
            vouched_persistent,
            tls,
        } => {
            let client = crate::storage::redis::client(url, tls)
                .with_context(|| format!("Redis at {} ([storage] redis_url)", redact(url)))?;
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
                // The vault and break-glass reasons are sealed with the factors' key ring,
                // which every replica shares (validation requires one where sessions are held).
                .sealing_with(sealer(config)),
            );
            let state = Arc::new(SharedState {
                health,
                ledger: Arc::new(
                    Ledger::open(db)
                        .with_context(|| format!("shared-state ledger in {}", db.display()))?,
                ),
                locks: durable_locks.clone(),
                prefix: prefix.clone(),
                vouched: *vouched_persistent,
                rounds: Default::default(),
            });
            shared_state::check_at_start(&state, &client)
                .with_context(|| format!("Redis at {} ([storage] redis_url)", redact(url)))?;
            watch = Some(Watch {
                state,
                redis: store.clone(),
            });
            (
                store.clone(),
                Arc::new(RedisLocks::new(store, durable_locks)),
            )
        }
    };
    let sessions = Sessions::new(store, locks, key, s.clone(), clock);
    Ok((sessions, watch))
}

/// What seals session vaults and break-glass reasons at rest: the factors' key ring, which
/// replicas share (validation requires one where sessions are held). Without one (the demo)
/// a random key: kept sessions then do not outlive the process.
fn sealer(config: &Config) -> Arc<KeyRing> {
    config
        .second_factor
        .keys
        .clone()
        .unwrap_or_else(|| Arc::new(KeyRing::ephemeral()))
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
            let path = crate::storage::session_key::path_for(&config.storage.database);
            crate::storage::session_key::load_or_create(&path).with_context(|| {
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
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Add the sample portal as a service of `server`, listening on `address`.
pub fn add_sample_portal(server: &mut Server, address: &str, portal: SamplePortal, threads: usize) {
    let mut svc = Service::new("sample-portal".to_string(), HttpServer::new_app(portal));
    svc.add_tcp(address);
    svc.threads = Some(threads);
    server.add_service(svc);
}

/// A server running only the sample portal.
pub fn sample_portal_only(address: &str, portal: SamplePortal, threads: usize) -> Server {
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    add_sample_portal(&mut server, address, portal, threads);
    server
}
