//! What an identity may still see before its suspension band: the allowances answers are
//! cut at (records, listings), the in-flight reservations of answers streaming side by side,
//! and the identity's normal day the budgets start from.

use super::signals;
use super::track::Track;
use super::{settings, Detector, Subject};

impl Detector {
    /// Rows an export may still stream before this identity reaches the suspension band;
    /// `None`: no limit (break-glass).
    pub fn export_allowance(&self, s: &Subject, now_us: i64) -> Option<u64> {
        if s.break_glass || !self.tuning.load().cfg.watches(s.portal) {
            return None;
        }
        self.with_track(self.user_key(s), |t| {
            Some(self.allowance_in(t, s, now_us, false))
        })
    }

    /// Listing rows an answer may still show before this identity reaches the suspension
    /// band of the listing thresholds; `None`: no limit (break-glass).
    pub fn listing_allowance(&self, s: &Subject, now_us: i64) -> Option<u64> {
        if s.break_glass || !self.tuning.load().cfg.watches(s.portal) {
            return None;
        }
        self.with_track(self.user_key(s), |t| {
            Some(self.allowance_in(t, s, now_us, true))
        })
    }

    /// One chunk of an answer carrying records, read under the identity's lock: `read` gets
    /// what may still leave (the allowance less the records other answers of the identity
    /// are streaming now) and returns its result and the records it saw begin, which stay
    /// reserved until [`Detector::finish`] counts the answer. Answers streamed side by side
    /// share one allowance, however long each takes to end.
    pub fn stream<R>(
        &self,
        s: &Subject,
        now_us: i64,
        listing: bool,
        read: impl FnOnce(Option<u64>) -> (R, u64),
    ) -> R {
        if s.break_glass || !self.tuning.load().cfg.watches(s.portal) {
            return read(None).0;
        }
        self.with_track(self.user_key(s), |t| {
            let left = self.allowance_in(t, s, now_us, listing);
            let reserved = if listing {
                t.inflight_listed
            } else {
                t.inflight
            };
            let (out, started) = read(Some(left.saturating_sub(reserved)));
            match listing {
                true => t.inflight_listed += started,
                false => t.inflight += started,
            }
            out
        })
    }

    /// What may still leave before the suspension band, with the track locked. Counts past
    /// a sketch's exact range are leaned up by two standard errors (13%): an estimate that
    /// came out low must not let more through.
    fn allowance_in(&self, t: &Track, s: &Subject, now_us: i64, listing: bool) -> u64 {
        let tuning = self.tuning.load();
        let band = tuning.cfg.bands.suspend as f64;
        let seen = |n: u64| if n > 32 { n as f64 * 1.13 } else { n as f64 };
        let normal = self.normal(t, s.groups, now_us);
        let left = if listing {
            let ts = signals::listed_threshold(&tuning.cfg, normal, false);
            let [_, _, (ln, la)] = signals::budgets(&tuning.cfg, normal, false);
            let (short, day) = t.listed(now_us);
            let short = signals::ramp_inverse(band, ts) - seen(short);
            let day = signals::budget_inverse(band, ln, la) - seen(day);
            short.min(day)
        } else {
            let baseline = self.baseline(t, s.groups);
            let (ts, tl) = signals::exposure_thresholds(&tuning.cfg, baseline, false);
            let [(dn, da), (wn, wa), _] = signals::budgets(&tuning.cfg, normal, false);
            let short = signals::ramp_inverse(band, ts) - seen(t.exposed_short(now_us));
            let long = signals::ramp_inverse(band, tl) - seen(t.exposed_long(now_us));
            let day = signals::budget_inverse(band, dn, da) - seen(t.exposed_day(now_us));
            let week = signals::budget_inverse(band, wn, wa) - seen(t.exposed_week(now_us));
            short.min(long).min(day).min(week)
        };
        left.max(0.0) as u64
    }

    /// The identity's normal day: the largest of its roles' (or the default), raised by its
    /// own finished days up to twice that (a busy ward is not an attack; a slow ramp-up
    /// cannot teach the detector an unbounded normal).
    pub(super) fn normal(&self, t: &Track, groups: &[String], now_us: i64) -> settings::NormalDay {
        let b = &self.tuning.load().cfg.budgets;
        let role = groups
            .iter()
            .filter_map(|g| b.roles.get(g))
            .fold(None, |m: Option<settings::NormalDay>, v| {
                Some(m.map_or(*v, |m| settings::NormalDay {
                    records: m.records.max(v.records),
                    listed: m.listed.max(v.listed),
                }))
            })
            .unwrap_or(b.default);
        match t.own_day(now_us) {
            Some((records, listed)) => settings::NormalDay {
                records: role.records.max(records.min(2.0 * role.records)),
                listed: role.listed.max(listed.min(2.0 * role.listed)),
            },
            None => role,
        }
    }
}
