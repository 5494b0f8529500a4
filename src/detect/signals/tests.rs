//! Each signal on a hand-made track: it fires on its pattern, and stays quiet on ordinary work.

use super::*;
use crate::detect::reading::Page;
use crate::detect::track::{Event, Track};

const T0: i64 = 1_780_000_000_000_000;
const SEC: i64 = 1_000_000;

fn cfg() -> DetectionConfig {
    DetectionConfig::default()
}

fn cx(now: i64) -> Context {
    Context {
        now_us: now,
        baseline: 20.0,
        page_normal_max: 100,
        ..Context::default()
    }
}

fn ids(signals: &[Signal]) -> Vec<&'static str> {
    signals.iter().map(|s| s.id).collect()
}

fn score_of(signals: &[Signal], id: &str) -> f64 {
    signals.iter().find(|s| s.id == id).map_or(0.0, |s| s.score)
}

fn view(t: &mut Track, at: i64, id: i64) {
    t.update(&Event {
        at_us: at,
        patient: Some((
            (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            Some(id),
        )),
        network: 7,
        ..Event::default()
    });
}

#[test]
fn the_ramp_is_zero_below_half_sixty_at_the_threshold_ninety_at_one_and_a_half() {
    assert_eq!(ramp(4.9, 10.0), 0.0);
    assert_eq!(ramp(10.0, 10.0), 60.0);
    assert_eq!(ramp(15.0, 10.0), 90.0);
    assert_eq!(ramp(100.0, 10.0), 100.0);
    for score in [10.0, 60.0, 75.0, 90.0, 95.0] {
        assert!((ramp(ramp_inverse(score, 10.0), 10.0) - score).abs() < 1e-9);
    }
}

#[test]
fn patients_in_fifteen_minutes_a_shift_and_a_day() {
    let c = cfg();
    let (ts, tl) = exposure_thresholds(&c, 20.0, false);
    // 15 minutes: at least 40 (a ward's handover, 30 patients in 10 minutes, stays under).
    assert_eq!((ts, tl), (40.0, 120.0));
    let mut t = Track::default();
    for i in 0..60 {
        view(&mut t, T0 + i * 10 * SEC, 7 * i * i + 3);
    }
    let s = evaluate(&t, &cx(T0 + 600 * SEC), &c);
    assert!(score_of(&s, "patients_short") >= 90.0, "{s:?}");
    // Two hundred and forty patients over sixteen hours: slow for 15 minutes, about 100 in
    // the last shift, over 200 in the day's three 8-hour slots: past the default normal day
    // (60) by most of its allowance of 190, short of suspension (90).
    let mut t = Track::default();
    for i in 0..240 {
        view(&mut t, T0 + i * 240 * SEC, 7 * i * i + 3);
    }
    let s = evaluate(&t, &cx(T0 + 240 * 240 * SEC), &c);
    assert_eq!(score_of(&s, "patients_short"), 0.0, "{s:?}");
    assert!(score_of(&s, "patients_long") > 0.0, "{s:?}");
    let day = score_of(&s, "patients_day");
    assert!((70.0..90.0).contains(&day), "{s:?}");
    // A source's thresholds scale with source_factor.
    let wide = DetectionConfig {
        source_factor: 3.0,
        ..cfg()
    };
    assert_eq!(exposure_thresholds(&wide, 20.0, true).0, 120.0);
}

#[test]
fn enumeration_needs_one_constant_step() {
    let c = cfg();
    let mut t = Track::default();
    // Sixteen records, fifteen equal steps: 1.5 times the threshold of ten.
    for i in 0..16 {
        view(&mut t, T0 + i * SEC, 1000 + 3 * i);
    }
    assert!(score_of(&evaluate(&t, &cx(T0 + 16 * SEC), &c), "enumeration") >= 90.0);
    let mut t = Track::default();
    for (i, id) in [5, 9, 40, 12, 300, 301, 77, 78, 79, 2, 4000, 17]
        .iter()
        .enumerate()
    {
        view(&mut t, T0 + i as i64 * SEC, *id);
    }
    assert_eq!(
        score_of(&evaluate(&t, &cx(T0 + 12 * SEC), &c), "enumeration"),
        0.0
    );
}

#[test]
fn paging_crawls_and_oversized_pages() {
    let c = cfg();
    let mut t = Track::default();
    // The first page, then eight that follow it: 1.6 times the threshold of five.
    for i in 0..9u64 {
        t.update(&Event {
            at_us: T0 + i as i64 * 5 * SEC,
            page: Some(Page {
                offset: i * 50,
                size: 50,
                explicit: true,
            }),
            ..Event::default()
        });
    }
    let s = evaluate(&t, &cx(T0 + 40 * SEC), &c);
    assert!(score_of(&s, "paging_crawl") >= 90.0, "{s:?}");
    let big = Context {
        asked_page: 250,
        ..cx(T0)
    };
    assert!(score_of(&evaluate(&Track::default(), &big, &c), "oversized_page") >= 90.0);
    let normal = Context {
        asked_page: 50,
        ..cx(T0)
    };
    assert!(!ids(&evaluate(&Track::default(), &normal, &c)).contains(&"oversized_page"));
}

#[test]
fn exports_refusals_and_volume_count_from_the_answers() {
    let c = cfg();
    let mut t = Track::default();
    for i in 0..5 {
        t.add_outcome(&Event {
            at_us: T0 + i * SEC,
            export: true,
            ..Event::default()
        });
    }
    assert!(score_of(&evaluate(&t, &cx(T0 + 5 * SEC), &c), "exports") >= 90.0);
    // One export off hours by a privileged account is already "repeated".
    let mut t = Track::default();
    t.add_outcome(&Event {
        at_us: T0,
        export: true,
        ..Event::default()
    });
    let night = Context {
        privileged: true,
        off_hours: true,
        ..cx(T0)
    };
    let s = evaluate(&t, &night, &c);
    assert!(
        score_of(&s, "exports") >= 60.0 && ids(&s).contains(&"off_hours"),
        "{s:?}"
    );
    let mut t = Track::default();
    for i in 0..40 {
        t.add_outcome(&Event {
            at_us: T0 + i * SEC,
            denied: true,
            bytes: 8_000_000,
            ..Event::default()
        });
    }
    let s = evaluate(&t, &cx(T0 + 40 * SEC), &c);
    assert!(score_of(&s, "denied") >= 90.0, "{s:?}");
    assert!(score_of(&s, "volume") >= 90.0, "320 MB in a minute: {s:?}");
}

#[test]
fn timing_speed_agents_networks_and_assets() {
    let c = cfg();
    // Sixty record pages (the current patient's) exactly 1.5 s apart: regular, and fast.
    let mut t = Track::default();
    for i in 0..60 {
        t.update(&Event {
            at_us: T0 + i * 1_500_000,
            current: true,
            network: 7,
            ..Event::default()
        });
    }
    let s = evaluate(&t, &cx(T0 + 60 * 1_500_000), &c);
    assert_eq!(score_of(&s, "machine_timing"), 55.0, "{s:?}");
    assert!(score_of(&s, "fast") > 0.0, "{s:?}");
    assert!(
        ids(&s).contains(&"no_assets"),
        "60 pages, no stylesheet: {s:?}"
    );
    // A person: irregular gaps, a stylesheet now and then.
    let mut t = Track::default();
    let mut at = T0;
    for i in 0..60i64 {
        at += (20 + (i * 37) % 90) * SEC;
        t.update(&Event {
            at_us: at,
            asset: i % 10 == 0,
            network: 7,
            ..Event::default()
        });
    }
    assert!(evaluate(&t, &cx(at), &c).is_empty());
    let scripted = Context {
        scripted_agent: true,
        ..cx(at)
    };
    assert_eq!(
        score_of(&evaluate(&t, &scripted, &c), "scripted_agent"),
        35.0
    );
    // A new network counts once the identity has settled somewhere: the first is learnt.
    assert!(!t.see_network(7, at, true));
    assert!(!ids(&evaluate(&t, &cx(at + SEC), &c)).contains(&"new_network"));
    assert!(t.see_network(8, at, true));
    assert!(ids(&evaluate(&t, &cx(at + SEC), &c)).contains(&"new_network"));
    assert!(!t.see_network(8, at, true), "known now");
}

#[test]
fn a_honeytoken_alone_is_a_hundred_and_signals_combine_without_exceeding_it() {
    let c = cfg();
    let s = evaluate(
        &Track::default(),
        &Context {
            honeytoken: true,
            ..cx(T0)
        },
        &c,
    );
    assert_eq!(combine(&s, &c, "ehr"), 100);
    let two = |a: f64, b: f64| {
        let sig = |id, score| Signal {
            id,
            rule_id: "x",
            name: "x",
            score,
            observed: 0.0,
            baseline: None,
            threshold: 0.0,
        };
        combine(&[sig("scripted_agent", a), sig("fast", b)], &c, "ehr")
    };
    assert_eq!(two(35.0, 0.0), 35);
    assert_eq!(two(35.0, 35.0), 58, "1 - 0.65 × 0.65");
    let halved = DetectionConfig {
        weights: [("scripted_agent".to_string(), 0.5)].into(),
        ..cfg()
    };
    let sig = Signal {
        id: "scripted_agent",
        rule_id: "x",
        name: "x",
        score: 40.0,
        observed: 0.0,
        baseline: None,
        threshold: 0.0,
    };
    assert_eq!(combine(&[sig], &halved, "ehr"), 20);
}
