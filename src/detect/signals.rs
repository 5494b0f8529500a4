//! Signals: pure functions from an identity's [`Track`] to scored evidence, and the one way
//! they combine into a 0-100 risk score. No I/O, no clock: the caller passes `now`.

use super::settings::DetectionConfig;
use super::track::Track;

/// One signal that fired, with the evidence an analyst needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub id: &'static str,
    pub rule_id: &'static str,
    pub name: &'static str,
    /// 0-100, before weighting.
    pub score: f64,
    pub observed: f64,
    pub baseline: Option<f64>,
    pub threshold: f64,
}

/// Facts about the request and identity that are not in the track.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    pub now_us: i64,
    pub privileged: bool,
    pub off_hours: bool,
    pub scripted_agent: bool,
    pub honeytoken: bool,
    /// Patients per hour this identity is expected to see (own baseline, or role prior).
    pub baseline: f64,
    /// This track counts a source address, not a user: thresholds are wider, no baseline.
    pub source: bool,
    /// The listing page size the portal's own screens never exceed.
    pub page_normal_max: u32,
    /// A page of this size was asked for in this request.
    pub asked_page: u32,
    /// The identity's normal day (its role's, or its own once learned).
    pub normal: super::settings::NormalDay,
}

impl Default for super::settings::NormalDay {
    fn default() -> Self {
        super::settings::Budgets::default().default
    }
}

/// 0 up to half the threshold, 60 at the threshold, 90 at 1.5 times, 100 at twice.
pub fn ramp(x: f64, t: f64) -> f64 {
    if t <= 0.0 || x <= 0.5 * t {
        0.0
    } else if x <= t {
        120.0 * (x - 0.5 * t) / t
    } else if x <= 1.5 * t {
        60.0 + 60.0 * (x - t) / t
    } else {
        (90.0 + 20.0 * (x - 1.5 * t) / t).min(100.0)
    }
}

/// The smallest `x` at which [`ramp`] reaches `score` (for allowances: rows before a band).
pub fn ramp_inverse(score: f64, t: f64) -> f64 {
    match score {
        s if s <= 60.0 => t * (0.5 + s / 120.0),
        s if s <= 90.0 => t * (1.0 + (s - 60.0) / 60.0),
        s => t * (1.5 + (s - 90.0) / 20.0),
    }
}

/// The exposure thresholds (15 minutes, 8 hours) for a baseline.
pub fn exposure_thresholds(cfg: &DetectionConfig, baseline: f64, source: bool) -> (f64, f64) {
    let t = &cfg.thresholds;
    let wide = if source { cfg.source_factor } else { 1.0 };
    let short = (t.short_factor * baseline).clamp(t.short_min, t.short_max);
    let long = (t.long_factor * baseline).clamp(t.long_min, t.long_max);
    (short * wide, long * wide)
}

/// A budget's score: 0 up to the normal amount, then linear to 90 (the default suspension
/// band) at normal + allowance, 100 past it. Alerting starts at 55% of the allowance.
pub fn budget(x: f64, normal: f64, allowance: f64) -> f64 {
    let over = x - normal;
    if over <= 0.0 || allowance <= 0.0 {
        0.0
    } else {
        (90.0 * over / allowance).min(100.0)
    }
}

/// The amount at which [`budget`] reaches `score`.
pub fn budget_inverse(score: f64, normal: f64, allowance: f64) -> f64 {
    normal + allowance * score / 90.0
}

/// The day and week budgets (normal, allowance) for an identity's normal day.
pub fn budgets(
    cfg: &DetectionConfig,
    normal: super::settings::NormalDay,
    source: bool,
) -> [(f64, f64); 3] {
    let b = &cfg.budgets;
    let wide = if source { cfg.source_factor } else { 1.0 };
    [
        (normal.records * wide, b.day_allowance * wide),
        (normal.records * b.week_days * wide, b.week_allowance * wide),
        (normal.listed * wide, b.day_allowance * wide),
    ]
}

/// The 15-minute listing threshold: the configured one, raised to the role's normal day of
/// listings (an admissions clerk lists as many in a morning rush).
pub fn listed_threshold(
    cfg: &DetectionConfig,
    normal: super::settings::NormalDay,
    source: bool,
) -> f64 {
    let wide = if source { cfg.source_factor } else { 1.0 };
    cfg.thresholds.listed_short.max(normal.listed) * wide
}

pub fn evaluate(track: &Track, cx: &Context, cfg: &DetectionConfig) -> Vec<Signal> {
    let t = &cfg.thresholds;
    let now = cx.now_us;
    let wide = if cx.source { cfg.source_factor } else { 1.0 };
    let mut out = Vec::new();
    let mut push = |id, rule_id, name, score: f64, observed: f64, baseline, threshold| {
        if score > 0.0 {
            out.push(Signal {
                id,
                rule_id,
                name,
                score,
                observed,
                baseline,
                threshold,
            });
        }
    };
    if cx.honeytoken {
        push(
            "honeytoken",
            "VIGIE-EXF-001",
            "Honeytoken patient record accessed",
            100.0,
            1.0,
            None,
            1.0,
        );
    }
    let (ts, tl) = exposure_thresholds(cfg, cx.baseline, cx.source);
    let [day_budget, week_budget, listed_budget] = budgets(cfg, cx.normal, cx.source);
    let base = (!cx.source).then_some(cx.baseline);
    let short = track.exposed_short(now) as f64;
    push(
        "patients_short",
        "VIGIE-EXF-002",
        "Many distinct patients in 15 minutes",
        ramp(short, ts),
        short,
        base.map(|b| b / 4.0),
        ts,
    );
    let long = track.exposed_long(now) as f64;
    push(
        "patients_long",
        "VIGIE-EXF-003",
        "Many distinct patients over a shift",
        ramp(long, tl),
        long,
        base.map(|b| b * 8.0),
        tl,
    );
    // Cumulative budgets: however slowly, a day or a week past the normal is evidence.
    let day = track.exposed_day(now) as f64;
    let (normal, allowance) = day_budget;
    push(
        "patients_day",
        "VIGIE-EXF-015",
        "More patients in a day than the role's normal day allows",
        budget(day, normal, allowance),
        day,
        Some(normal),
        normal + allowance,
    );
    let week = track.exposed_week(now) as f64;
    let (normal, allowance) = week_budget;
    push(
        "patients_week",
        "VIGIE-EXF-019",
        "More patients in a week than the role's normal week allows",
        budget(week, normal, allowance),
        week,
        Some(normal),
        normal + allowance,
    );
    // Listings scale with the role: an admissions clerk lists far more than a ward nurse.
    let (listed_short, listed_day) = track.listed(now);
    let lt_short = listed_threshold(cfg, cx.normal, cx.source);
    let (normal_listed, listed_allowance) = listed_budget;
    let lt_day = normal_listed + listed_allowance;
    // One listing signal, the stronger window: both count the same names.
    let short = ramp(listed_short as f64, lt_short);
    let day = budget(listed_day as f64, normal_listed, listed_allowance);
    let (id, rule_id, name, score, observed, threshold) = if short >= day {
        let name = "Many patients listed in 15 minutes";
        (
            "listed_short",
            "VIGIE-EXF-017",
            name,
            short,
            listed_short,
            lt_short,
        )
    } else {
        let name = "Many patients listed over a day";
        ("listed_day", "VIGIE-EXF-018", name, day, listed_day, lt_day)
    };
    push(id, rule_id, name, score, observed as f64, None, threshold);
    let run = track.id_run as f64;
    push(
        "enumeration",
        "VIGIE-EXF-004",
        "Sequential patient identifier enumeration",
        ramp(run, t.enumeration_run * wide),
        run,
        None,
        t.enumeration_run * wide,
    );
    let crawl = track.crawl_run as f64;
    push(
        "paging_crawl",
        "VIGIE-EXF-005",
        "Listing crawled page after page",
        ramp(crawl, t.crawl_pages * wide),
        crawl,
        None,
        t.crawl_pages * wide,
    );
    if cx.page_normal_max > 0 && cx.asked_page > cx.page_normal_max {
        // Twice the portal's own largest page already scores a suspension.
        let size = cx.asked_page as f64;
        let normal = cx.page_normal_max as f64;
        push(
            "oversized_page",
            "VIGIE-EXF-006",
            "Listing page far larger than the portal's own",
            ramp(size, normal * 1.33),
            size,
            Some(normal),
            normal,
        );
    }
    let exports = track.exports_hour(now) as f64;
    let export_t = if cx.off_hours && cx.privileged {
        1.0
    } else {
        t.exports_per_hour * wide
    };
    push(
        "exports",
        "VIGIE-EXF-007",
        "Repeated exports",
        ramp(exports, export_t),
        exports,
        None,
        export_t,
    );
    if let Some((mean_ms, cv)) = track.timing() {
        if cv < t.regular_timing_cv {
            let score = if mean_ms < 2_000.0 { 55.0 } else { 40.0 };
            push(
                "machine_timing",
                "VIGIE-EXF-008",
                "Machine-like request timing",
                score,
                cv,
                None,
                t.regular_timing_cv,
            );
        }
    }
    let per_minute = track.page_rate(now);
    push(
        "fast",
        "VIGIE-EXF-008",
        "Pages faster than a person reads",
        ramp(per_minute, t.pages_per_minute * wide),
        per_minute,
        None,
        t.pages_per_minute * wide,
    );
    if cx.scripted_agent {
        push(
            "scripted_agent",
            "VIGIE-EXF-009",
            "Scripted user agent",
            35.0,
            1.0,
            None,
            1.0,
        );
    }
    if track.new_network_until_us > now {
        let score = if cx.privileged { 35.0 } else { 20.0 };
        push(
            "new_network",
            "VIGIE-EXF-010",
            "Activity from a network never seen for this user",
            score,
            1.0,
            None,
            1.0,
        );
    }
    if cx.off_hours && cx.privileged {
        push(
            "off_hours",
            "VIGIE-EXF-011",
            "Privileged account active off hours",
            30.0,
            1.0,
            None,
            1.0,
        );
    }
    let denied = track.denied_short(now) as f64;
    push(
        "denied",
        "VIGIE-EXF-012",
        "Many refused or missing records",
        ramp(denied, t.denied * wide),
        denied,
        None,
        t.denied * wide,
    );
    let mb = track.bytes_short(now) as f64 / 1_000_000.0;
    push(
        "volume",
        "VIGIE-EXF-016",
        "Large volume downloaded in 15 minutes",
        ramp(mb, t.megabytes_short * wide),
        mb,
        None,
        t.megabytes_short * wide,
    );
    if track.assets == 0 && track.pages as f64 >= t.no_assets_pages {
        push(
            "no_assets",
            "VIGIE-EXF-013",
            "Pages without any static asset",
            25.0,
            track.pages as f64,
            None,
            t.no_assets_pages,
        );
    }
    out
}

/// Noisy-OR of the weighted signal scores: independent evidence adds up, none exceeds 100.
pub fn combine(signals: &[Signal], cfg: &DetectionConfig, portal: &str) -> u8 {
    let miss: f64 = signals
        .iter()
        .map(|s| {
            let w = cfg.weight(portal, s.id);
            1.0 - (s.score * w / 100.0).clamp(0.0, 1.0)
        })
        .product();
    (100.0 * (1.0 - miss)).round() as u8
}

#[cfg(test)]
mod tests;
