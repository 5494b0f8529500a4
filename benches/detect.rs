//! Micro-benchmarks of the exfiltration detector, which every signed-in request pays for:
//! - `detect/read_request`: the portal profile's extraction (patient id, page) of one URL;
//! - `detect/observe`: one event folded into an identity's and a source's tracks, scored,
//!   acted on (10 000 identities, realistic mix of record views, listings and assets);
//! - `detect/gate`: the check before forwarding (hold, throttle, pending step-up).
//!
//! It also prints the bytes of state one busy identity holds.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use vigie::alerts::Alerts;
use vigie::detect::reading::Page;
use vigie::detect::{DetectionConfig, Detector, Event, Seen, Subject};

const IDENTITIES: usize = 10_000;
const SEC: i64 = 1_000_000;

fn benches(c: &mut Criterion) {
    let profile = vigie::config::profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/profiles/sample-portal.toml"
    )))
    .expect("sample profile");
    let reading = profile.reading.clone();
    c.bench_function("detect/read_request", |b| {
        b.iter(|| {
            reading.read_request(
                "GET",
                "/index.php",
                black_box(Some("m=dPpatients&tab=vw_full_patients&patient_id=1234")),
                None,
                "view",
                profile.query_reading,
            )
        })
    });

    let detector = Detector::new(
        DetectionConfig::default(),
        jiff::tz::TimeZone::UTC,
        b"bench key",
        Arc::new(Alerts::disabled()),
    );
    let users: Vec<String> = (0..IDENTITIES).map(|i| format!("user{i:05}")).collect();
    let groups = vec!["nurse".to_string()];
    let session = vigie::identity::token::SessionId([7; 32]);
    let subject = |i: usize| Subject {
        portal: "ehr",
        user: &users[i],
        groups: &groups,
        privileged: false,
        session: &session,
        ip: IpAddr::V4(Ipv4Addr::new(10, (i >> 8) as u8, i as u8, 1)),
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
        // Never held, so every iteration measures the full path.
        break_glass: true,
        factor_at_us: 0,
    };
    let seen = Seen {
        method: "GET",
        path: "/index.php",
        status: 200,
        request_id: 1,
    };
    let pseudonyms: Vec<u64> = (0..5000)
        .map(|i| detector.pseudonym(&i.to_string()))
        .collect();
    let mut n: u64 = 0;
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(1));
    group.bench_function("observe", |b| {
        b.iter(|| {
            n += 1;
            let who = (n as usize * 7919) % IDENTITIES;
            let id = (n * 2_654_435_761 % 5000) as usize;
            let at = 1_790_000_000 * SEC + n as i64 * 10_000;
            let event = match n % 10 {
                0 => Event {
                    at_us: at,
                    asset: true,
                    network: 1,
                    ..Event::default()
                },
                1 => Event {
                    at_us: at,
                    page: Some(Page {
                        offset: 0,
                        size: 50,
                        explicit: false,
                    }),
                    network: 1,
                    ..Event::default()
                },
                _ => Event {
                    at_us: at,
                    patient: Some((pseudonyms[id], Some(id as i64))),
                    network: 1,
                    ..Event::default()
                },
            };
            detector.observe(&subject(who), black_box(&event), 0, 100, &seen)
        })
    });
    group.bench_function("gate", |b| {
        b.iter(|| detector.gate(&subject(black_box(42)), 1_790_000_100 * SEC, &seen))
    });
    group.finish();

    // One identity that read 20 000 records over a shift: the most state it can hold.
    let heavy = subject(0);
    for i in 0..20_000i64 {
        let id = (i * 7_919 % 5000) as usize;
        let e = Event {
            at_us: 1_800_000_000 * SEC + i * 1_400_000,
            patient: Some((pseudonyms[id], Some(id as i64))),
            network: 1,
            ..Event::default()
        };
        detector.observe(&heavy, &e, 0, 100, &seen);
    }
    println!(
        "detect/state: {} bytes for an identity that read 20000 records in 8 hours",
        detector.footprint("ehr", &users[0]).unwrap_or(0)
    );
}

criterion_group!(detect, benches);
criterion_main!(detect);
