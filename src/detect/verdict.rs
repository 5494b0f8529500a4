//! From a risk score to what happens: the action bands, the holds (suspended identities
//! waiting for the SOC), and the alert an escalation raises.

use std::collections::HashMap;
use std::sync::Mutex;

use super::settings::Bands;
use super::signals::Signal;
use super::track::Track;
use super::{Detector, Seen, Subject};
use crate::alerts::{Alert, Evidence, Severity};

/// What the pipeline does with this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Prove a second factor again before going on.
    StepUp,
    /// Slowed: retry after this many seconds.
    Throttle {
        retry_after: u64,
    },
    /// Suspended: a "held for review" page until the SOC releases it or it expires.
    Held(Hold),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hold {
    pub until_us: i64,
    pub since_us: i64,
    /// The alert that suspended it: the reference the page shows and the SOC looks up.
    pub alert_id: String,
    pub rule: String,
    pub score: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActionKind {
    Alert = 1,
    StepUp = 2,
    Throttle = 3,
    Suspend = 4,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Alert => "alert",
            ActionKind::StepUp => "step_up",
            ActionKind::Throttle => "throttle",
            ActionKind::Suspend => "suspend",
        }
    }
}

/// Holds by portal and user.
#[derive(Default)]
pub struct Holds(Mutex<HashMap<(String, String), Hold>>);

impl Holds {
    pub fn get(&self, portal: &str, user: &str, now_us: i64) -> Option<Hold> {
        let mut map = self.0.lock().expect("holds");
        let key = (portal.to_string(), user.to_string());
        match map.get(&key) {
            Some(h) if h.until_us > now_us => Some(h.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, portal: &str, user: &str, hold: Hold) {
        self.0
            .lock()
            .expect("holds")
            .insert((portal.to_string(), user.to_string()), hold);
    }

    pub fn release(&self, portal: &str, user: &str) -> bool {
        self.0
            .lock()
            .expect("holds")
            .remove(&(portal.to_string(), user.to_string()))
            .is_some()
    }

    /// The holds every replica agrees on (from Redis), plus this replica's own that no
    /// release has overtaken yet (their write may still be on its way).
    pub fn replace(&self, shared: HashMap<String, Hold>, released: &HashMap<String, i64>) {
        let mut map = self.0.lock().expect("holds");
        map.retain(|(p, u), h| {
            let field = format!("{p}\u{0}{u}");
            released.get(&field).is_none_or(|at| *at < h.since_us)
        });
        for (k, h) in shared {
            if let Some((p, u)) = k.split_once('\u{0}') {
                map.insert((p.to_string(), u.to_string()), h);
            }
        }
    }

    pub fn list(&self, now_us: i64) -> Vec<(String, String, Hold)> {
        let mut map = self.0.lock().expect("holds");
        map.retain(|_, h| h.until_us > now_us);
        map.iter()
            .map(|((p, u), h)| (p.clone(), u.clone(), h.clone()))
            .collect()
    }
}

fn band(score: u8, b: &Bands) -> u8 {
    match score {
        s if s >= b.suspend => 4,
        s if s >= b.throttle => 3,
        s if s >= b.step_up => 2,
        s if s >= b.alert => 1,
        _ => 0,
    }
}

/// An earlier escalation still in force, checked before the request is scored.
pub fn pending(t: &Track, s: &Subject, now_us: i64) -> Action {
    if s.break_glass {
        return Action::Allow;
    }
    if t.alerted_band >= 3 && now_us < t.throttle_next_us {
        let retry_after = ((t.throttle_next_us - now_us) as u64).div_ceil(1_000_000);
        return Action::Throttle { retry_after };
    }
    match t.step_up_since_us {
        Some(since) if s.factor_at_us < since => Action::StepUp,
        _ => Action::Allow,
    }
}

/// The evidence of a step-up that was asked for and not met, `refusals` times.
pub fn ignored_step_up(refusals: u32, limit: u32) -> Signal {
    Signal {
        id: "step_up_ignored",
        rule_id: "VIGIE-EXF-014",
        name: "Step-up demanded and never met",
        score: 100.0,
        observed: refusals as f64,
        baseline: None,
        threshold: limit as f64,
    }
}

/// What one scoring changes: the alert to raise (on escalation only) and this request's action.
pub struct Step {
    pub alert: Option<ActionKind>,
    pub now: Action,
}

pub fn step(
    t: &mut Track,
    score: u8,
    bands: &Bands,
    s: &Subject,
    now_us: i64,
    throttle_s: u64,
) -> Step {
    let level = band(score, bands);
    if level == 0 && score < bands.alert.saturating_sub(10) {
        // Calm again: the next escalation alerts afresh.
        t.alerted_band = 0;
        t.step_up_since_us = None;
        t.step_up_refusals = 0;
    }
    let alert = (level > t.alerted_band).then(|| {
        t.alerted_band = level;
        match (level, s.break_glass) {
            (_, true) | (1, _) => ActionKind::Alert,
            (2, _) => ActionKind::StepUp,
            (3, _) => ActionKind::Throttle,
            _ => ActionKind::Suspend,
        }
    });
    if s.break_glass {
        return Step {
            alert,
            now: Action::Allow,
        };
    }
    let now = if level >= 3 {
        if now_us < t.throttle_next_us {
            let retry_after = ((t.throttle_next_us - now_us) as u64).div_ceil(1_000_000);
            Action::Throttle { retry_after }
        } else {
            t.throttle_next_us = now_us + throttle_s as i64 * 1_000_000;
            Action::Allow
        }
    } else if level == 2 {
        let since = *t.step_up_since_us.get_or_insert(now_us);
        if s.factor_at_us < since {
            Action::StepUp
        } else {
            Action::Allow
        }
    } else {
        Action::Allow
    };
    Step { alert, now }
}

/// The alert of an escalation, with its evidence; patient ids only as pseudonyms.
#[allow(clippy::too_many_arguments)]
pub fn alert(
    d: &Detector,
    s: &Subject,
    seen: &Seen,
    t: &Track,
    score: u8,
    signals: &[Signal],
    action: ActionKind,
    now_us: i64,
) -> Alert {
    let weight = |sig: &Signal| d.tuning.load().cfg.weight(s.portal, sig.id) * sig.score;
    let mut sorted: Vec<&Signal> = signals.iter().collect();
    sorted.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
    let top = sorted.first();
    let honeytoken = top.is_some_and(|t| t.id == "honeytoken");
    let window_h = match top.map(|t| t.id) {
        Some("patients_day") => 24,
        Some("patients_long") => 8,
        _ => 0,
    };
    let severity = match (honeytoken, action) {
        (true, _) | (_, ActionKind::Suspend) => Severity::Critical,
        (_, ActionKind::Throttle) => Severity::High,
        _ => Severity::Medium,
    };
    let window = if window_h > 0 {
        window_h * 3600
    } else {
        15 * 60
    } * 1_000_000i64;
    let (rule_id, rule_name) =
        top.map_or(("VIGIE-EXF-000", "Combined risk"), |t| (t.rule_id, t.name));
    // The pace the console draws the timeline against (the 15-minute exposure signal's).
    let baseline = d.baseline(t, s.groups);
    let pace = crate::alerts::Pace {
        expected: baseline / 4.0,
        threshold: super::signals::exposure_thresholds(&d.tuning.load().cfg, baseline, false).0,
    };
    Alert {
        id: Alert::new_id(),
        at_us: now_us,
        rule_id: rule_id.into(),
        rule_name: rule_name.into(),
        severity,
        risk_score: score,
        portal: s.portal.into(),
        user: s.user.into(),
        groups: s.groups.to_vec(),
        privileged: s.privileged,
        session_hash: s.session.fingerprint(),
        source_ip: Some(s.ip),
        user_agent: s.user_agent.chars().take(256).collect(),
        method: seen.method.into(),
        url_path: seen.path.into(),
        status: seen.status,
        window_start_us: now_us - window,
        window_end_us: now_us,
        evidence: sorted
            .iter()
            .map(|sig| Evidence {
                signal: sig.id.into(),
                observed: sig.observed,
                baseline: sig.baseline,
                threshold: sig.threshold,
                detail: format!("{} (score {:.0})", sig.name, sig.score),
            })
            .collect(),
        distinct_patients: t.exposed_long(now_us),
        patient_pseudonyms: t
            .recent_patients
            .values()
            .map(super::pseudonym::label)
            .collect(),
        request_ids: t
            .recent_requests
            .values()
            .map(|r| format!("{r:016x}"))
            .collect(),
        techniques: vec!["T1078", "T1213"],
        action: action.as_str().into(),
        dedup_key: format!(
            "{}:{}:{}:{}",
            s.portal,
            s.user,
            rule_id,
            now_us / 3_600_000_000
        ),
        context: Some(std::sync::Arc::new(crate::alerts::Context {
            pace: Some(pace),
            ..Default::default()
        })),
    }
}
