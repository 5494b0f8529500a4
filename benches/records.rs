//! What counting answers costs (issue 15): one JSON page of 500 full patient records read by
//! the `[[records]]` rule of the sample portal's API, in 16 KiB chunks as they stream: plain
//! (the baseline), and gzip-encoded (decoding for counting is the extra). Throughput is in
//! bytes of the answer as sent.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::io::Write;
use vigie::detect::records::{rule_for, Counter};

fn page(n: usize) -> Vec<u8> {
    let records: Vec<String> = (1..=n)
        .map(|i| {
            format!(
                r#"{{"id":{i},"ipp":"{:010}","nom":"MARTIN","prenom":"Élise","naissance":"1961-04-0{}","sexe":"F","service":"Cardiologie","motif":"Bilan","medecin":"Dr Martin"}}"#,
                i * 7919,
                i % 9 + 1
            )
        })
        .collect();
    format!(
        r#"{{"total":{n},"offset":0,"limit":{n},"patients":[{}]}}"#,
        records.join(",")
    )
    .into_bytes()
}

fn count(rule: &vigie::detect::records::RecordRule, body: &[u8], encoding: Option<&str>) -> u64 {
    let mut c = Counter::new(rule, Some("application/json"), encoding);
    let chunks: Vec<&[u8]> = body.chunks(16 * 1024).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        c.feed(chunk, i + 1 == chunks.len(), None);
    }
    c.started
}

fn benches(c: &mut Criterion) {
    let profile = vigie::config::profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/profiles/sample-portal.toml"
    )))
    .expect("sample profile");
    let rule = rule_for(
        &profile.reading.records,
        "GET",
        "/api/dossierpatient/patients/",
        None,
        profile.query_reading,
    )
    .expect("the API list has a records rule")
    .clone();
    let plain = page(500);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&plain).unwrap();
    let gz = e.finish().unwrap();
    assert_eq!(count(&rule, &plain, None), 500);
    assert_eq!(count(&rule, &gz, Some("gzip")), 500);

    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("json_plain", |b| {
        b.iter(|| count(&rule, black_box(&plain), None))
    });
    g.throughput(Throughput::Bytes(gz.len() as u64));
    g.bench_function("json_gzip", |b| {
        b.iter(|| count(&rule, black_box(&gz), Some("gzip")))
    });
    g.finish();
}

criterion_group!(group, benches);
criterion_main!(group);
