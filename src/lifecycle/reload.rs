//! Hot reload: the file is read and validated whole, compared with the running one, and only
//! then swapped in. New requests take the new configuration; requests in flight finish on the
//! one they started with; sessions, budgets' counts and the detector's tracks are kept.
//!
//! What a running process cannot change (listeners, storage, the session cookie, second
//! factors, alert sinks, a portal's address…) is refused with the list of keys, and the old
//! configuration keeps serving. Certificates are read again from the same files, so a renewed
//! one reaches new handshakes; a listener's file names are read at start only.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::budget::Budgets;
use crate::config::{Config, ConfigErrors};
use crate::detect::Detector;
use crate::listener::certificates::Certificates;
use crate::pipeline::{Live, LiveHandle};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}\nthe running configuration is unchanged")]
    Invalid(ConfigErrors),
    #[error(
        "these settings only change with a restart: {}\nthe running configuration is unchanged; \
         restart (or `vigie run --upgrade`) to apply them, or put them back to reload the rest",
        .0.join(", ")
    )]
    NeedsRestart(Vec<&'static str>),
    #[error("{0}\nthe running configuration and certificates are unchanged")]
    Certificate(String),
    #[error("second_factor key ring: {0}\nthe running configuration is unchanged")]
    KeyRing(String),
    #[error("another reload is still running (a file that does not answer?); nothing changed")]
    Busy,
}

impl ReloadError {
    /// The metric's label.
    fn label(&self) -> &'static str {
        match self {
            ReloadError::Invalid(_) => "invalid",
            ReloadError::NeedsRestart(_) => "needs_restart",
            ReloadError::Certificate(_) | ReloadError::KeyRing(_) => "invalid",
            ReloadError::Busy => "busy",
        }
    }
}

/// Everything a reload updates, and the configuration running now.
pub struct Reloader {
    path: PathBuf,
    running: Mutex<Config>,
    live: LiveHandle,
    budgets: Arc<Budgets>,
    detector: Option<Arc<Detector>>,
    /// The TLS listeners' certificates, read again at each reload.
    certificates: Vec<Arc<Certificates>>,
    /// Sessions, ended for users whose `[groups]` changed (see [`regrouped`]).
    sessions: Option<Arc<crate::identity::Sessions>>,
}

impl Reloader {
    pub fn new(
        running: Config,
        live: LiveHandle,
        budgets: Arc<Budgets>,
        detector: Option<Arc<Detector>>,
        certificates: Vec<Arc<Certificates>>,
    ) -> Self {
        // Every result shown from the start, at 0: an alert rule on `invalid` needs the series.
        for result in ["ok", "invalid", "needs_restart", "busy"] {
            crate::metrics::METRICS.reloads.with_label_values(&[result]);
        }
        Self {
            path: running.source.clone(),
            running: Mutex::new(running),
            live,
            budgets,
            detector,
            certificates,
            sessions: None,
        }
    }

    /// End the sessions of users whose `[groups]` a reload changes.
    pub fn ending_sessions_in(mut self, sessions: Arc<crate::identity::Sessions>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// A session carries the groups its user had at sign-in, and policy, privileged packs and
    /// the detector read them there: a user whose `[groups]` changed signs in again, so a
    /// reload that moves someone into a denied group takes effect now, not at their next login.
    fn end_regrouped(&self, old: &Config, new: &Config) -> Vec<String> {
        let users = regrouped(old, new);
        let (Some(sessions), false) = (&self.sessions, users.is_empty()) else {
            return users;
        };
        let profile = new.portals.iter().find_map(|p| p.profile.clone());
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("reload: no runtime to end the sessions of regrouped users");
            return users;
        };
        for raw in &users {
            let user = match &profile {
                Some(p) => crate::identity::login::canonical(p, raw),
                None => raw.clone(),
            };
            let ended =
                rt.block_on(sessions.end_user(&user, None, crate::identity::Ending::Revoked));
            tracing::warn!(target: "vigie::audit", event = "sessions_ended", reason = "groups_changed", user = %user, ended = ?ended.ok(), "reload: this user's groups changed; their sessions ended");
        }
        users
    }

    /// Reload from the file the gateway was started with; `by` says who asked (`SIGHUP`,
    /// `admin API`), for the audit trail. Returns the sections that changed.
    pub fn reload(&self, by: &str) -> Result<Vec<String>, ReloadError> {
        // One reload at a time: two racing would each compare against a stale "running". A
        // reload stuck on a file (a FIFO, a hung network mount) makes the next ones say so,
        // instead of queueing behind it.
        let mut running = match self.running.try_lock() {
            Ok(r) => r,
            Err(std::sync::TryLockError::WouldBlock) => {
                crate::metrics::METRICS
                    .reloads
                    .with_label_values(&["busy"])
                    .inc();
                tracing::error!(target: "vigie::audit", event = "config_reload", outcome = "busy", by = %by, "reload refused: another is still running");
                return Err(ReloadError::Busy);
            }
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        };
        let result = Config::load(&self.path)
            .map_err(ReloadError::Invalid)
            .and_then(|next| {
                let restart = needs_restart(&running, &next);
                match restart.is_empty() {
                    true => Ok(next),
                    false => Err(ReloadError::NeedsRestart(restart)),
                }
            })
            .and_then(|next| {
                let grew = key_ring(&running, &next).map_err(ReloadError::KeyRing)?;
                Ok((next, grew))
            })
            .and_then(|(next, grew)| {
                // Every certificate read before any is served: all or nothing.
                let certs = self
                    .certificates
                    .iter()
                    .map(|c| {
                        c.prepare()
                            .map_err(|e| format!("listener {}: {e}", c.listener))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ReloadError::Certificate)?;
                Ok((next, grew, certs))
            });
        let m = &crate::metrics::METRICS;
        match result {
            Ok((mut next, grew, certs)) => {
                let mut changed: Vec<String> = changed(&running, &next)
                    .into_iter()
                    .map(String::from)
                    .collect();
                // What weakens or strengthens protection is named in the audit trail.
                changed.extend(risky(&running, &next));
                if let (true, Some(live), Some(read)) =
                    (grew, &running.second_factor.keys, &next.second_factor.keys)
                {
                    // The running ring (which every store holds) takes the new keys.
                    live.adopt(read);
                    changed.push("key ring".into());
                }
                next.second_factor.keys = running.second_factor.keys.clone();
                if !certs.is_empty() {
                    changed.push("certificates".into());
                }
                certs.into_iter().for_each(|c| c.install());
                self.budgets.retune(next.budgets.clone());
                if let Some(d) = &self.detector {
                    d.retune(next.detection.clone());
                }
                let certs_said = super::preflight::certificate_warnings(&next);
                for w in next.warnings.iter().chain(&certs_said) {
                    tracing::warn!("config: {w}");
                }
                for user in self.end_regrouped(&running, &next) {
                    changed.push(format!("sessions of {user} ended (groups changed)"));
                }
                self.live.store(Live::new(next.clone()));
                *running = next;
                m.reloads.with_label_values(&["ok"]).inc();
                m.last_reload.set(jiff::Timestamp::now().as_second().max(0));
                tracing::info!(target: "vigie::audit", event = "config_reload", outcome = "ok", by = %by, changed = %changed.join(","));
                Ok(changed)
            }
            Err(e) => {
                m.reloads.with_label_values(&[e.label()]).inc();
                tracing::error!(target: "vigie::audit", event = "config_reload", outcome = e.label(), by = %by, "reload refused: {e}");
                Err(e)
            }
        }
    }
}

/// Debug texts compare whole sections; none of these holds a map (whose order would vary).
fn text(v: &impl std::fmt::Debug) -> String {
    format!("{v:?}")
}

/// A portal's place in the process: what its connections and logouts were built with.
fn portal_identity(c: &Config) -> Vec<String> {
    c.portals
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {} {:?} {:?}",
                p.name, p.hosts, p.upstream, p.upstream_tls, p.login
            )
        })
        .collect()
}

/// Every `[storage]` setting, secrets included (compared here, never printed): its `Debug`
/// leaves most of them out.
fn storage(c: &Config) -> impl PartialEq + '_ {
    use crate::config::StorageBackend;
    let s = &c.storage;
    let backend = match &s.backend {
        StorageBackend::Embedded => None,
        StorageBackend::Redis {
            url,
            cluster,
            prefix,
            vouched_persistent,
            tls,
        } => Some((
            url,
            cluster,
            prefix,
            vouched_persistent,
            &tls.ca,
            tls.client.as_ref().map(|(c, k)| (c, &k.0)),
        )),
    };
    (
        backend,
        s.replicas,
        s.outage_grace,
        s.audit_retention,
        s.audit_checkpoint,
        &s.database,
        text(&s.records),
        &s.session_key,
    )
}

/// The settings read once at start, by key, that differ between `old` and `new`.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let secret = |s: &Option<crate::config::Secret>| s.as_ref().map(|s| s.0.clone());
    let pairs: [(&'static str, bool); 12] = [
        ("[server]", text(&old.server) != text(&new.server)),
        ("[[listener]]", text(&old.listeners) != text(&new.listeners)),
        (
            "[admin]",
            old.admin != new.admin || secret(&old.admin_token) != secret(&new.admin_token),
        ),
        ("[log]", text(&old.log) != text(&new.log)),
        ("[session]", text(&old.session) != text(&new.session)),
        ("[storage]", storage(old) != storage(new)),
        (
            "[limits] max_connections_per_peer, head_timeout_seconds",
            (old.limits.max_connections_per_peer, old.limits.head_timeout)
                != (new.limits.max_connections_per_peer, new.limits.head_timeout),
        ),
        ("[assertion]", text(&old.assertion) != text(&new.assertion)),
        (
            "[second_factor]",
            text(&old.second_factor) != text(&without_keys(new, old)),
        ),
        ("[alerts]", text(&old.alerts) != text(&new.alerts)),
        ("[console]", text(&old.console) != text(&new.console)),
        (
            "[[portal]] name, hosts, upstream, upstream_tls or login",
            portal_identity(old) != portal_identity(new),
        ),
    ];
    pairs.iter().filter(|(_, d)| *d).map(|(k, _)| *k).collect()
}

/// `new`'s second-factor settings with `old`'s key ring: the ring is compared on its own
/// ([`key_ring`]), since keys may be added at a reload.
fn without_keys(new: &Config, old: &Config) -> crate::config::SecondFactorConfig {
    let mut sf = new.second_factor.clone();
    sf.keys = old.second_factor.keys.clone();
    sf
}

/// Whether the key ring of `new` may replace the running one: keys added (or a new one
/// first), none removed or changed. `Ok(true)` when it differs.
pub fn key_ring(old: &Config, new: &Config) -> Result<bool, String> {
    match (&old.second_factor.keys, &new.second_factor.keys) {
        (Some(a), Some(b)) => a.accepts(b),
        (None, None) => Ok(false),
        _ => Err("second_factor.key_file appeared or disappeared: restart to change it".into()),
    }
}

/// The rules added or removed (by name), and the detector switched on or off.
fn risky(old: &Config, new: &Config) -> Vec<String> {
    let names =
        |c: &Config| -> Vec<String> { c.policy.rules.iter().map(|r| r.name.clone()).collect() };
    let (before, after) = (names(old), names(new));
    let mut out: Vec<String> = after
        .iter()
        .filter(|n| !before.contains(n))
        .map(|n| format!("rule added: {n}"))
        .collect();
    out.extend(
        before
            .iter()
            .filter(|n| !after.contains(n))
            .map(|n| format!("rule removed: {n}")),
    );
    match (old.detection.enabled, new.detection.enabled) {
        (true, false) => out.push("detection switched OFF".into()),
        (false, true) => out.push("detection switched on".into()),
        _ => {}
    }
    out
}

/// The users (as written in `[groups]`) whose groups differ between `old` and `new`.
pub fn regrouped(old: &Config, new: &Config) -> Vec<String> {
    let sorted = |c: &Config, u: &str| {
        let mut g = c.static_groups.get(u).cloned().unwrap_or_default();
        g.sort();
        g
    };
    let mut users: Vec<String> = old
        .static_groups
        .keys()
        .chain(new.static_groups.keys())
        .filter(|u| sorted(old, u) != sorted(new, u))
        .cloned()
        .collect();
    users.sort();
    users.dedup();
    users
}

/// The reloadable sections that differ, for the log and the command's answer.
fn changed(old: &Config, new: &Config) -> Vec<&'static str> {
    let groups = |c: &Config| {
        let mut v: Vec<_> = c.static_groups.iter().collect();
        v.sort();
        text(&v)
    };
    let (og, ng) = (groups(old), groups(new));
    let classes = |c: &Config| {
        let mut v: Vec<_> = c.budgets.classes.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        text(&(v, &c.budgets.source, &c.budgets.login))
    };
    let (ob, nb) = (classes(old), classes(new));
    let profiles = |c: &Config| text(&c.portals.iter().map(|p| &p.profile).collect::<Vec<_>>());
    let portals = |c: &Config| text(&c.portals);
    [
        ("policy", text(&old.policy) != text(&new.policy)),
        ("budgets", ob != nb),
        ("detection", text(&old.detection) != text(&new.detection)),
        ("limits", text(&old.limits) != text(&new.limits)),
        ("headers", text(&old.headers) != text(&new.headers)),
        (
            "trusted_proxies",
            old.trusted_proxies != new.trusted_proxies,
        ),
        ("static_groups", og != ng),
        ("profiles", profiles(old) != profiles(new)),
        ("portals", portals(old) != portals(new)),
    ]
    .into_iter()
    .filter(|(_, d)| *d)
    .map(|(k, _)| k)
    .collect()
}

#[cfg(test)]
mod tests;
