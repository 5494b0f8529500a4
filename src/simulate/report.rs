//! The simulator's findings: one row per attack scenario, one line for the clinicians.

use serde::Serialize;

use super::attacks::Attack;
use super::clinicians::Clinician;
use super::{Options, SECOND};

#[derive(Debug, Serialize)]
pub struct Scenario {
    pub name: String,
    pub requests: u64,
    /// Simulated seconds from the scenario's start to its first alert.
    pub first_alert_after_s: Option<i64>,
    pub patients_before_first_alert: Option<usize>,
    pub suspended_after_s: Option<i64>,
    pub patients_before_suspension: Option<usize>,
    pub patients_total: usize,
    pub step_ups_refused: u64,
    /// What this scenario must not get past, and whether it did not.
    pub target: String,
    pub target_met: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub days: u32,
    pub seed: u64,
    pub scenarios: Vec<Scenario>,
    pub clinicians: usize,
    pub clinician_hours: f64,
    pub clinician_requests: u64,
    pub false_alerts: u64,
    pub false_alerts_per_1000_hours: f64,
    /// Clinicians who met a refusal (held, throttled, step-up) at least once.
    pub clinicians_refused: usize,
    pub clinicians_held: usize,
    pub wall_seconds: f64,
}

impl Report {
    pub fn new(
        opts: &Options,
        staff: &[Clinician],
        attacks: &[Attack],
        wall: std::time::Duration,
    ) -> Self {
        let hours: f64 = staff.iter().map(|c| c.hours).sum();
        let false_alerts: u64 = staff.iter().map(|c| c.alerts).sum();
        Self {
            days: opts.days,
            seed: opts.seed,
            scenarios: attacks
                .iter()
                .map(|a| {
                    let (target, met) = target(a);
                    Scenario {
                        target,
                        target_met: met,
                        name: a.name.to_string(),
                        requests: a.requests,
                        first_alert_after_s: a.first_alert.map(|(t, _)| t / SECOND),
                        patients_before_first_alert: a.first_alert.map(|(_, n)| n),
                        suspended_after_s: a.suspended.map(|(t, _)| t / SECOND),
                        patients_before_suspension: a.suspended.map(|(_, n)| n),
                        patients_total: a.exposed.len(),
                        step_ups_refused: a.step_ups_refused,
                    }
                })
                .collect(),
            clinicians: staff.len(),
            clinician_hours: hours,
            clinician_requests: staff.iter().map(|c| c.requests).sum(),
            false_alerts,
            false_alerts_per_1000_hours: if hours > 0.0 {
                false_alerts as f64 * 1000.0 / hours
            } else {
                0.0
            },
            clinicians_refused: staff.iter().filter(|c| c.refused > 0).count(),
            clinicians_held: staff.iter().filter(|c| c.held).count(),
            wall_seconds: wall.as_secs_f64(),
        }
    }

    /// Every scenario met its target, and false alerts are within `per_1000h`.
    pub fn meets(&self, per_1000h: f64) -> bool {
        self.scenarios.iter().all(|s| s.target_met) && self.false_alerts_per_1000_hours <= per_1000h
    }

    pub fn table(&self) -> String {
        let dur = |s: Option<i64>| {
            s.map_or("never".to_string(), |s| {
                if s < 120 {
                    format!("{s} s")
                } else {
                    format!("{} min", s / 60)
                }
            })
        };
        let n = |v: Option<usize>| v.map_or("-".to_string(), |v| v.to_string());
        let mut out = String::from("| scenario | requests | first alert after | patients by then | suspended after | patients by then | patients in all | target | met |\n|---|---:|---:|---:|---:|---:|---:|---|---|\n");
        for s in &self.scenarios {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                s.name,
                s.requests,
                dur(s.first_alert_after_s),
                n(s.patients_before_first_alert),
                dur(s.suspended_after_s),
                n(s.patients_before_suspension),
                s.patients_total,
                s.target,
                if s.target_met { "yes" } else { "NO" }
            ));
        }
        out.push_str(&format!(
            "\nClinicians: {} over {} simulated days, {:.0} clinician-hours, {} requests: {} false alerts ({:.2} per 1000 clinician-hours); {} ever refused a page, {} held.\nSimulated in {:.0} s of wall-clock time (seed {}).\n",
            self.clinicians, self.days, self.clinician_hours, self.clinician_requests, self.false_alerts,
            self.false_alerts_per_1000_hours, self.clinicians_refused, self.clinicians_held, self.wall_seconds, self.seed
        ));
        out
    }
}

/// A scenario's target: suspended before 200 patients; for the docs-aware attacker, who
/// stays under every per-window alert by design, never more than 200 patients beyond a
/// nurse's normal day in any 24 hours nor 500 beyond a normal week in any 7 days.
fn target(a: &Attack) -> (String, bool) {
    if a.style != super::attacks::Style::DocsAware {
        let met = a.suspended.is_some_and(|(_, n)| n < 200);
        return ("suspended before 200 patients".into(), met);
    }
    let b = crate::detect::settings::Budgets::default();
    let day = b.roles["nurse"].records;
    let week = day * b.week_days;
    let (in_day, in_week) = (
        a.most_within(24 * 3600 * SECOND),
        a.most_within(7 * 24 * 3600 * SECOND),
    );
    (
        format!(
            "≤ {:.0} in 24 h ({in_day}), ≤ {:.0} in 7 days ({in_week})",
            day + 200.0,
            week + 500.0
        ),
        (in_day as f64) < day + 200.0 && (in_week as f64) < week + 500.0,
    )
}
