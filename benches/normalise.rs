//! Micro-benchmarks of the normalise stage, which every request pays for.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use vigie::pipeline::normalise::{check_head, normalise_target, strip_request_headers, HeadLimits};

const HEAD: &[u8] = b"GET /index.php?m=dPpatients&tab=vw_full_patients&patient_id=1234 HTTP/1.1\r\nHost: ehr.hospital.local\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: fr-FR,fr;q=0.9\r\nCookie: __Host-vigie=abcdefabcdefabcdefabcdef; lang=fr\r\nConnection: keep-alive\r\n\r\n";

fn benches(c: &mut Criterion) {
    // Typical portal URL: a plain path and a query, nothing to decode.
    c.bench_function("normalise_target/plain", |b| {
        b.iter(|| {
            normalise_target(black_box(
                "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=1234",
            ))
        })
    });
    // Worst common case: encoded bytes, dot segments and parameters to resolve.
    c.bench_function("normalise_target/tricky", |b| {
        b.iter(|| {
            normalise_target(black_box(
                "/api/%64ossierpatient/./x/../patients;v=1/12%20a?limit=50",
            ))
        })
    });
    // Framing and size checks over a realistic browser request head.
    let limits = HeadLimits {
        max_url_bytes: 8192,
        max_header_bytes: 32768,
        max_header_count: 100,
    };
    c.bench_function("check_head/browser_request", |b| {
        b.iter(|| check_head(black_box(HEAD), limits))
    });
    // Header hygiene on a request carrying eight headers, two of them to strip.
    c.bench_function("strip_request_headers/8_headers", |b| {
        b.iter_batched(
            || {
                let mut r = pingora::http::RequestHeader::build("GET", b"/", None).unwrap();
                for (k, v) in [
                    ("host", "ehr"),
                    ("user-agent", "x"),
                    ("accept", "*/*"),
                    ("accept-language", "fr"),
                    ("cookie", "a=b"),
                    ("connection", "keep-alive"),
                    ("x-remote-user", "admin"),
                    ("referer", "/"),
                ] {
                    r.append_header(k, v).unwrap();
                }
                r
            },
            |mut r| strip_request_headers(&mut r, &[], false),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(normalise, benches);
criterion_main!(normalise);
