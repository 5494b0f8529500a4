use std::io::Write;

use super::*;
use crate::policy::matcher::PathPattern;

fn rule(format: Format) -> RecordRule {
    RecordRule {
        matcher: Matcher {
            path: PathPattern::Any,
            methods: Vec::new(),
            query: Vec::new(),
        },
        format,
        record_bytes: 100,
        listing: false,
    }
}

fn json_rule(array: Option<&str>, ids: &[&str]) -> RecordRule {
    let mut errors = Vec::new();
    let section = RecordsSection {
        path: None,
        path_regex: None,
        methods: Vec::new(),
        query: Default::default(),
        json: array.map(str::to_string),
        json_id: ids.iter().map(|s| s.to_string()).collect(),
        fhir: false,
        csv: false,
        csv_id: None,
        html: None,
        record_bytes: Some(100),
        listing: false,
    };
    let r = build(
        0,
        rule(Format::Csv { id_column: None }).matcher,
        &section,
        &mut |k, m, _| errors.push(format!("{k}: {m}")),
    );
    assert!(errors.is_empty(), "{errors:?}");
    r.unwrap()
}

/// Counts `body` sent in chunks of `size` bytes: (records begun, ids, rows without id).
fn count(
    r: &RecordRule,
    ctype: &str,
    enc: Option<&str>,
    body: &[u8],
    size: usize,
) -> (u64, Vec<String>, u64) {
    let mut c = Counter::new(r, Some(ctype), enc);
    let chunks: Vec<&[u8]> = body.chunks(size.max(1)).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(c.feed(chunk, i + 1 == chunks.len(), None), None);
    }
    if chunks.is_empty() {
        c.feed(&[], true, None);
    }
    (c.started, c.ids.clone(), c.rows())
}

fn patients_json(n: usize) -> String {
    let list: Vec<String> = (1..=n)
        .map(|i| format!(r#"{{"id":{i},"nom":"N\"{i}\\u00e9","tags":[{{"id":"x"}}],"note":null}}"#))
        .collect();
    format!(
        r#"{{"total":{n},"meta":{{"patients":[1,2]}},"patients":[{}],"after":true}}"#,
        list.join(",")
    )
}

#[test]
fn a_json_page_counts_every_record_and_its_id_in_any_chunking() {
    let r = json_rule(Some("/patients"), &["/id"]);
    let body = patients_json(120);
    for size in [1, 2, 7, 64, 4096, body.len()] {
        let (started, ids, rows) = count(&r, "application/json", None, body.as_bytes(), size);
        assert_eq!(started, 120, "chunks of {size}");
        assert_eq!(ids.len(), 120);
        assert_eq!(ids[0], "1");
        assert_eq!(ids[119], "120");
        assert_eq!(rows, 0, "chunks of {size}");
    }
}

#[test]
fn an_answer_the_rule_cannot_read_counts_by_its_size() {
    let r = json_rule(Some("/patients"), &["/id"]);
    // Broken JSON after two records: the rest counts by size (100 bytes a record here).
    let body = format!(
        r#"{{"patients":[{{"id":1}},{{"id":2}},{{"id":3 oops {} ]}}"#,
        "x".repeat(1000)
    );
    let (_, ids, rows) = count(&r, "application/json", None, body.as_bytes(), 16);
    assert_eq!(ids, ["1", "2"]);
    assert!(rows >= 10, "{rows}");
    // Another media type than the rule reads: all by size.
    let (started, _, rows) = count(&r, "text/plain", None, patients_json(50).as_bytes(), 512);
    assert_eq!(started, 0);
    assert!(rows >= 30, "{rows}");
}

#[test]
fn nested_keys_of_the_same_name_are_not_records() {
    // `meta.patients` and `tags[].id` have the rule's names at other depths.
    let r = json_rule(Some("/patients"), &["/id"]);
    let (started, ids, _) = count(&r, "application/json", None, patients_json(3).as_bytes(), 5);
    assert_eq!(started, 3);
    assert_eq!(ids, ["1", "2", "3"]);
    // A document that is one record.
    let one = json_rule(None, &["/subject/reference", "/id"]);
    let (started, ids, _) = count(
        &one,
        "application/fhir+json",
        None,
        br#"{"id":"7","x":[]}"#,
        3,
    );
    assert_eq!((started, ids), (1, vec!["7".to_string()]));
    // A root array of plain ids.
    let plain = json_rule(Some(""), &[""]);
    let (started, ids, _) = count(
        &plain,
        "application/json",
        None,
        b" [ 4, \"5\" ,[], {} ] ",
        2,
    );
    assert_eq!(started, 4);
    assert_eq!(ids, ["4", "5"]);
}

#[test]
fn fhir_bundles_count_entries_by_their_patient() {
    let mut errors = Vec::new();
    let section: RecordsSection = toml::from_str("fhir = true").unwrap();
    let r = build(
        0,
        rule(Format::Csv { id_column: None }).matcher,
        &section,
        &mut |k, m, _| errors.push(format!("{k}: {m}")),
    )
    .unwrap();
    let body = r#"{"resourceType":"Bundle","entry":[
        {"resource":{"resourceType":"Patient","id":"p1"}},
        {"resource":{"resourceType":"Observation","id":"o1","subject":{"reference":"Patient/p2"}}},
        {"resource":{"resourceType":"Observation","id":"o2"}}]}"#;
    let (started, ids, rows) = count(
        &r,
        "application/fhir+json; fhirVersion=4.0",
        None,
        body.as_bytes(),
        9,
    );
    assert_eq!(started, 3);
    assert_eq!(ids, ["p1", "Patient/p2"]);
    assert_eq!(rows, 1);
}

#[test]
fn html_rows_are_found_once_across_chunk_boundaries() {
    let re = regex::bytes::Regex::new(r#"patient_id=(\d+)""#).unwrap();
    let r = rule(Format::Html(re));
    let rows: String = (1..=50)
        .map(|i| format!("<tr><td><a href=\"/index.php?tab=x&amp;patient_id={i}\">N</a></td></tr>"))
        .collect();
    let body = format!("<html><table>{rows}</table></html>");
    for size in [1, 3, 100, 700, body.len()] {
        let (started, ids, _) = count(&r, "text/html; charset=utf-8", None, body.as_bytes(), size);
        assert_eq!(started, 50, "chunks of {size}");
        assert_eq!(ids.len(), 50);
        assert_eq!(ids[49], "50", "chunks of {size}");
    }
}

#[test]
fn csv_rows_count_with_their_id_column() {
    let r = rule(Format::Csv {
        id_column: Some("id".into()),
    });
    let body = "nom;id;x\r\nA;1;a\r\nB;\"2\";b\r\n\r\nC;3;c";
    for size in [1, 4, body.len()] {
        let (started, ids, rows) = count(&r, "text/csv", None, body.as_bytes(), size);
        assert_eq!(started, 3);
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(rows, 0);
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn compressed_answers_count_the_same_as_plain_ones() {
    let r = json_rule(Some("/patients"), &["/id"]);
    let body = patients_json(200);
    let plain = count(&r, "application/json", None, body.as_bytes(), 1000);
    let gz = count(
        &r,
        "application/json",
        Some("gzip"),
        &gzip(body.as_bytes()),
        97,
    );
    assert_eq!(plain, gz);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(body.as_bytes()).unwrap();
    let deflate = count(
        &r,
        "application/json",
        Some("deflate"),
        &z.finish().unwrap(),
        50,
    );
    assert_eq!(plain, deflate);
    let mut br = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
        w.write_all(body.as_bytes()).unwrap();
    }
    let brotli = count(&r, "application/json", Some("br"), &br, 33);
    assert_eq!(plain, brotli);
    // A body that is not what its header says counts by size, not as nothing.
    let (_, _, rows) = count(&r, "application/json", Some("gzip"), body.as_bytes(), 500);
    assert!(rows > 0);
    let (_, _, rows) = count(
        &r,
        "application/json",
        Some("gzip, zstd"),
        body.as_bytes(),
        500,
    );
    assert!(rows > 0);
}

#[test]
fn an_allowance_cuts_before_the_record_that_spends_it() {
    let r = json_rule(Some("/patients"), &["/id"]);
    let body = patients_json(100);
    let mut c = Counter::new(&r, Some("application/json"), None);
    let cut = c.feed(body.as_bytes(), true, Some(10)).expect("cut");
    // Everything before the 11th record leaves, nothing of it.
    let kept = &body[..cut];
    assert_eq!(kept.matches(r#""nom":"#).count(), 10);
    assert!(body[cut..].starts_with(r#"{"id":11,"#));
    // Compressed: nothing more of the chunk that spends it.
    let mut c = Counter::new(&r, Some("application/json"), Some("gzip"));
    assert_eq!(c.feed(&gzip(body.as_bytes()), true, Some(10)), Some(0));
}

#[test]
fn an_answer_counted_by_size_counts_its_decoded_bytes() {
    // 15,000 bytes of records: 100 at 150 bytes each, however small they travel.
    let body = "x".repeat(15_000);
    let mut plain = Counter::by_size(150, None);
    plain.feed(body.as_bytes(), true, None);
    let mut gz = Counter::by_size(150, Some("gzip"));
    gz.feed(&gzip(body.as_bytes()), true, None);
    assert_eq!(plain.rows(), 100);
    assert_eq!(gz.rows(), 100);
    // And the allowance cuts it as it leaves.
    let mut cut = Counter::by_size(150, Some("gzip"));
    assert_eq!(cut.feed(&gzip(body.as_bytes()), true, Some(50)), Some(0));
}
