//! One identity's (or one source's) recent activity, in bounded memory: three 5-minute
//! buckets (the short window, 15 minutes), eight hourly buckets (the long window, a shift)
//! and three 8-hour buckets (the day, against crawls slow enough to pass within a shift),
//! plus the few sequences the signals follow. Under 5 KB at most; see the bench.

use super::sketch::{union_count, Distinct};

pub use super::windows::{Counts, DAY_SLOT_US, LONG_SLOT_US, SHORT_SLOT_US, WEEK_SLOT_US};
const GAPS: usize = 16;
const NETWORKS: usize = 8;

#[derive(Debug, Default, Clone)]
pub struct Bucket {
    slot: i64,
    pub patients: Distinct,
    /// Records exposed without an identifier we could read: listing rows, export rows.
    pub rows: u64,
    pub denied: u32,
    pub exports: u32,
    /// Bytes of answers sent.
    pub bytes: u64,
}

/// What one request contributed, as the detector sees it.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub at_us: i64,
    /// The patient's pseudonym, and the identifier as a number when it is one.
    pub patient: Option<(u64, Option<i64>)>,
    /// The request showed the session's current patient.
    pub current: bool,
    pub page: Option<crate::detect::reading::Page>,
    /// Listing rows that are full records (counted as exposed).
    pub record_rows: u64,
    pub export: bool,
    pub asset: bool,
    pub denied: bool,
    /// Bytes of the answer (known once it was sent).
    pub bytes: u64,
    /// The source network, hashed.
    pub network: u64,
}

#[derive(Debug, Default, Clone)]
pub struct Track {
    pub last_us: i64,
    short: Window<3>,
    long: Window<8>,
    day: Window<3>,
    /// Patients shown by listings (names, not full records): 15 minutes and 24 hours.
    listed_short: Window<3>,
    listed_day: Window<3>,
    /// Seven days, a bucket a day: the week's budget, and the identity's own normal day.
    /// In memory only: a restart starts the week afresh (the durable store will keep a
    /// daily summary).
    week: Window<7>,
    listed_week: Window<7>,
    /// Enumeration: last numeric id, last step, how many accesses kept that step.
    last_id: Option<i64>,
    last_step: i64,
    pub id_run: u32,
    /// Paging crawl: the next offset if the walk goes on, and how many pages followed.
    next_offset: Option<u64>,
    pub crawl_run: u32,
    /// Gaps between page requests (ms), for machine-like timing.
    gaps: [u32; GAPS],
    gap_count: usize,
    last_page_us: i64,
    pub pages: u32,
    pub assets: u32,
    networks: [u64; NETWORKS],
    pub new_network_until_us: i64,
    pub current_patient: Option<(u64, Option<i64>)>,
    /// Own baseline: an average of distinct patients per active hour, and how many hours.
    pub baseline: f64,
    pub baseline_hours: u32,
    baseline_slot: i64,
    /// The detector's bookkeeping of actions (see `super::Detector`).
    pub alerted_band: u8,
    pub step_up_since_us: Option<i64>,
    pub step_up_refusals: u32,
    pub throttle_next_us: i64,
    /// Records (and listing rows) begun in answers still streaming: reserved against the
    /// allowance until each answer is counted.
    pub inflight: u64,
    pub inflight_listed: u64,
    /// A source-evidence alert was raised for this identity; the next not before this.
    pub source_alerted_until_us: i64,
    /// The last few patients (pseudonyms) and request ids, for an alert's evidence.
    pub recent_patients: Recent,
    pub recent_requests: Recent,
    /// The same identity's counts across replicas (Redis), when shared.
    pub shared: Option<Counts>,
    /// The source track of the identity's last request (a release forgets it too).
    pub last_source: Option<u64>,
}

/// The last eight values seen.
#[derive(Debug, Default, Clone)]
pub struct Recent {
    items: [u64; 8],
    next: usize,
}

impl Recent {
    pub fn push(&mut self, v: u64) {
        if !self.items.contains(&v) {
            self.items[self.next % 8] = v;
            self.next += 1;
        }
    }
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.items.iter().copied().filter(|v| *v != 0)
    }
}

/// N time buckets, and the number of distinct patients over the live ones: kept up to date
/// as patients arrive while every bucket is exact, recomputed when a slot rolls or a bucket
/// became a sketch (the hot path measured in `benches/detect.rs` needs it).
#[derive(Debug, Clone)]
struct Window<const N: usize> {
    buckets: [Bucket; N],
    /// (current slot, distinct patients) while valid.
    distinct: std::cell::Cell<Option<(i64, u64)>>,
}

impl<const N: usize> Default for Window<N> {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| Bucket::default()),
            distinct: std::cell::Cell::new(None),
        }
    }
}

impl<const N: usize> Window<N> {
    /// The bucket of `slot`, emptied first if it held an older slot.
    fn at(&mut self, slot: i64) -> &mut Bucket {
        let i = slot.rem_euclid(N as i64) as usize;
        if self.buckets[i].slot != slot {
            self.buckets[i] = Bucket {
                slot,
                ..Bucket::default()
            };
            self.distinct.set(None);
        }
        &mut self.buckets[i]
    }

    /// Adds one patient to the bucket of `slot`.
    fn add_patient(&mut self, slot: i64, h: u64) {
        let i = slot.rem_euclid(N as i64) as usize;
        if !self.at(slot).patients.insert(h) {
            return;
        }
        let others_know = |w: &Self| {
            w.live(slot)
                .filter(|b| b.slot != slot)
                .try_fold(false, |seen, b| match &b.patients {
                    Distinct::Sketch(_) => None,
                    p => Some(seen || p.contains_exactly(h)),
                })
        };
        match (self.distinct.get(), &self.buckets[i].patients) {
            (Some((s, n)), Distinct::Exact(_)) if s == slot => match others_know(self) {
                Some(true) => {}
                Some(false) => self.distinct.set(Some((s, n + 1))),
                None => self.distinct.set(None),
            },
            _ => self.distinct.set(None),
        }
    }

    fn live(&self, slot: i64) -> impl Iterator<Item = &Bucket> + Clone {
        self.buckets
            .iter()
            .filter(move |b| b.slot > slot - N as i64 && b.slot <= slot && b.slot != 0)
    }

    /// Distinct patients plus record rows over the live buckets.
    fn exposed(&self, slot: i64) -> u64 {
        let rows: u64 = self.live(slot).map(|b| b.rows).sum();
        let distinct = match self.distinct.get() {
            Some((s, n)) if s == slot => n,
            _ => {
                let n = union_count(self.live(slot).map(|b| &b.patients));
                self.distinct.set(Some((slot, n)));
                n
            }
        };
        distinct + rows
    }
}

/// A closed hour of activity, for the baselines.
pub struct ClosedHour {
    pub patients: u64,
}

impl Track {
    /// Folds `e` in; returns the hour that closed, when this event starts a new one.
    pub fn update(&mut self, e: &Event) -> Option<ClosedHour> {
        let closed = self.roll_baseline(e.at_us);
        let (s, l) = (e.at_us / SHORT_SLOT_US, e.at_us / LONG_SLOT_US);
        let d = e.at_us / DAY_SLOT_US;
        let patient = e.patient.or(if e.current {
            self.current_patient
        } else {
            None
        });
        if e.patient.is_some() {
            self.current_patient = e.patient;
        }
        if let Some((h, _)) = patient {
            self.recent_patients.push(h);
        }
        // Counters the same way an answer adds them (rows of a record listing are known now).
        self.add_outcome(e);
        if let (Some((h, _)), false) = (patient, e.denied) {
            self.short.add_patient(s, h);
            self.long.add_patient(l, h);
            self.day.add_patient(d, h);
            self.week.add_patient(e.at_us / WEEK_SLOT_US, h);
        }
        if let Some((_, Some(n))) = e.patient.filter(|_| !e.current) {
            let step = self.last_id.map_or(0, |last| n - last);
            if step != 0 && step.abs() <= 1000 && step == self.last_step {
                self.id_run += 1;
            } else if step != 0 && step.abs() <= 1000 {
                self.id_run = 1;
            } else if step != 0 {
                self.id_run = 0;
            }
            self.last_step = step;
            self.last_id = Some(n);
        }
        if let Some(p) = e.page {
            self.crawl_run = match self.next_offset {
                Some(next) if p.offset == next && p.offset > 0 => self.crawl_run + 1,
                _ if p.offset == 0 => 0,
                _ => self.crawl_run.saturating_sub(1),
            };
            self.next_offset = Some(p.offset + p.size as u64);
        }
        // Timing counts the requests that read patients (a record, the current patient, a
        // listing page): menus, searches' forms and the portal's chrome say nothing.
        let reads_patients = patient.is_some() || e.current || e.page.is_some();
        if e.asset {
            self.assets += 1;
        } else if reads_patients {
            self.pages += 1;
            if self.last_page_us > 0 {
                let gap = ((e.at_us - self.last_page_us) / 1000).clamp(0, u32::MAX as i64) as u32;
                self.gaps[self.gap_count % GAPS] = gap;
                self.gap_count += 1;
            }
            self.last_page_us = e.at_us;
        }
        self.last_us = e.at_us;
        closed
    }

    /// Adds what only the response told (refusal, export, CSV rows) to the current buckets.
    pub fn add_outcome(&mut self, e: &Event) {
        let (s, l) = (e.at_us / SHORT_SLOT_US, e.at_us / LONG_SLOT_US);
        let d = e.at_us / DAY_SLOT_US;
        let w = e.at_us / WEEK_SLOT_US;
        for b in [
            self.short.at(s),
            self.long.at(l),
            self.day.at(d),
            self.week.at(w),
        ] {
            b.denied += e.denied as u32;
            b.exports += e.export as u32;
            b.rows += e.record_rows;
            b.bytes += e.bytes;
        }
        self.last_us = self.last_us.max(e.at_us);
    }

    /// Adds the patients an answer showed (pseudonyms) to the current buckets.
    pub fn add_patients(&mut self, at_us: i64, patients: &[u64]) {
        let (s, l) = (at_us / SHORT_SLOT_US, at_us / LONG_SLOT_US);
        let d = at_us / DAY_SLOT_US;
        for &h in patients {
            self.recent_patients.push(h);
            self.short.add_patient(s, h);
            self.long.add_patient(l, h);
            self.day.add_patient(d, h);
            self.week.add_patient(at_us / WEEK_SLOT_US, h);
        }
        self.last_us = self.last_us.max(at_us);
    }

    /// Adds the patients a listing showed (pseudonyms).
    pub fn add_listed(&mut self, at_us: i64, patients: &[u64]) {
        let (s, d) = (at_us / SHORT_SLOT_US, at_us / DAY_SLOT_US);
        for &h in patients {
            self.listed_short.add_patient(s, h);
            self.listed_day.add_patient(d, h);
            self.listed_week.add_patient(at_us / WEEK_SLOT_US, h);
        }
        self.last_us = self.last_us.max(at_us);
    }

    /// Distinct patients listed over the last 15 minutes and the last 24 hours.
    pub fn listed(&self, now_us: i64) -> (u64, u64) {
        (
            self.listed_short.exposed(now_us / SHORT_SLOT_US),
            self.listed_day.exposed(now_us / DAY_SLOT_US),
        )
    }

    /// Distinct patients plus record rows over the last seven days.
    pub fn exposed_week(&self, now_us: i64) -> u64 {
        self.week.exposed(now_us / WEEK_SLOT_US)
    }

    /// The identity's own normal day, from the finished days of the week: (records, listed),
    /// the mean of the days it was active; `None` before a first finished day.
    pub fn own_day(&self, now_us: i64) -> Option<(f64, f64)> {
        let today = now_us / WEEK_SLOT_US;
        let mean = |w: &Window<7>| {
            let days: Vec<u64> = w
                .live(today)
                .filter(|b| b.slot != today)
                .map(|b| union_count([&b.patients]) + b.rows)
                .filter(|n| *n > 0)
                .collect();
            (!days.is_empty()).then(|| days.iter().sum::<u64>() as f64 / days.len() as f64)
        };
        let records = mean(&self.week)?;
        Some((records, mean(&self.listed_week).unwrap_or(0.0)))
    }

    /// Learns the source network; true when it is new for an identity that had some already.
    pub fn see_network(&mut self, net: u64, at_us: i64, settled: bool) -> bool {
        if self.networks.contains(&net) {
            return false;
        }
        let known = self.networks.iter().filter(|n| **n != 0).count();
        self.networks[known.min(NETWORKS - 1)] = net;
        if known > 0 && settled {
            self.new_network_until_us = at_us + LONG_SLOT_US;
            return true;
        }
        false
    }

    fn roll_baseline(&mut self, at_us: i64) -> Option<ClosedHour> {
        let slot = at_us / LONG_SLOT_US;
        if self.baseline_slot == 0 {
            self.baseline_slot = slot;
            return None;
        }
        if slot == self.baseline_slot {
            return None;
        }
        let prev = self.baseline_slot;
        self.baseline_slot = slot;
        let patients = self
            .long
            .buckets
            .iter()
            .find(|b| b.slot == prev)
            .map_or(0, |b| union_count([&b.patients]) + b.rows);
        if patients == 0 {
            return None;
        }
        self.baseline_hours += 1;
        let alpha = 1.0 / (self.baseline_hours.min(20) as f64);
        self.baseline += alpha * (patients as f64 - self.baseline);
        Some(ClosedHour { patients })
    }

    /// Distinct patients plus record rows over the last 15 minutes.
    /// A count shared across replicas, while it is recent enough to trust.
    fn shared_count(&self, now_us: i64, fresh_us: i64, pick: fn(&Counts) -> u64) -> u64 {
        self.shared
            .as_ref()
            .filter(|c| now_us - c.at_us < fresh_us)
            .map_or(0, pick)
    }

    pub fn exposed_short(&self, now_us: i64) -> u64 {
        let local = self.short.exposed(now_us / SHORT_SLOT_US);
        local.max(self.shared_count(now_us, SHORT_SLOT_US, |c| c.short))
    }

    /// Distinct patients plus record rows over the last 24 hours (three 8-hour slots).
    pub fn exposed_day(&self, now_us: i64) -> u64 {
        let local = self.day.exposed(now_us / DAY_SLOT_US);
        local.max(self.shared_count(now_us, LONG_SLOT_US, |c| c.day))
    }

    /// Distinct patients plus record rows over the last 8 hours.
    pub fn exposed_long(&self, now_us: i64) -> u64 {
        let local = self.long.exposed(now_us / LONG_SLOT_US);
        local.max(self.shared_count(now_us, SHORT_SLOT_US, |c| c.long))
    }

    pub fn bytes_short(&self, now_us: i64) -> u64 {
        self.short
            .live(now_us / SHORT_SLOT_US)
            .map(|b| b.bytes)
            .sum()
    }

    pub fn denied_short(&self, now_us: i64) -> u32 {
        self.short
            .live(now_us / SHORT_SLOT_US)
            .map(|b| b.denied)
            .sum()
    }

    /// Exports in the current hour.
    pub fn exports_hour(&self, now_us: i64) -> u32 {
        let slot = now_us / LONG_SLOT_US;
        self.long
            .buckets
            .iter()
            .filter(|b| b.slot == slot)
            .map(|b| b.exports)
            .sum()
    }

    /// Pages per minute over the last gaps (at least eight known), as of `now_us`: a pause
    /// since the last page counts too, so the rate falls when the identity stops.
    pub fn page_rate(&self, now_us: i64) -> f64 {
        let n = self.gap_count.min(GAPS);
        if n < 8 {
            return 0.0;
        }
        // Slots not yet filled hold zero, so the sum is over the n known gaps.
        let recent: u64 = self.gaps.iter().map(|g| *g as u64).sum();
        let idle = ((now_us - self.last_page_us) / 1000).max(0) as u64;
        n as f64 * 60_000.0 / (recent + idle).max(1) as f64
    }

    /// Mean gap (ms) and coefficient of variation of the last page gaps, once enough are known.
    pub fn timing(&self) -> Option<(f64, f64)> {
        if self.gap_count < GAPS {
            return None;
        }
        let mean = self.gaps.iter().map(|g| *g as f64).sum::<f64>() / GAPS as f64;
        let var = self
            .gaps
            .iter()
            .map(|g| (*g as f64 - mean).powi(2))
            .sum::<f64>()
            / GAPS as f64;
        Some((mean, if mean > 0.0 { var.sqrt() / mean } else { 0.0 }))
    }

    /// Approximate bytes held, heap included.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .short
                .buckets
                .iter()
                .chain(self.long.buckets.iter())
                .chain(self.day.buckets.iter())
                .chain(self.listed_short.buckets.iter())
                .chain(self.listed_day.buckets.iter())
                .chain(self.week.buckets.iter())
                .chain(self.listed_week.buckets.iter())
                .map(|b| b.patients.heap_bytes())
                .sum::<usize>()
    }
}
