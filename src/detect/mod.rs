//! Exfiltration detection: a streaming detector with bounded state per identity and per
//! source address. Each request the pipeline forwards becomes an [`Event`] ([`reading`] says
//! how a portal's requests name patients, pages and exports); [`signals`] score the identity's
//! [`track::Track`]; the score picks an [`Action`] by band (alert, step-up, throttle, suspend);
//! alerts leave through [`crate::alerts`] with pseudonymised patient ids only.
//!
//! Time is the caller's (`now_us`): the simulator runs hours of clinical work in seconds.

pub mod activity;
mod allowance;
pub mod pseudonym;
pub mod reading;
pub mod records;
pub mod settings;
pub mod shared;
pub mod signals;
pub mod sketch;
pub mod track;
mod tuning;
mod verdict;
pub mod windows;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub use settings::DetectionConfig;
pub use track::Event;
use tuning::Tuning;
pub use verdict::{Action, Hold};

use crate::alerts::Alerts;
use signals::{Context, Signal};
use track::Track;

const SHARDS: usize = 16;

/// Tracks by key hash. The key is already a keyed 64-bit hash: hashing it again is waste, and
/// an inline integer key spares each lookup a pointer chase to a string (measured: the map
/// probes dominate `detect/observe`).
type Tracks = HashMap<u64, Track, std::hash::BuildHasherDefault<KeyHasher>>;

#[derive(Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Identities (and sources) tracked at most; the idlest go first when full.
const MAX_TRACKS: usize = 200_000;

/// Who is asking, as the pipeline knows it once the session is identified.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub portal: &'a str,
    pub user: &'a str,
    pub groups: &'a [String],
    pub privileged: bool,
    /// The session; alerts show only its fingerprint, the one `vigie session revoke --session`
    /// and the admin API take (computed when an alert is raised, not per request).
    pub session: &'a crate::identity::token::SessionId,
    pub ip: IpAddr,
    pub user_agent: &'a str,
    /// In break-glass, the detector alerts but never holds or cuts (the SOC already knows).
    pub break_glass: bool,
    /// When the session last proved a second factor (unix µs), for detector step-ups.
    pub factor_at_us: i64,
}

/// What the portal's answer told, once it was sent.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// 403, 404 or 410 from the portal.
    pub denied: bool,
    pub export: bool,
    /// Records sent without an id the detector could read (CSV rows, unreadable answers by
    /// size).
    pub rows: u64,
    /// The distinct patients the answer showed, as pseudonyms (`[[records]]`).
    pub patients: Vec<u64>,
    /// The distinct patients a listing showed (`[[records]] listing = true`).
    pub listed: Vec<u64>,
    /// Records this answer reserved while it streamed ([`Detector::stream`]): released now
    /// that they are counted; `listing`: from the listing reserve.
    pub streamed: u64,
    pub listing: bool,
    pub bytes: u64,
}

/// What is logged with an alert about the request that raised it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub method: &'a str,
    /// Already masked (identifier-like segments replaced), never a query.
    pub path: &'a str,
    pub status: u16,
    pub request_id: u64,
}

pub struct Detector {
    /// The settings and what is derived from them, swapped whole by a reload (the tracks,
    /// baselines and holds are kept).
    tuning: arc_swap::ArcSwap<Tuning>,
    zone: jiff::tz::TimeZone,
    pseudonyms: pseudonym::Pseudonyms,
    shards: Vec<Mutex<Tracks>>,
    /// Random per process, so nobody can choose a name that lands on someone else's track.
    keys: std::collections::hash_map::RandomState,
    /// Role -> (average patients per active hour, hours seen).
    roles: Mutex<HashMap<String, (f64, u32)>>,
    holds: verdict::Holds,
    alerts: Arc<Alerts>,
    /// With Redis: what replicas share (see [`shared`]).
    shared: Option<Arc<shared::Shared>>,
    /// Embedded: where holds outlive a restart.
    durable: Option<Arc<dyn crate::storage::holds::HoldStore>>,
    /// Held across a hold's or a release's memory and disk steps, so the two agree whatever
    /// the interleaving (a release between a hold's disk write and its memory write would
    /// leave it held now but gone at the next start).
    holding: Mutex<()>,
    /// Releases already applied here: track key -> when.
    released: Mutex<HashMap<String, i64>>,
    /// Alerts raised before the answer was known, by request id: they leave with the
    /// request's real status once it ends ([`Detector::settle`]).
    pending: Mutex<HashMap<u64, Vec<crate::alerts::Alert>>>,
    /// Each identity's recent requests and the patient ids they showed (for alerts' context).
    activity: activity::Activity,
}

/// Requests whose alerts wait for their status at most; past it, alerts leave at once.
const MAX_PENDING: usize = 10_000;

impl Detector {
    pub fn new(
        cfg: DetectionConfig,
        zone: jiff::tz::TimeZone,
        key: &[u8],
        alerts: Arc<Alerts>,
    ) -> Self {
        let pseudonyms = pseudonym::Pseudonyms::new(key);
        Self {
            tuning: arc_swap::ArcSwap::from_pointee(Tuning::new(cfg, &pseudonyms)),
            zone,
            pseudonyms,
            shards: (0..SHARDS).map(|_| Mutex::new(Tracks::default())).collect(),
            keys: std::collections::hash_map::RandomState::new(),
            roles: Mutex::new(HashMap::new()),
            holds: verdict::Holds::default(),
            alerts,
            shared: None,
            durable: None,
            holding: Mutex::new(()),
            released: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            activity: activity::Activity::default(),
        }
    }

    /// Share activity, holds and releases with the other replicas through Redis.
    pub fn shared_through(self, redis: crate::storage::redis::Redis, prefix: &str) -> Arc<Self> {
        let shared = Arc::new(shared::Shared::new(redis, prefix));
        let me = Arc::new(Self {
            shared: Some(shared.clone()),
            ..self
        });
        shared.start(Arc::downgrade(&me));
        me
    }

    /// Keep holds in `store` across restarts, starting with those it still has.
    pub fn holding_in(
        mut self,
        store: Arc<dyn crate::storage::holds::HoldStore>,
        now_us: i64,
    ) -> Result<Self, crate::identity::store::StoreError> {
        for (portal, user, hold) in store.running(now_us)? {
            self.holds.put(&portal, &user, hold);
        }
        self.durable = Some(store);
        Ok(self)
    }

    /// Counts across replicas for one track, from the sync thread.
    pub(crate) fn shared_counts(&self, name: &str, counts: shared::Counts) {
        let key = self.key_of(&[name.as_bytes()]);
        if let Some(t) = self
            .shard(key)
            .lock()
            .expect("detector shard")
            .get_mut(&key)
        {
            t.shared = Some(counts);
        }
    }

    /// The holds and releases every replica agrees on, from the sync thread. A release made on
    /// another replica also forgets this replica's evidence about the identity.
    pub(crate) fn shared_holds(
        &self,
        holds: HashMap<String, Hold>,
        released: HashMap<String, i64>,
    ) {
        self.holds.replace(holds, &released);
        let mut seen = self.released.lock().expect("releases");
        for (key, at) in &released {
            if seen.get(key).is_none_or(|done| done < at) {
                seen.insert(key.clone(), *at);
                let hashed = self.key_of(&[key.as_bytes()]);
                let stale = self
                    .shard(hashed)
                    .lock()
                    .expect("detector shard")
                    .get(&hashed)
                    .is_some_and(|t| t.last_us <= *at);
                if stale {
                    self.forget(hashed);
                }
            }
        }
    }

    /// An alert about the request `seen`: at once when its status is known, otherwise kept
    /// until the request ends.
    fn emit(&self, alert: crate::alerts::Alert, seen: &Seen) {
        if seen.status == 0 && seen.request_id != 0 {
            let mut pending = self.pending.lock().expect("pending alerts");
            if pending.len() < MAX_PENDING || pending.contains_key(&seen.request_id) {
                pending.entry(seen.request_id).or_default().push(alert);
                return;
            }
        }
        self.alerts.raise(self.with_context(alert));
    }

    /// The request ended with `status` (the portal's, or the gateway's refusal): its alerts
    /// leave with it.
    pub fn settle(&self, request_id: u64, status: u16) {
        let alerts = self
            .pending
            .lock()
            .expect("pending alerts")
            .remove(&request_id);
        for mut alert in alerts.into_iter().flatten() {
            alert.status = status;
            self.alerts.raise(self.with_context(alert));
        }
    }

    pub fn alerts(&self) -> &Arc<Alerts> {
        &self.alerts
    }

    /// The keyed pseudonym of a patient identifier.
    pub fn pseudonym(&self, raw_id: &str) -> u64 {
        self.pseudonyms.of(raw_id)
    }

    fn shard(&self, key: u64) -> &Mutex<Tracks> {
        // The high bits pick the shard; the map inside uses the low ones.
        &self.shards[((key >> 56) as usize) % SHARDS]
    }

    fn with_track<R>(&self, key: u64, f: impl FnOnce(&mut Track) -> R) -> R {
        let mut map = self.shard(key).lock().expect("detector shard");
        if !map.contains_key(&key) && map.len() >= MAX_TRACKS / SHARDS {
            // Full: forget the idlest track of this shard (bounded memory beats completeness).
            if let Some(idlest) = map.iter().min_by_key(|(_, t)| t.last_us).map(|(k, _)| *k) {
                map.remove(&idlest);
            }
        }
        f(map.entry(key).or_default())
    }

    /// The 64-bit key of a track: SipHash (random keys) over its name's bytes: `portal \0 user`
    /// for an identity, `portal \1 address prefix` for a source.
    fn key_of(&self, parts: &[&[u8]]) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = self.keys.build_hasher();
        for p in parts {
            h.write(p);
        }
        h.finish()
    }

    fn user_key(&self, s: &Subject) -> u64 {
        self.key_of(&[s.portal.as_bytes(), b"\0", s.user.as_bytes()])
    }

    /// The identity's name in shared state (Redis keys, holds, releases).
    fn user_name(s: &Subject) -> String {
        format!("{}\u{0}{}", s.portal, s.user)
    }

    fn source_key(&self, s: &Subject) -> u64 {
        // An IPv6 client counts by its /64, as budgets do.
        let (v4, v6);
        let prefix: &[u8] = match s.ip {
            IpAddr::V4(a) => {
                v4 = a.octets();
                &v4
            }
            IpAddr::V6(a) => {
                v6 = a.octets();
                &v6[..8]
            }
        };
        self.key_of(&[s.portal.as_bytes(), b"\x01", prefix])
    }

    /// Before a request is forwarded: is the identity held or throttled, or does a detector
    /// step-up wait for a fresh factor?
    /// Refusals for a pending step-up count: an identity that keeps going without proving a
    /// factor (a stolen session cannot) is suspended.
    pub fn gate(&self, s: &Subject, now_us: i64, seen: &Seen) -> Action {
        // One reading of the settings for the whole call (a reload may swap them).
        let tuning = self.tuning.load();
        if !tuning.cfg.watches(s.portal) {
            return Action::Allow;
        }
        if let Some(hold) = self.holds.get(s.portal, s.user, now_us) {
            return Action::Held(hold);
        }
        let limit = tuning.cfg.step_up_refusals;
        self.with_track(self.user_key(s), |t| match verdict::pending(t, s, now_us) {
            Action::StepUp => {
                t.step_up_refusals += 1;
                if t.step_up_refusals < limit {
                    return Action::StepUp;
                }
                let evidence = vec![verdict::ignored_step_up(t.step_up_refusals, limit)];
                self.decide(t, s, seen, evidence, Vec::new(), now_us)
            }
            other => other,
        })
    }

    /// When a step-up this replica's detector demands of `user` began (unix µs), if one is
    /// pending: the factor page asks for a fresh proof then, even where the policy's level is
    /// met. Read only: asking is not a refused step-up, and no track is created.
    pub fn step_up_since(&self, portal: &str, user: &str) -> Option<i64> {
        let key = self.key_of(&[portal.as_bytes(), b"\0", user.as_bytes()]);
        let map = self.shard(key).lock().expect("detector shard");
        map.get(&key).and_then(|t| t.step_up_since_us)
    }

    /// The request is about to be forwarded: fold it in, score, act. The returned action
    /// applies to this very request (a honeytoken or a huge page is stopped before it leaves).
    pub fn observe(
        &self,
        s: &Subject,
        e: &Event,
        asked_page: u32,
        normal_page: u32,
        seen: &Seen,
    ) -> Action {
        // One reading of the settings for the whole call (a reload may swap them).
        let tuning = self.tuning.load();
        if !tuning.cfg.watches(s.portal) {
            return Action::Allow;
        }
        let scripted = self.scripted(s.user_agent);
        let off_hours = self.off_hours(e.at_us);
        let honeytoken = e
            .patient
            .is_some_and(|(h, _)| tuning.honeytokens.contains(&h));
        let base = Context {
            now_us: e.at_us,
            privileged: s.privileged,
            off_hours,
            scripted_agent: scripted,
            honeytoken: false,
            // A source is measured against fixed thresholds: it has no role and no baseline.
            baseline: tuning.cfg.default_prior,
            source: true,
            page_normal_max: normal_page,
            asked_page,
            // A source has no role: it is allowed the busiest role's day.
            normal: tuning.cfg.budgets.busiest(),
        };
        // The source first, then the user under its own lock (two shards are never held at once).
        let skey = self.source_key(s);
        let source_signals = match self.shared_source(s) {
            true => Vec::new(),
            false => self.with_track(skey, |t| {
                t.update(e);
                signals::evaluate(t, &base, &tuning.cfg)
            }),
        };
        self.with_track(self.user_key(s), |t| {
            let closed = t.update(e);
            let settled = t.baseline_hours >= tuning.cfg.warmup_hours;
            t.see_network(e.network, e.at_us, settled);
            t.recent_requests.push(seen.request_id);
            t.last_source = Some(skey);
            if let Some(shared) = &self.shared {
                let pseudonym = e
                    .patient
                    .or(if e.current { t.current_patient } else { None });
                let h = pseudonym.map_or(0, |(h, _)| h);
                if h != 0 || e.record_rows > 0 {
                    shared.record(&Self::user_name(s), e.at_us, h, e.record_rows);
                }
            }
            if let Some(hour) = closed {
                self.learn_role(s.groups, hour.patients as f64);
            }
            let cx = Context {
                honeytoken,
                baseline: self.baseline(t, s.groups),
                normal: self.normal(t, s.groups, e.at_us),
                source: false,
                ..base
            };
            let user_signals = signals::evaluate(t, &cx, &tuning.cfg);
            self.decide(t, s, seen, user_signals, source_signals, e.at_us)
        })
    }

    /// After the portal answered: a refusal, an export, the records and patients it carried,
    /// and bytes count. Bytes alone are only added up (the next request is scored with them).
    pub fn finish(&self, s: &Subject, at_us: i64, answer: Answer, seen: &Seen) {
        // One reading of the settings for the whole call (a reload may swap them).
        let tuning = self.tuning.load();
        if !tuning.cfg.watches(s.portal) {
            return;
        }
        let e = Event {
            at_us,
            denied: answer.denied,
            export: answer.export,
            record_rows: answer.rows,
            bytes: answer.bytes,
            ..Event::default()
        };
        let ukey = self.user_key(s);
        if answer.streamed > 0 {
            self.with_track(ukey, |t| match answer.listing {
                true => t.inflight_listed = t.inflight_listed.saturating_sub(answer.streamed),
                false => t.inflight = t.inflight.saturating_sub(answer.streamed),
            });
        }
        let exposed = answer.rows > 0 || !answer.patients.is_empty() || !answer.listed.is_empty();
        if !answer.denied && !answer.export && !exposed {
            if answer.bytes > 0 {
                self.with_track(ukey, |t| t.add_outcome(&e));
            }
            return;
        }
        let honeytoken = answer
            .patients
            .iter()
            .chain(&answer.listed)
            .any(|h| tuning.honeytokens.contains(h));
        let cx = Context {
            now_us: at_us,
            privileged: s.privileged,
            off_hours: self.off_hours(at_us),
            scripted_agent: self.scripted(s.user_agent),
            ..Context::default()
        };
        if let Some(shared) = &self.shared {
            let name = Self::user_name(s);
            if answer.rows > 0 {
                shared.record(&name, at_us, 0, answer.rows);
            }
            for h in &answer.patients {
                shared.record(&name, at_us, *h, 0);
            }
        }
        let source_signals = match self.shared_source(s) {
            true => Vec::new(),
            false => self.with_track(self.source_key(s), |t| {
                t.add_outcome(&e);
                t.add_patients(at_us, &answer.patients);
                t.add_listed(at_us, &answer.listed);
                let cx = Context {
                    source: true,
                    baseline: tuning.cfg.default_prior,
                    normal: tuning.cfg.budgets.busiest(),
                    ..cx
                };
                signals::evaluate(t, &cx, &tuning.cfg)
            }),
        };
        self.with_track(ukey, |t| {
            t.add_outcome(&e);
            t.add_patients(at_us, &answer.patients);
            t.add_listed(at_us, &answer.listed);
            let cx = Context {
                honeytoken,
                baseline: self.baseline(t, s.groups),
                normal: self.normal(t, s.groups, at_us),
                ..cx
            };
            let user_signals = signals::evaluate(t, &cx, &tuning.cfg);
            self.decide(t, s, seen, user_signals, source_signals, at_us);
        });
    }

    fn baseline(&self, t: &Track, groups: &[String]) -> f64 {
        let tuning = self.tuning.load();
        let cfg = &tuning.cfg;
        if t.baseline_hours >= cfg.warmup_hours {
            return t.baseline;
        }
        let roles = self.roles.lock().expect("roles");
        let learned = groups
            .iter()
            .filter_map(|g| roles.get(g))
            .filter(|(_, hours)| *hours >= 3 * cfg.warmup_hours)
            .map(|(avg, _)| *avg)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        learned.unwrap_or_else(|| {
            groups
                .iter()
                .filter_map(|g| cfg.role_priors.get(g))
                .copied()
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
                .unwrap_or(cfg.default_prior)
        })
    }

    fn learn_role(&self, groups: &[String], patients: f64) {
        let mut roles = self.roles.lock().expect("roles");
        for g in groups {
            let (avg, hours) = roles.entry(g.clone()).or_insert((0.0, 0));
            *hours += 1;
            *avg += (patients - *avg) / (*hours).min(200) as f64;
        }
    }

    /// The request comes from a declared shared network: its address is no one's evidence.
    fn shared_source(&self, s: &Subject) -> bool {
        self.tuning
            .load()
            .cfg
            .shared_networks
            .iter()
            .any(|n| n.contains(&s.ip))
    }

    fn scripted(&self, ua: &str) -> bool {
        let t = self.tuning.load();
        ua.is_empty() || (!t.cfg.scripted_agents.is_empty() && t.scripted.is_match(ua))
    }

    fn off_hours(&self, at_us: i64) -> bool {
        self.tuning
            .load()
            .cfg
            .working_hours
            .as_ref()
            .is_some_and(|w| !w.contains((at_us / 1_000_000).max(0) as u64, &self.zone))
    }

    /// Held identities, for the SOC.
    pub fn holds(&self, now_us: i64) -> Vec<(String, String, Hold)> {
        self.holds.list(now_us)
    }

    /// The SOC releases a held identity: its activity so far is forgotten, so the same
    /// evidence does not hold it again at once.
    pub fn release(&self, portal: &str, user: &str, now_us: i64) -> bool {
        let one = self.holding.lock().expect("holding");
        let released = self.holds.release(portal, user);
        if let Some(store) = &self.durable {
            // Failing to forget it on disk only brings the hold back at the next restart.
            if let Err(e) = store.release(portal, user) {
                tracing::error!(error = %e, "detector: the release is not in the database yet; until it is, a restart brings the hold back");
            }
        }
        drop(one);
        let key = format!("{portal}\u{0}{user}");
        self.forget(self.key_of(&[key.as_bytes()]));
        self.released
            .lock()
            .expect("releases")
            .insert(key.clone(), now_us);
        if let Some(shared) = &self.shared {
            shared.hold(shared::HoldChange::Release(key, now_us));
        }
        released
    }

    /// Forget an identity's track and that of the workstation it last used: both hold the
    /// evidence the SOC has just reviewed.
    fn forget(&self, key: u64) {
        let track = self.shard(key).lock().expect("detector shard").remove(&key);
        if let Some(source) = track.and_then(|t| t.last_source) {
            self.shard(source)
                .lock()
                .expect("detector shard")
                .remove(&source);
        }
    }

    /// Approximate bytes of state of one identity (for the bench).
    pub fn footprint(&self, portal: &str, user: &str) -> Option<usize> {
        let key = self.key_of(&[portal.as_bytes(), b"\0", user.as_bytes()]);
        self.shard(key)
            .lock()
            .expect("detector shard")
            .get(&key)
            .map(Track::footprint)
    }

    /// Score, step through the bands, alert on escalation, hold on suspension; called with
    /// the identity's track locked.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        t: &mut Track,
        s: &Subject,
        seen: &Seen,
        user_signals: Vec<Signal>,
        source_signals: Vec<Signal>,
        now_us: i64,
    ) -> Action {
        // One reading of the settings for the whole call (a reload may swap them).
        let tuning = self.tuning.load();
        let (us, ss) = (
            signals::combine(&user_signals, &tuning.cfg, s.portal),
            signals::combine(&source_signals, &tuning.cfg, s.portal),
        );
        // Only the identity's own evidence acts on it: a workstation, NAT or terminal server
        // shared with someone else's burst must not hold, slow or step up the next user.
        let step = verdict::step(
            t,
            us,
            &tuning.cfg.bands,
            s,
            now_us,
            tuning.cfg.throttle_seconds,
        );
        if let Some(action) = step.alert {
            let alert = verdict::alert(self, s, seen, t, us, &user_signals, action, now_us);
            if action == verdict::ActionKind::Suspend {
                let until = now_us + tuning.cfg.hold_minutes as i64 * 60_000_000;
                let hold = Hold {
                    until_us: until,
                    since_us: now_us,
                    alert_id: alert.id.clone(),
                    rule: alert.rule_name.clone(),
                    score: us,
                };
                if let Some(shared) = &self.shared {
                    shared.hold(shared::HoldChange::Put(Self::user_name(s), hold.clone()));
                }
                let _one = self.holding.lock().expect("holding");
                if let Some(store) = &self.durable {
                    // Fail closed: the hold applies here even if the disk refuses it.
                    if let Err(e) = store.put(s.portal, s.user, &hold) {
                        tracing::error!(error = %e, "detector: the hold is not in the database yet; until it is, it ends with this process");
                    }
                }
                tracing::warn!(target: "vigie::audit", event = "hold_placed", user = %s.user, portal = %s.portal, alert = %alert.id, rule = %alert.rule_id, score = us, until_us = until);
                self.holds.put(s.portal, s.user, hold);
            }
            self.emit(alert, seen);
        }
        // The source's evidence is told to the SOC (once an hour per identity), marked as the
        // address's, not the user's.
        if ss >= tuning.cfg.bands.alert && ss > us && t.source_alerted_until_us <= now_us {
            t.source_alerted_until_us = now_us + track::LONG_SLOT_US;
            let action = verdict::ActionKind::Alert;
            let mut alert = verdict::alert(self, s, seen, t, ss, &source_signals, action, now_us);
            for e in &mut alert.evidence {
                e.signal = format!("source.{}", e.signal);
                e.detail = format!(
                    "{} — the source address's activity, not only this user's",
                    e.detail
                );
            }
            alert.rule_name = format!("{} (source address)", alert.rule_name);
            alert.dedup_key = format!("{}:source", alert.dedup_key);
            self.emit(alert, seen);
        }
        match self.holds.get(s.portal, s.user, now_us) {
            Some(h) => Action::Held(h),
            None => step.now,
        }
    }
}
