//! Attack scenarios: someone holding a signed-in session (a stolen password and a passed or
//! absent second factor, a hijacked session, an insider) pulls patient records out through
//! the portal's normal functions, at the speed and in the style each scenario says. They
//! wait out throttling, cannot answer a step-up, and stop when held.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::Rng;

use super::client::{Client, Reply, BROWSER};
use super::{HOUR, MINUTE, SECOND};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Record after record by sequential id, one a second.
    FastEnumeration,
    /// Random records, one every 40-80 s, for twelve hours: under any per-minute budget.
    SlowCrawl,
    /// Random records at a clinician's pace, one every 3-5 minutes, for a day and a night.
    ClinicianPaceCrawl,
    /// The portal's CSV export of every patient, once.
    CsvExport,
    /// The JSON listing with a page size of 5000.
    HugePage,
    /// The JSON listing walked page after page at the normal size.
    PagingCrawl,
    /// One account, four sessions from four workstations, random records.
    ParallelSessions,
    /// Five accounts from one workstation, random records, taking turns.
    AccountsOneSource,
    /// A privileged account at 02:00: a few records, then the CSV export.
    OffHoursExport,
    /// Someone who read the published thresholds: a browser that loads the stylesheet,
    /// human pauses with jitter, random records, working hours only, and each day as many
    /// patients as stay under every published alert point, for a week.
    DocsAware,
}

/// The docs-aware attacker's daily quota on a nurse's account, from the published defaults:
/// under the shift threshold's alert point (a day's work fits in one shift), under the day
/// budget's and under a seventh of the week budget's (alerts start at 55% of an allowance),
/// with a margin of a tenth.
pub fn docs_aware_quota() -> usize {
    let cfg = crate::detect::DetectionConfig::default();
    let b = &cfg.budgets;
    let nurse = b.roles["nurse"].records;
    let prior = cfg.role_priors["nurse"];
    let t = &cfg.thresholds;
    let shift = (t.long_factor * prior).clamp(t.long_min, t.long_max) * (0.5 + 50.0 / 120.0);
    let day = nurse + 0.55 * b.day_allowance;
    let week = (nurse * b.week_days + 0.55 * b.week_allowance) / 7.0;
    (0.9 * shift.min(day).min(week)) as usize
}

pub struct Attack {
    pub name: &'static str,
    pub style: Style,
    sessions: Vec<(Client, String, String)>,
    turn: usize,
    pub next: i64,
    until: i64,
    cursor: u32,
    patients: u32,
    started: bool,
    pub start: i64,
    pub requests: u64,
    pub exposed: HashSet<u32>,
    pub first_alert: Option<(i64, usize)>,
    /// Patients exposed after each request: (time, count).
    timeline: Vec<(i64, usize)>,
    pub suspended: Option<(i64, usize)>,
    pub step_ups_refused: u64,
    pub done: bool,
}

impl Attack {
    /// `accounts`: (user, password, source address) of each session the scenario uses.
    pub fn new(
        name: &'static str,
        style: Style,
        port: u16,
        accounts: Vec<(String, String, String)>,
        start: i64,
        patients: u32,
        rng: &mut StdRng,
    ) -> Self {
        let sessions = accounts
            .into_iter()
            .map(|(u, p, ip)| (Client::new(port, &ip, BROWSER), u, p))
            .collect();
        let duration = match style {
            Style::SlowCrawl => 12 * HOUR,
            Style::ClinicianPaceCrawl => 24 * HOUR,
            Style::DocsAware => 7 * 24 * HOUR,
            _ => 4 * HOUR,
        };
        Self {
            name,
            style,
            sessions,
            turn: 0,
            next: start,
            until: start + duration,
            cursor: rng.random_range(1..patients / 2),
            patients,
            started: false,
            start,
            requests: 0,
            exposed: HashSet::new(),
            first_alert: None,
            timeline: Vec::new(),
            suspended: None,
            step_ups_refused: 0,
            done: false,
        }
    }

    /// An alert about one of this scenario's accounts, raised at `at`: the patients exposed
    /// by then include the answer to the request that raised it.
    pub fn alerted(&mut self, at: i64) {
        if self.first_alert.is_some_and(|(t, _)| t <= at - self.start) {
            return;
        }
        let exposed = self
            .timeline
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map_or(0, |(_, n)| *n);
        self.first_alert = Some((at - self.start, exposed));
    }

    pub fn has_account(&self, user: &str) -> bool {
        self.sessions.iter().any(|(_, u, _)| u == user)
    }

    pub fn step(&mut self, now: i64, rng: &mut StdRng) {
        if !self.started {
            self.started = true;
            for (client, user, password) in &mut self.sessions {
                self.requests += 2;
                assert!(
                    client.login(user, password),
                    "attack account {user} signs in"
                );
            }
            self.next = now + SECOND;
            return;
        }
        if now >= self.until {
            self.done = true;
            return;
        }
        let path = self.choose(rng);
        let turn = self.turn;
        self.turn = (self.turn + 1) % self.sessions.len();
        let reply = self.sessions[turn].0.get(&path);
        self.requests += 1;
        let mut wait = self.pause(rng);
        if reply.header("x-vigie-held").is_some() {
            self.suspended = Some((now - self.start, self.exposed.len()));
            self.done = true;
            return;
        }
        match reply.status {
            200 => self.expose(&path, &reply),
            429 => {
                let after: i64 = reply
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10);
                wait = wait.max(after * SECOND);
                self.cursor = self.cursor.saturating_sub(1); // try the same record again
            }
            303 => self.step_ups_refused += 1,
            _ => {}
        }
        self.timeline.push((now, self.exposed.len()));
        self.next = now + wait;
        // Back the next morning: the session idled out overnight, sign in again.
        if self.style == Style::DocsAware && wait > HOUR {
            self.started = false;
        }
    }

    fn pause(&self, rng: &mut StdRng) -> i64 {
        match self.style {
            Style::FastEnumeration => SECOND,
            Style::SlowCrawl => rng.random_range(40..80) * SECOND,
            Style::ClinicianPaceCrawl => rng.random_range(180..300) * SECOND,
            Style::CsvExport | Style::OffHoursExport => rng.random_range(20..60) * SECOND,
            Style::HugePage | Style::PagingCrawl => 3 * SECOND,
            Style::ParallelSessions => 2 * SECOND,
            Style::AccountsOneSource => 3 * SECOND,
            Style::DocsAware => self.docs_aware_pause(rng),
        }
    }

    /// Within 08:00-17:00 and today's quota, a person's pace; otherwise the next morning.
    fn docs_aware_pause(&self, rng: &mut StdRng) -> i64 {
        let now = self.next;
        let day = now.div_euclid(24 * HOUR);
        let hour = now.rem_euclid(24 * HOUR) / HOUR;
        let today = self
            .timeline
            .iter()
            .filter(|(t, _)| t.div_euclid(24 * HOUR) == day)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
            .saturating_sub(
                self.timeline
                    .iter()
                    .rfind(|(t, _)| t.div_euclid(24 * HOUR) < day)
                    .map_or(0, |(_, n)| *n),
            );
        if hour >= 17 || today >= docs_aware_quota() {
            (day + 1) * 24 * HOUR + 8 * HOUR + rng.random_range(0..1800) * SECOND - now
        } else {
            rng.random_range(90..240) * SECOND
        }
    }

    /// The most patients exposed in any span of `span` (from the timeline).
    pub fn most_within(&self, span: i64) -> usize {
        let mut best = 0;
        for (i, (t, n)) in self.timeline.iter().enumerate() {
            let before = self.timeline[..i]
                .iter()
                .rfind(|(u, _)| *u <= t - span)
                .map_or(0, |(_, m)| *m);
            best = best.max(n - before);
        }
        best
    }

    fn choose(&mut self, rng: &mut StdRng) -> String {
        let record =
            |id: u32| format!("/index.php?m=dPpatients&tab=vw_full_patients&patient_id={id}");
        const EXPORT: &str = "/index.php?m=dPpatients&raw=ajax_export_patients_csv";
        match self.style {
            Style::FastEnumeration => {
                self.cursor += 1;
                record(self.cursor)
            }
            Style::DocsAware if self.requests % 3 == 0 => "/style.css".into(),
            Style::SlowCrawl
            | Style::ClinicianPaceCrawl
            | Style::ParallelSessions
            | Style::AccountsOneSource
            | Style::DocsAware => record(rng.random_range(1..=self.patients)),
            Style::CsvExport => EXPORT.into(),
            Style::OffHoursExport if self.requests < 8 => {
                record(rng.random_range(1..=self.patients))
            }
            Style::OffHoursExport => EXPORT.into(),
            Style::HugePage | Style::PagingCrawl => {
                let size = if self.style == Style::HugePage {
                    5000
                } else {
                    50
                };
                let offset = (self.cursor - 1) % self.patients;
                self.cursor += size;
                format!("/api/dossierpatient/patients?offset={offset}&limit={size}")
            }
        }
    }

    /// The patients whose records this answer carried.
    fn expose(&mut self, path: &str, reply: &Reply) {
        if let Some(id) = path
            .split("patient_id=")
            .nth(1)
            .and_then(|v| v.parse().ok())
        {
            self.exposed.insert(id);
        } else if path.contains("ajax_export") {
            for line in reply.body.lines().skip(1).filter(|l| !l.starts_with('#')) {
                if let Some(id) = line.split(';').next().and_then(|v| v.parse().ok()) {
                    self.exposed.insert(id);
                }
            }
        } else if path.starts_with("/api/dossierpatient/patients?") {
            if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&reply.body) {
                for p in doc["patients"].as_array().into_iter().flatten() {
                    if let Some(id) = p["id"].as_u64() {
                        self.exposed.insert(id as u32);
                    }
                }
            }
        }
    }
}

/// When each scenario starts (offset from the attack day's midnight).
pub fn schedule() -> Vec<(&'static str, Style, i64)> {
    vec![
        ("fast enumeration", Style::FastEnumeration, 10 * HOUR),
        ("slow crawl, 12 h", Style::SlowCrawl, 8 * HOUR),
        // Starts the day before (when there is one): it needs a day and a night.
        (
            "clinician-pace crawl, 24 h",
            Style::ClinicianPaceCrawl,
            -16 * HOUR,
        ),
        ("one-shot CSV export", Style::CsvExport, 11 * HOUR),
        ("huge page size", Style::HugePage, 13 * HOUR),
        ("paging crawl", Style::PagingCrawl, 14 * HOUR),
        ("parallel sessions", Style::ParallelSessions, 15 * HOUR),
        (
            "accounts from one source",
            Style::AccountsOneSource,
            16 * HOUR + 30 * MINUTE,
        ),
        (
            "off-hours privileged export",
            Style::OffHoursExport,
            2 * HOUR,
        ),
        // From the first morning of the run (it needs days, not hours).
        ("docs-aware, a week", Style::DocsAware, -1_000 * 24 * HOUR),
    ]
}
