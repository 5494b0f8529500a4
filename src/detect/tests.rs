//! The detector's decisions under simulated time, through its public API.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::reading::Page;
use super::*;
use crate::alerts::{Alerts, SinkSettings};

const T0: i64 = 1_780_000_000_000_000; // a weekday morning, unix µs
const SEC: i64 = 1_000_000;

struct Bench {
    d: Detector,
    store: crate::alerts::AlertStore,
    _dir: tempfile::TempDir,
}

fn detector(cfg: DetectionConfig) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Alerts::start(SinkSettings {
        store: Some(dir.path().join("alerts.db")),
        ..SinkSettings::default()
    })
    .unwrap();
    let store = alerts.store().unwrap();
    Bench {
        d: Detector::new(cfg, jiff::tz::TimeZone::UTC, b"test key", Arc::new(alerts)),
        store,
        _dir: dir,
    }
}

impl Bench {
    fn alerts(&self) -> Vec<serde_json::Value> {
        assert!(self.d.alerts().flush(std::time::Duration::from_secs(5)));
        self.store.recent(100).unwrap()
    }
}

fn groups(g: &str) -> Vec<String> {
    vec![g.to_string()]
}

fn subject<'a>(user: &'a str, groups: &'a [String], ip: u8, ua: &'a str) -> Subject<'a> {
    Subject {
        portal: "ehr",
        user,
        groups,
        privileged: false,
        session: &SESSION,
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, ip)),
        user_agent: ua,
        break_glass: false,
        factor_at_us: 0,
    }
}

const SESSION: crate::identity::token::SessionId = crate::identity::token::SessionId([7; 32]);
const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0";
const SEEN: Seen = Seen {
    method: "GET",
    path: "/index.php",
    status: 200,
    request_id: 7,
};

/// One record view by a client that waits out throttling and cannot prove a factor.
fn view(d: &Detector, s: &Subject, at: i64, id: u32) -> Action {
    let mut at = at;
    loop {
        match d.gate(s, at, &SEEN) {
            Action::Throttle { retry_after } => at += retry_after as i64 * SEC,
            Action::Allow => break,
            refused => return refused,
        }
    }
    let e = Event {
        at_us: at,
        patient: Some((d.pseudonym(&id.to_string()), Some(id as i64))),
        network: 1,
        ..Event::default()
    };
    d.observe(s, &e, 0, 100, &SEEN)
}

/// A small deterministic generator, so tests need no seed plumbing.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

#[test]
fn sequential_enumeration_meets_a_step_up_then_a_hold() {
    let b = detector(DetectionConfig::default());
    let g = groups("physician");
    let s = subject("dr.x", &g, 1, BROWSER);
    let mut held_at = None;
    for i in 0..200u32 {
        if let Action::Held(h) = view(&b.d, &s, T0 + i as i64 * 3 * SEC, 1000 + i) {
            held_at = Some((i, h));
            break;
        }
    }
    let (n, hold) = held_at.expect("an enumeration is held");
    assert!(n <= 30, "held after {n} attempts");
    // Stopped at the step-up band (a stolen session cannot prove a factor), then suspended
    // for ignoring it.
    assert_eq!(hold.rule, "Step-up demanded and never met");
    let alerts = b.alerts();
    let first = alerts.last().expect("alerts, newest first");
    assert_eq!(
        first["rule"]["id"], "VIGIE-EXF-004",
        "the first alert names the enumeration"
    );
    let step_ups = alerts.iter().filter(|a| a["event"]["action"] == "step_up");
    assert_eq!(step_ups.count(), 1);
    let suspend = alerts
        .iter()
        .find(|a| a["event"]["action"] == "suspend")
        .expect("a suspend alert");
    assert_eq!(suspend["event"]["kind"], "alert");
    let pseudonyms = suspend["vigie"]["patients"]["pseudonyms"]
        .as_array()
        .unwrap();
    assert!(!pseudonyms.is_empty());
    for p in pseudonyms {
        let p = p.as_str().unwrap();
        assert!(p.starts_with("p-") && p.len() == 14, "{p}");
        assert!(!p.contains("1000"), "no raw id leaks: {p}");
    }
    // Still held later, and releasing clears both the hold and the evidence.
    assert!(matches!(
        view(&b.d, &s, T0 + 3600 * SEC, 5),
        Action::Held(_)
    ));
    assert_eq!(b.d.holds(T0 + 3600 * SEC).len(), 1);
    assert!(b.d.release("ehr", "dr.x", T0 + 3600 * SEC));
    assert_eq!(view(&b.d, &s, T0 + 3601 * SEC, 5), Action::Allow);
}

#[test]
fn a_ward_physician_s_day_raises_nothing() {
    let b = detector(DetectionConfig::default());
    let g = groups("physician");
    let s = subject("dr.y", &g, 2, BROWSER);
    let mut rng = 42u64;
    let mut at = T0;
    // Ten hours: about twenty patients of a 60-bed ward an hour, revisited, irregular gaps.
    for _ in 0..10 * 60 {
        at += (20 + lcg(&mut rng) % 100) as i64 * SEC;
        let id = 300 + (lcg(&mut rng) % 60) as u32;
        assert_eq!(view(&b.d, &s, at, id), Action::Allow);
    }
    assert!(b.alerts().is_empty(), "{:?}", b.alerts());
}

#[test]
fn a_honeytoken_holds_at_once_with_top_severity() {
    let cfg = DetectionConfig {
        honeytokens: vec!["4242".into()],
        ..DetectionConfig::default()
    };
    let b = detector(cfg);
    let g = groups("nurse");
    let s = subject("n.z", &g, 3, BROWSER);
    assert_eq!(view(&b.d, &s, T0, 17), Action::Allow);
    assert!(matches!(view(&b.d, &s, T0 + SEC, 4242), Action::Held(_)));
    let alerts = b.alerts();
    assert_eq!(alerts[0]["rule"]["id"], "VIGIE-EXF-001");
    assert_eq!(alerts[0]["event"]["severity"], 99);
}

#[test]
fn an_oversized_page_is_stopped_before_it_is_served() {
    let b = detector(DetectionConfig::default());
    let g = groups("clerk");
    let s = subject("c.a", &g, 4, BROWSER);
    let e = Event {
        at_us: T0,
        page: Some(Page {
            offset: 0,
            size: 5000,
            explicit: true,
        }),
        network: 1,
        ..Event::default()
    };
    assert!(matches!(
        b.d.observe(&s, &e, 5000, 100, &SEEN),
        Action::Held(_)
    ));
    // A normal page is fine for someone else.
    let s2 = subject("c.b", &g, 5, BROWSER);
    let e = Event {
        page: Some(Page {
            offset: 0,
            size: 50,
            explicit: true,
        }),
        ..e
    };
    assert_eq!(b.d.observe(&s2, &e, 50, 100, &SEEN), Action::Allow);
}

#[test]
fn a_paging_crawl_is_held_within_ten_pages() {
    let b = detector(DetectionConfig::default());
    let g = groups("clerk");
    let s = subject("c.c", &g, 6, BROWSER);
    let mut held = None;
    for i in 0..100u64 {
        let e = Event {
            at_us: T0 + i as i64 * 20 * SEC,
            page: Some(Page {
                offset: i * 20,
                size: 20,
                explicit: true,
            }),
            record_rows: 20,
            network: 1,
            ..Event::default()
        };
        if let Action::Held(_) = b.d.observe(&s, &e, 20, 100, &SEEN) {
            held = Some(i);
            break;
        }
    }
    assert!(held.expect("held") < 10, "{held:?}");
}

#[test]
fn export_allowance_shrinks_as_patients_are_seen_and_break_glass_lifts_it() {
    let b = detector(DetectionConfig::default());
    let g = groups("admin");
    let s = subject("adm", &g, 7, BROWSER);
    let before = b.d.export_allowance(&s, T0).unwrap();
    assert!(before > 0 && before < 200, "{before}");
    for i in 0..10u32 {
        view(&b.d, &s, T0 + i as i64 * 60 * SEC, 7 * i + 3);
    }
    let after = b.d.export_allowance(&s, T0 + 600 * SEC).unwrap();
    assert!(after <= before - 10, "{before} -> {after}");
    let glass = Subject {
        break_glass: true,
        ..s
    };
    assert_eq!(b.d.export_allowance(&glass, T0), None);
}

#[test]
fn the_step_up_band_asks_for_a_fresh_factor_once() {
    let mut cfg = DetectionConfig::default();
    cfg.bands.step_up = 30; // a scripted agent alone (35) reaches it
    cfg.bands.alert = 30;
    let b = detector(cfg);
    let g = groups("nurse");
    let s = subject("n.q", &g, 8, "curl/8.5");
    assert_eq!(view(&b.d, &s, T0, 1), Action::StepUp);
    assert_eq!(b.d.gate(&s, T0 + SEC, &SEEN), Action::StepUp);
    let proved = Subject {
        factor_at_us: T0 + 2 * SEC,
        ..s
    };
    assert_eq!(b.d.gate(&proved, T0 + 3 * SEC, &SEEN), Action::Allow);
    assert_eq!(view(&b.d, &proved, T0 + 4 * SEC, 90), Action::Allow);
    let alerts = b.alerts();
    assert_eq!(alerts.len(), 1, "one alert per escalation");
    assert_eq!(alerts[0]["vigie"]["suggested_action"], "step_up");
}

#[test]
fn a_source_s_evidence_is_alerted_but_never_holds_the_next_user() {
    // A shared workstation (or a NAT, or an attacker with many accounts): each account stays
    // under its own thresholds, the address does not. Holding someone needs their own
    // evidence: the SOC is told about the address, and nobody is held for someone else.
    let b = detector(DetectionConfig::default());
    let g = groups("nurse");
    let users: Vec<String> = (0..20).map(|i| format!("acct{i}")).collect();
    let mut rng = 9u64;
    let mut at = T0;
    for u in &users {
        let s = subject(u, &g, 99, BROWSER);
        for _ in 0..12 {
            at += 30 * SEC;
            let id = (lcg(&mut rng) % 5000) as u32;
            assert_eq!(view(&b.d, &s, at, id), Action::Allow, "{u} acted on");
        }
    }
    let alerts = b.alerts();
    let source: Vec<_> = alerts
        .iter()
        .filter(|a| {
            a["rule"]["name"]
                .as_str()
                .unwrap()
                .ends_with("(source address)")
        })
        .collect();
    assert!(
        !source.is_empty(),
        "the address's activity is alerted: {alerts:?}"
    );
    for a in &source {
        assert_eq!(a["vigie"]["suggested_action"], "alert");
        let evidence = a["vigie"]["evidence"].as_array().unwrap();
        assert!(evidence
            .iter()
            .all(|e| e["signal"].as_str().unwrap().starts_with("source.")));
    }
    assert!(b.d.holds(at).is_empty());
}

#[test]
fn state_per_identity_stays_a_few_kilobytes() {
    let b = detector(DetectionConfig {
        enabled: true,
        ..DetectionConfig::default()
    });
    let g = groups("admin");
    let mut s = subject("big", &g, 10, BROWSER);
    s.break_glass = true; // never held: keep feeding
    for i in 0..20_000u32 {
        view(
            &b.d,
            &s,
            T0 + i as i64 * 2 * SEC,
            i.wrapping_mul(2_654_435_761),
        );
    }
    let bytes = b.d.footprint("ehr", "big").unwrap();
    // Twenty-eight time buckets (fourteen with patients at 256 bytes of sketch each at
    // most, the week's seven among them), plus counters and sequences.
    assert!(bytes < 8 * 1024, "{bytes} bytes");
}

#[test]
fn distinct_counts_kept_up_to_date_match_a_recount() {
    use std::collections::HashSet;
    let mut t = super::track::Track::default();
    let mut seen: Vec<(i64, u64)> = Vec::new();
    let mut rng = 7u64;
    for i in 0..240i64 {
        let at = T0 + i * 10 * SEC;
        let h = 1 + lcg(&mut rng) % 60;
        t.update(&Event {
            at_us: at,
            patient: Some((h, None)),
            ..Event::default()
        });
        seen.push((at, h));
        // The 15-minute window: the current 5-minute slot and the two before it.
        let slot = at / super::track::SHORT_SLOT_US;
        let expected: HashSet<u64> = seen
            .iter()
            .filter(|(a, _)| a / super::track::SHORT_SLOT_US > slot - 3)
            .map(|(_, h)| *h)
            .collect();
        assert_eq!(
            t.exposed_short(at),
            expected.len() as u64,
            "after event {i}"
        );
    }
}

#[test]
fn a_ward_handover_and_a_day_of_ward_work_raise_nothing() {
    // A nurse's handover: the ward's 30 patients in 10 minutes (some twice), then a shift of
    // the same patients; the next day again. Then a second nurse on the same workstation.
    let b = detector(DetectionConfig::default());
    let g = groups("nurse");
    let mut rng = 15u64;
    let ward: Vec<u32> = (0..30).map(|_| (lcg(&mut rng) % 5000) as u32).collect();
    for (day, user) in [(0, "n.one"), (1, "n.one"), (1, "n.two")] {
        let s = subject(user, &g, 12, BROWSER);
        let mut at = T0 + day * 24 * 3600 * SEC + if user == "n.two" { 3600 * SEC } else { 0 };
        for (i, id) in ward.iter().chain(&ward[..6]).enumerate() {
            at += (10 + lcg(&mut rng) % 15) as i64 * SEC;
            assert_eq!(
                view(&b.d, &s, at, *id),
                Action::Allow,
                "{user} handover {i}"
            );
        }
        for i in 0..120u32 {
            at += (30 + lcg(&mut rng) % 150) as i64 * SEC;
            let id = ward[lcg(&mut rng) as usize % ward.len()];
            assert_eq!(view(&b.d, &s, at, id), Action::Allow, "{user} shift {i}");
        }
    }
    assert!(b.alerts().is_empty(), "{:?}", b.alerts());
}

#[test]
fn each_portal_has_its_own_detection_settings() {
    use crate::detect::settings::PortalDetection;
    let mut cfg = DetectionConfig::default();
    cfg.portals.insert(
        "lab".into(),
        PortalDetection {
            enabled: false,
            weights: Default::default(),
        },
    );
    cfg.portals.insert(
        "api".into(),
        PortalDetection {
            enabled: true,
            weights: [("enumeration".to_string(), 0.0), ("fast".to_string(), 0.0)]
                .into_iter()
                .collect(),
        },
    );
    let b = detector(cfg);
    let g = groups("physician");
    // The same fast enumeration on three portals: held on the default one only.
    for (portal, held) in [("ehr", true), ("lab", false), ("api", false)] {
        let s = Subject {
            portal,
            ..subject("dr.p", &g, 3, BROWSER)
        };
        let mut acted = false;
        for id in 1..=30u32 {
            acted |= view(&b.d, &s, T0 + id as i64 * SEC, id) != Action::Allow;
        }
        assert_eq!(acted, held, "{portal}");
    }
}

#[test]
fn timing_counts_only_requests_that_read_patients() {
    // Forty menu pages in forty seconds: no patient, no listing, so nothing to time.
    let b = detector(DetectionConfig::default());
    let g = groups("nurse");
    let s = subject("n.menu", &g, 4, BROWSER);
    for i in 0..40 {
        let e = Event {
            at_us: T0 + i * SEC,
            network: 1,
            ..Event::default()
        };
        assert_eq!(
            b.d.observe(&s, &e, 0, 100, &SEEN),
            Action::Allow,
            "page {i}"
        );
    }
    assert!(b.alerts().is_empty());
}

#[test]
fn the_factor_page_reads_a_pending_step_up_without_counting_a_refusal() {
    let mut cfg = DetectionConfig::default();
    cfg.bands.step_up = 30;
    cfg.bands.alert = 30;
    let b = detector(cfg);
    let g = groups("nurse");
    let s = subject("n.r", &g, 9, "curl/8.5");
    assert_eq!(
        b.d.step_up_since("ehr", "n.r"),
        None,
        "no track, no step-up"
    );
    assert_eq!(view(&b.d, &s, T0, 1), Action::StepUp);
    let since = b.d.step_up_since(s.portal, s.user);
    assert_eq!(since, Some(T0));
    // The page may ask as often as it is shown: the gate still only steps up, never holds.
    for _ in 0..3 * b.d.tuning.load().cfg.step_up_refusals {
        assert_eq!(b.d.step_up_since(s.portal, s.user), since);
    }
    assert_eq!(b.d.gate(&s, T0 + SEC, &SEEN), Action::StepUp);
    // A proof within the very second the step-up began still meets it (microseconds).
    let proved = Subject {
        factor_at_us: T0 + 1,
        ..s
    };
    assert_eq!(b.d.gate(&proved, T0 + 2, &SEEN), Action::Allow);
    assert_eq!(b.d.step_up_since("ehr", "someone.else"), None);
    assert!(
        b.d.footprint("ehr", "someone.else").is_none(),
        "asking creates no track"
    );
}

#[test]
fn answers_streaming_side_by_side_share_one_allowance_until_counted() {
    let b = detector(DetectionConfig::default());
    let g = groups("physician");
    let s = subject("dr.s", &g, 5, BROWSER);
    let first = b.d.stream(&s, T0, false, |a| (a.unwrap(), 30));
    let second = b.d.stream(&s, T0, false, |a| (a.unwrap(), 0));
    assert_eq!(
        second,
        first - 30,
        "the first answer's records are reserved"
    );
    // Counted: the reservation is released, the records now count as exposed instead.
    let answer = Answer {
        rows: 30,
        streamed: 30,
        ..Answer::default()
    };
    b.d.finish(&s, T0 + SEC, answer, &SEEN);
    let third = b.d.stream(&s, T0 + SEC, false, |a| (a.unwrap(), 0));
    assert_eq!(third, second, "released once counted, not twice");
}
