//! What each identity did lately, for the SOC: a bounded ring of its requests (time, method,
//! masked path, status, bytes, patients shown) for an alert's timeline, and the patient ids
//! behind the pseudonyms its answers showed, so the DPO can re-identify an alert's patients
//! with a reason. In this process' memory only, bounded: at most [`IDENTITIES`] identities,
//! [`STEPS`] requests and [`IDS`] ids each; an alert takes its copy when it is raised (the
//! ids sealed in the alert store, kept as long as the alert).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::Subject;

pub const IDENTITIES: usize = 1_000;
pub const STEPS: usize = 100;
pub const IDS: usize = 200;

pub use crate::alerts::Step;

#[derive(Default)]
struct Ring {
    steps: VecDeque<Step>,
    /// (pseudonym, the portal's id), newest last, each pseudonym once.
    ids: VecDeque<(u64, String)>,
}

/// Rings by identity: the detector's keyed hash of portal and user (no string built or hashed
/// again per request), and the order identities came in, oldest first.
#[derive(Default)]
pub struct Activity {
    rings: Mutex<(HashMap<u64, Ring>, VecDeque<u64>)>,
}

/// A patient seen within this many of the newest ids is not written again (a clinician on
/// one record); older repeats are folded when the ids are read.
const RECENT: usize = 16;

impl Activity {
    /// Remember a request of identity `key` and the patient ids it showed. On the request
    /// path: constant work per id, under one short lock.
    pub fn record(&self, key: u64, step: Step, ids: Vec<(u64, String)>) {
        let mut guard = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let (rings, order) = &mut *guard;
        if !rings.contains_key(&key) {
            if rings.len() >= IDENTITIES {
                if let Some(oldest) = order.pop_front() {
                    rings.remove(&oldest);
                }
            }
            order.push_back(key);
        }
        let ring = rings.entry(key).or_default();
        if ring.steps.len() >= STEPS {
            ring.steps.pop_front();
        }
        ring.steps.push_back(step);
        for (h, raw) in ids {
            if ring
                .ids
                .iter()
                .rev()
                .take(RECENT)
                .any(|(seen, _)| *seen == h)
            {
                continue;
            }
            if ring.ids.len() >= IDS {
                ring.ids.pop_front();
            }
            ring.ids.push_back((h, raw));
        }
    }

    /// The identity's requests from `from_us` to `to_us` (both included).
    pub fn timeline(&self, key: u64, from_us: i64, to_us: i64) -> Vec<Step> {
        let guard = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.get(&key).map_or_else(Vec::new, |r| {
            r.steps
                .iter()
                .filter(|s| s.at_us >= from_us && s.at_us <= to_us)
                .cloned()
                .collect()
        })
    }

    /// The patient ids the identity's answers showed lately, each once (newest first), with
    /// their pseudonyms' labels.
    pub fn ids(&self, key: u64) -> Vec<(String, String)> {
        let guard = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        guard.0.get(&key).map_or_else(Vec::new, |r| {
            r.ids
                .iter()
                .rev()
                .filter(|(h, _)| seen.insert(*h))
                .map(|(h, raw)| (super::pseudonym::label(*h), raw.clone()))
                .collect()
        })
    }
}

impl super::Detector {
    /// A request of `s` ended: remember it for the timeline, with the patient ids it showed
    /// (pseudonym, the portal's id).
    pub fn remember(&self, s: &Subject, mut step: Step, ids: Vec<(u64, String)>) {
        if self.tuning.load().cfg.watches(s.portal) {
            let key = self.identity_key(s.portal, s.user);
            // What the detector counted for the identity by then (never creates a track).
            let map = self.shard(key).lock().expect("detector shard");
            step.window = map.get(&key).map_or(0, |t| t.exposed_short(step.at_us));
            drop(map);
            self.activity.record(key, step, ids);
        }
    }

    fn identity_key(&self, portal: &str, user: &str) -> u64 {
        self.key_of(&[portal.as_bytes(), b"\0", user.as_bytes()])
    }

    /// The alert with its context: the identity's requests over its window (and the minute
    /// before), and the patients they showed, for the console.
    pub(super) fn with_context(&self, mut alert: crate::alerts::Alert) -> crate::alerts::Alert {
        let from = alert.window_start_us.min(alert.at_us) - 60_000_000;
        let key = self.identity_key(&alert.portal, &alert.user);
        let timeline = self.activity.timeline(key, from, alert.at_us + 1_000_000);
        let patients = self.activity.ids(key);
        // The pace was set when the alert was made, under the identity's track.
        let pace = alert.context.as_ref().and_then(|c| c.pace);
        alert.context = Some(Arc::new(crate::alerts::Context {
            timeline,
            pace,
            patients,
        }));
        alert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at_us: i64) -> Step {
        Step {
            at_us,
            method: "GET".into(),
            path: "/index.php".into(),
            status: 200,
            bytes: 10,
            patients: 1,
            window: 0,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_within_its_bounds() {
        const MARTIN: u64 = 1;
        const DURAND: u64 = 2;
        let a = Activity::default();
        for i in 0..(STEPS as i64 + 5) {
            a.record(MARTIN, step(i), vec![(i as u64 + 1, format!("{i}"))]);
        }
        let all = a.timeline(MARTIN, 0, i64::MAX);
        assert_eq!(all.len(), STEPS);
        assert_eq!(all[0].at_us, 5, "the oldest went first");
        assert_eq!(a.timeline(MARTIN, 10, 12).len(), 3);
        assert!(a.timeline(DURAND, 0, i64::MAX).is_empty());
        let ids = a.ids(MARTIN);
        assert_eq!(ids.len(), STEPS + 5);
        // The same patient again: once, and the newest.
        a.record(MARTIN, step(999), vec![(1, "0".into())]);
        let ids = a.ids(MARTIN);
        assert_eq!(ids.len(), STEPS + 5);
        assert_eq!(ids[0].1, "0");
        // A record reopened at once is not written again.
        a.record(MARTIN, step(1000), vec![(1, "0".into()), (1, "0".into())]);
        assert_eq!(a.ids(MARTIN).len(), STEPS + 5);
        for i in 0..IDENTITIES + 3 {
            a.record(100 + i as u64, step(1), vec![]);
        }
        assert!(
            a.timeline(MARTIN, 0, i64::MAX).is_empty(),
            "the oldest identity went"
        );
    }
}
