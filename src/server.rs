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
use crate::config::Config;
use crate::detect::Detector;
use crate::factors::Factors;
use crate::identity::assertion::AssertionKeys;
use crate::identity::session::{Clock, SystemClock};
use crate::identity::Sessions;
use crate::lifecycle::Reloader;
use crate::listener::certificates::{Certificates, Serve};
use crate::listener::peers::{self, Peers};
use crate::listener::ConnectionGuard;
use crate::pipeline::{Gateway, Live, LiveHandle};
use crate::sample_portal::SamplePortal;
use pingora::listeners::tls::TlsSettings;

/// A Pingora server with the gateway and admin services added, ready for
/// [`crate::lifecycle::run`], and what reloads it.
/// With `upgrade`, the listening sockets are taken from the running gateway this one
/// replaces (`vigie run --upgrade`): they arrive when that one receives SIGQUIT.
pub fn build(config: &Config, upgrade: bool) -> anyhow::Result<(Server, Arc<Reloader>)> {
    assemble(config, Arc::new(SystemClock), upgrade).map(|b| (b.server, b.reloader))
}

/// What [`build_with`] assembles.
pub struct Built {
    pub server: Server,
    pub detector: Option<Arc<Detector>>,
    pub reloader: Arc<Reloader>,
}

/// The same on a given clock (the simulator's runs hours in seconds).
pub fn build_with(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Built> {
    assemble(config, clock, false)
}

fn assemble(config: &Config, clock: Arc<dyn Clock>, upgrade: bool) -> anyhow::Result<Built> {
    let conf = ServerConf {
        threads: config.server.threads,
        work_stealing: config.server.work_stealing,
        // Vigie keeps accepting through `grace_period` itself (lifecycle::signals); Pingora's
        // own grace period is the time requests in flight get once the listeners close.
        grace_period_seconds: Some(config.server.graceful_shutdown_timeout.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        upgrade_sock: config.server.upgrade_socket.to_string_lossy().into_owned(),
        ..ServerConf::default()
    };
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let stores = crate::storage::open::open(config)?;
    crate::audit::start(
        stores.audit.clone(),
        stores.keys.clone(),
        config.storage.audit_retention,
        audit_signer(config)?,
        config.storage.audit_checkpoint,
    )
    .context("the audit writer thread")?;
    let audit = crate::audit::AuditLog::new(stores.audit.clone(), stores.keys.clone());
    let alerts = Arc::new(
        crate::alerts::Alerts::start_with(config.alerts.clone(), stores.alerts.clone())
            .context("alert sinks ([alerts])")?,
    );
    // Every security event of the trail reaches the SIEM's sinks too.
    let forward = alerts.clone();
    crate::audit::forward_to(Arc::new(move |entry| forward.event(entry)));
    let shared = stores.shared.as_ref().map(|s| s.health());
    let redis = stores.shared.as_ref().map(|s| s.watch.redis.clone());
    let sessions = Sessions::new(
        stores.sessions.clone(),
        stores.locks.clone(),
        &stores.session_key,
        config.session.clone(),
        clock.clone(),
    );
    // Every gateway session that ends takes the portal's session with it.
    let portal_logout =
        crate::pipeline::portal_logout::PortalLogout::new(&config.portals, alerts.clone());
    let sessions = Arc::new(sessions.ending_portal_sessions_with(Arc::new(portal_logout)));
    let factors = factors(config, &stores, clock.clone())?;
    let console_factors = match &config.console {
        Some(c) => Some(console_factors(config, c, &stores, clock.clone())?),
        None => None,
    };
    let console_users = match (&config.console, &stores.users) {
        (None, _) => None,
        (Some(_), Some(u)) => Some(u.clone()),
        (Some(_), None) => Some(Arc::new(crate::storage::open::users(config)?)),
    };
    let console_alerts = stores.alerts.clone();
    let budgets = Arc::new(Budgets::new(
        config.budgets.clone(),
        redis,
        config.storage.replicas,
        clock.clone(),
    ));
    let users = stores.users.clone();
    let detector = detector(config, &stores, alerts.clone(), clock.as_ref())?;
    let watch = stores.shared.map(|s| s.watch);
    let assertions = match &config.assertion.keys {
        Some(keys) => keys.clone(),
        None => Arc::new(AssertionKeys::ephemeral()),
    };

    let live: LiveHandle = Arc::new(arc_swap::ArcSwap::new(Live::new(config.clone())));
    let mut certificates = Vec::new();
    let proxy = pingora::proxy::http_proxy(
        &server.configuration,
        Gateway::new(
            live.clone(),
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
            Some(tls) => {
                let certs = Certificates::load(addr.clone(), &tls.cert, &tls.key)
                    .map_err(|e| anyhow::anyhow!("TLS listener {addr}: {e}"))?;
                let settings = TlsSettings::with_callbacks(Box::new(Serve(certs.clone())))
                    .with_context(|| format!("TLS listener {addr}"))?;
                gateway.add_tls_with_settings(&addr, None, settings);
                certificates.push(certs);
            }
            None => gateway.add_tcp(&addr),
        }
    }
    gateway.threads = Some(config.server.threads);
    let reloader = Arc::new(
        Reloader::new(
            config.clone(),
            live,
            budgets.clone(),
            detector.clone(),
            certificates,
        )
        .ending_sessions_in(sessions.clone()),
    );
    server.add_service(gateway);
    server.add_service(pingora::services::background::background_service(
        "session sweeper",
        crate::identity::Sweeper::new(sessions.clone()),
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

    if let (Some(c), Some(factors)) = (&config.console, &console_factors) {
        let console = crate::console::Console::new(
            c.clone(),
            console_users.clone().context("the console's users")?,
            factors.clone(),
            console_alerts.clone(),
            detector.clone(),
            sessions.clone(),
            audit.clone(),
            clock.clone(),
        );
        let mut svc = Service::new(
            "vigie-console".to_string(),
            HttpServer::new_app(crate::console::ConsoleApp(Arc::new(console))),
        );
        let address = c.address.to_string();
        match &c.tls {
            Some((cert, key)) => svc
                .add_tls(&address, &cert.to_string_lossy(), &key.to_string_lossy())
                .context("the console's TLS certificate and key")?,
            None => svc.add_tcp(&address),
        }
        svc.threads = Some(1);
        server.add_service(svc);
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
                .sharing(shared)
                .inviting_analysts(console_factors)
                .with_tokens(crate::storage::open::tokens(config).ok().map(Arc::new))
                .auditing(audit)
                .operating(reloader.clone(), listening(config)),
            ),
        );
        svc.add_tcp(&admin.to_string());
        svc.threads = Some(1);
        server.add_service(svc);
    }
    Ok(Built {
        server,
        detector,
        reloader,
    })
}

/// The addresses `/readyz` expects this process to listen on.
fn listening(config: &Config) -> Vec<std::net::SocketAddr> {
    config.listeners.iter().map(|l| l.address).collect()
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
    stores: &crate::storage::open::Stores,
    alerts: Arc<crate::alerts::Alerts>,
    clock: &dyn Clock,
) -> anyhow::Result<Option<Arc<Detector>>> {
    if !config.detection.enabled {
        return Ok(None);
    }
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&stores.session_key).expect("any key length");
    mac.update(b"vigie patient pseudonyms v1");
    let key = mac.finalize().into_bytes();
    let detector = Detector::new(
        config.detection.clone(),
        config.policy.zone.clone(),
        &key,
        alerts,
    );
    let detector = match &stores.holds {
        // One gateway: holds are kept in the database, so a restart releases nobody.
        Some(holds) => detector
            .holding_in(holds.clone(), clock.now_us() as i64)
            .context("the holds kept in the database")?,
        None => detector,
    };
    Ok(Some(match &stores.shared {
        // Replicas count one identity as one, and agree on holds and releases.
        Some(shared) => detector.shared_through(shared.client.clone(), &shared.prefix),
        None => Arc::new(detector),
    }))
}

/// Second factors, when some portal holds sessions, sealed with the stores' key ring.
/// The key that signs the audit trail's checkpoints (see [`crate::audit::signing`]).
pub fn audit_signer(config: &Config) -> anyhow::Result<Arc<crate::audit::signing::Signer>> {
    let file = crate::audit::signing::key_file_for(&config.storage.database);
    crate::audit::signing::Signer::load(config.assertion.key_dir.as_deref(), &file)
        .map(Arc::new)
        .map_err(|e| {
            anyhow::anyhow!("the audit signing key: {e} (see [storage] audit_checkpoint_seconds)")
        })
}

/// The console's passkeys: the factor store, under the console's own relying party.
fn console_factors(
    config: &Config,
    console: &crate::config::ConsoleConfig,
    stores: &crate::storage::open::Stores,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<Factors>> {
    let store = stores.factors.clone().context(
        "the console keeps analysts' passkeys with the second factors: give a portal second factors (or hold_sessions)",
    )?;
    let mut sf = config.second_factor.clone();
    sf.rp_id.clone_from(&console.rp_id);
    sf.origins.clone_from(&console.origins);
    sf.rp_name = "Vigie SOC".into();
    let factors = Factors::new(store, stores.keys.clone(), sf, clock)
        .map_err(|e| anyhow::anyhow!("console WebAuthn relying party: {e}"))?;
    Ok(Arc::new(factors))
}

fn factors(
    config: &Config,
    stores: &crate::storage::open::Stores,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<Arc<Factors>>> {
    let Some(store) = stores.factors.clone() else {
        return Ok(None);
    };
    let sf = &config.second_factor;
    let mut factors = Factors::new(store, stores.keys.clone(), sf.clone(), clock)
        .map_err(|e| anyhow::anyhow!("second_factor WebAuthn relying party: {e}"))?;
    if let Some(shared) = &stores.shared {
        factors = factors.noting_enrollments_in(shared.ledger());
    }
    Ok(Some(Arc::new(factors)))
}

/// An enrollment invitation made before the gateway starts, in the stores it will open (the
/// demo prints one for its administrator: privileged accounts always need one). The
/// configuration must carry its key ring, so the gateway reads what this one sealed.
pub fn invite_before_start(config: &Config, user: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        config.second_factor.keys.is_some(),
        "an invitation before the start needs the second_factor key ring in the configuration"
    );
    let stores = crate::storage::open::open(config)?;
    let factors = factors(config, &stores, Arc::new(SystemClock))?
        .context("no portal holds sessions: there are no second factors")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (code, _) = runtime.block_on(factors.invite(user))?;
    Ok(code)
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
