//! Each extractor on its own, then each shipped profile read through `Reading::read_request`
//! the way the pipeline reads a request: the endpoint class first (first matching class, else
//! "view"), then the patient, the page and the export markers.

use std::path::Path;

use serde_json::{json, Value};

use super::*;
use crate::config::profile::{self, PortalProfile};

use crate::testing::shipped_profile as shipped;

/// A profile with a bare login and `sections` (top-level keys first, then tables).
fn with(sections: &str) -> Result<PortalProfile, Vec<String>> {
    let text = format!(
        "name = \"t\"\n{sections}\n[login]\npath = \"/login\"\nusername_field = \"u\"\n\
         password_field = \"p\"\n[login.success]\nsession_cookies = [\"s\"]\n\
         [[prelogin.allow]]\npath = \"/login\"\n"
    );
    profile::parse(Path::new("t.toml"), &text).map_err(|e| e.0.into_iter().map(|d| d.key).collect())
}

fn built(sections: &str) -> PortalProfile {
    with(sections).unwrap_or_else(|keys| panic!("{keys:?}"))
}

/// The class and reading of one request. `target` is the path and query as sent; `body` a
/// urlencoded form, appended to the query as the pipeline does; `json` a JSON body.
fn read(
    p: &PortalProfile,
    method: &str,
    target: &str,
    body: Option<&str>,
    json: Option<&Value>,
) -> (String, RequestReading) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let path = p.script_path(path);
    let class = p
        .classes
        .iter()
        .find(|c| c.matcher.matches(method, path, query, p.query_reading))
        .map_or(crate::policy::DEFAULT_CLASS, |c| c.name.as_str())
        .to_string();
    let params = match (query, body) {
        (Some(q), Some(b)) => Some(format!("{q}&{b}")),
        (q, b) => q.or(b).map(str::to_string),
    };
    let reading = p.reading.read_request(
        method,
        path,
        params.as_deref(),
        json,
        &class,
        p.query_reading,
    );
    (class, reading)
}

fn get(p: &PortalProfile, target: &str) -> (String, RequestReading) {
    read(p, "GET", target, None, None)
}

fn patient(p: &PortalProfile, target: &str) -> Option<String> {
    get(p, target).1.patient
}

fn class_for(p: &PortalProfile, method: &str, target: &str) -> String {
    read(p, method, target, None, None).0
}

fn page(offset: u64, size: u32, explicit: bool) -> Option<Page> {
    Some(Page {
        offset,
        size,
        explicit,
    })
}

fn current() -> RequestReading {
    RequestReading {
        current: true,
        ..Default::default()
    }
}

// ---- extractors ----

#[test]
fn a_parameter_is_read_as_the_portal_reads_it() {
    let p = built(
        "[[patient]]\npath = \"/index.php\"\nquery = { tab = \"record\" }\nparam = \"patient_id\"\n",
    );
    let id = |q: &str, reading| {
        p.reading
            .read_request("GET", "/index.php", Some(q), None, "view", reading)
            .patient
    };
    let last = |q: &str| id(q, QueryReading::Last);
    assert_eq!(last("tab=record&patient_id=12").as_deref(), Some("12"));
    // Repeats: PHP keeps the last, servlets the first.
    assert_eq!(
        last("tab=record&patient_id=1&patient_id=2").as_deref(),
        Some("2")
    );
    assert_eq!(
        id("tab=record&patient_id=1&patient_id=2", QueryReading::First).as_deref(),
        Some("1")
    );
    // PHP reads `patient.id`, `patient id` and ` patient_id` as `patient_id`; servlets do not.
    for q in [
        "tab=record&patient.id=7",
        "tab=record&patient+id=7",
        "tab=record&patient%20id=7",
        "tab=record&patient%2Eid=7",
        "tab=record&+patient_id=7",
        "tab=record&patient_id%00junk=7",
    ] {
        assert_eq!(last(q).as_deref(), Some("7"), "{q}");
    }
    assert_eq!(id("tab=record&patient.id=7", QueryReading::First), None);
    // Values are decoded once; `+` is a space, and spaces around the id do not count.
    assert_eq!(last("tab=record&patient_id=%31%32").as_deref(), Some("12"));
    assert_eq!(last("tab=record&patient_id=+12+").as_deref(), Some("12"));
    // Arrays, other names (PHP names are case-sensitive), empty values: no patient.
    for q in [
        "tab=record&patient_id[]=5",
        "tab=record&patient_id[0]=5",
        "tab=record&PATIENT_ID=5",
        "tab=record&patient_id=",
        "tab=record&patient_id=+",
        "tab=record",
    ] {
        assert_eq!(last(q), None, "{q}");
    }
    // The source only applies where its conditions hold.
    assert_eq!(last("tab=list&patient_id=5"), None);
    assert_eq!(
        last("tab=list&tab=record&patient_id=5").as_deref(),
        Some("5")
    );
    let r = p.reading.read_request(
        "GET",
        "/other.php",
        Some("tab=record&patient_id=5"),
        None,
        "view",
        QueryReading::Last,
    );
    assert_eq!(r, RequestReading::default());
}

#[test]
fn a_path_capture_reads_its_first_group() {
    let p = built(
        "[[patient]]\npath = \"/api/p/*\"\ncapture = '^/api/p/(\\d+)(?:\\.json)?$'\n\
         [[patient]]\npath_regex = '^/doc/[^/]+/[^/]+$'\ncapture = '^/doc/([^/]+)/'\n",
    );
    let id = |path: &str| {
        p.reading
            .read_request("GET", path, None, None, "view", QueryReading::Last)
            .patient
    };
    assert_eq!(id("/api/p/42").as_deref(), Some("42"));
    assert_eq!(id("/api/p/42.json").as_deref(), Some("42"));
    // The matcher takes the path, the capture does not: no patient, and not "current".
    assert_eq!(id("/api/p/abc"), None);
    assert_eq!(id("/api/q/42"), None);
    assert_eq!(id("/doc/p-9/file.pdf").as_deref(), Some("p-9"));
}

#[test]
fn a_json_pointer_reads_strings_and_numbers() {
    let p = built(
        "[[patient]]\npath = \"/fhir/Observation\"\nmethods = [\"POST\"]\n\
         json = \"/subject/reference\"\n\
         [[patient]]\npath = \"/api/search\"\njson = \"/filter/patient_id\"\n",
    );
    let id = |method: &str, path: &str, body: Option<Value>| {
        p.reading
            .read_request(
                method,
                path,
                None,
                body.as_ref(),
                "view",
                QueryReading::Last,
            )
            .patient
    };
    let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/123"}});
    assert_eq!(
        id("POST", "/fhir/Observation", Some(obs.clone())).as_deref(),
        Some("123")
    );
    assert_eq!(id("GET", "/fhir/Observation", Some(obs)), None, "POST only");
    assert_eq!(
        id(
            "POST",
            "/api/search",
            Some(json!({"filter": {"patient_id": 77}}))
        )
        .as_deref(),
        Some("77")
    );
    assert_eq!(
        id(
            "POST",
            "/api/search",
            Some(json!({"filter": {"patient_id": "78"}}))
        )
        .as_deref(),
        Some("78")
    );
    for body in [
        Some(json!({"filter": {}})),
        Some(json!({"filter": {"patient_id": -1}})),
        Some(json!({"filter": {"patient_id": {"id": 1}}})),
        Some(json!([1, 2])),
        None,
    ] {
        assert_eq!(id("POST", "/api/search", body.clone()), None, "{body:?}");
    }
}

#[test]
fn the_current_patient_stands_in_when_no_id_is_given() {
    let p = built(
        "[[patient]]\npath = \"/view\"\nparam = \"id\"\ncurrent = true\n\
         [[patient]]\npath = \"/summary\"\ncurrent = true\n",
    );
    let r = |path: &str, q: Option<&str>| {
        p.reading
            .read_request("GET", path, q, None, "view", QueryReading::Last)
    };
    assert_eq!(r("/view", Some("id=5")).patient.as_deref(), Some("5"));
    assert!(!r("/view", Some("id=5")).current);
    assert_eq!(r("/view", None), current());
    assert_eq!(r("/view", Some("id=")), current());
    assert_eq!(r("/summary", Some("id=5")), current(), "only current");
    assert_eq!(r("/elsewhere", Some("id=5")), RequestReading::default());
}

#[test]
fn the_first_matching_source_decides() {
    // Sources are tried in order by their matcher; the one that matches decides, even when
    // its parameter is absent (order the narrow sources first).
    let p = built(
        "[[patient]]\npath = \"/x/**\"\nquery = { a = \"*\" }\nparam = \"a\"\n\
         [[patient]]\npath = \"/x/**\"\nparam = \"b\"\n",
    );
    let id = |q: &str| {
        p.reading
            .read_request("GET", "/x/1", Some(q), None, "view", QueryReading::Last)
            .patient
    };
    assert_eq!(id("a=1&b=2").as_deref(), Some("1"));
    assert_eq!(id("b=2").as_deref(), Some("2"));
    let q = built("[[patient]]\npath = \"/x/**\"\nparam = \"a\"\n[[patient]]\npath = \"/x/**\"\nparam = \"b\"\n");
    assert_eq!(
        q.reading
            .read_request("GET", "/x/1", Some("b=2"), None, "view", QueryReading::Last)
            .patient,
        None
    );
}

#[test]
fn fhir_references_keep_their_id_other_values_stay_whole() {
    let p = built("[[patient]]\npath = \"/s\"\nparam = \"r\"\n");
    let id = |v: &str| {
        let q = format!(
            "r={}",
            v.replace('%', "%25")
                .replace('&', "%26")
                .replace('+', "%2B")
        );
        p.reading
            .read_request("GET", "/s", Some(&q), None, "view", QueryReading::Last)
            .patient
    };
    for (value, want) in [
        ("Patient/123", Some("123")),
        ("http://ehr.example/fhir/Patient/123", Some("123")),
        (
            "https://ehr.example/fhir/Patient/123/_history/2",
            Some("123"),
        ),
        ("Patient/123/_history/2", Some("123")),
        ("Patient/a1b2-c3.d4", Some("a1b2-c3.d4")),
        (" Patient/123 ", Some("123")),
        ("Patient/", None),
        ("123", Some("123")),
        // Not references: PHP over MySQL reads `17/0` and `17abc/Patient/1` as patient 17;
        // keeping only the tail would let each read pass as patient `0` or `1`.
        ("17/0", Some("17/0")),
        ("17abc/Patient/1", Some("17abc/Patient/1")),
        ("patient/5", Some("patient/5")),
        ("a/b/c", Some("a/b/c")),
        ("", None),
        ("  ", None),
    ] {
        assert_eq!(id(value).as_deref(), want, "{value:?}");
    }
    // However long: zero padding is still patient 17 for MySQL, and must not vanish.
    let padded = format!("{}17", "0".repeat(100));
    assert_eq!(id(&padded), Some(padded.clone()));
}

#[test]
fn pages_are_read_from_offsets_page_numbers_and_sizes() {
    let p = built(
        "[paging]\noffset = [\"offset\"]\npage = [\"page\"]\nsize = [\"limit\", \"per_page\"]\n\
         default_size = 25\nnormal_max = 100\nrecords = [\"list\"]\n",
    );
    let pg = |q: &str, class: &str| {
        p.reading
            .read_request("GET", "/api/x", Some(q), None, class, QueryReading::Last)
            .page
    };
    let list = |q: &str| pg(q, "list");
    assert_eq!(list("offset=50&limit=10"), page(50, 10, true));
    assert_eq!(list("page=3"), page(75, 25, false), "page × default size");
    assert_eq!(list("page=3&limit=10"), page(30, 10, true));
    assert_eq!(list("offset=5&page=3"), page(5, 25, false), "offset first");
    assert_eq!(list("offset=abc&page=2"), page(50, 25, false));
    assert_eq!(list(""), page(0, 25, false));
    // Not plain digits: one portal reads `+40` or ` 40 ` as 40, another fails and serves its
    // default page, another everything: read as everything (red team, issue 15).
    assert_eq!(list("limit=+40"), page(0, u32::MAX, true));
    assert_eq!(list("limit=%2040%20"), page(0, u32::MAX, true));
    assert_eq!(list("limit=0%20"), page(0, u32::MAX, true));
    assert_eq!(list("limit="), page(0, 25, false), "empty is not asked");
    assert_eq!(list("limit=5&limit=60"), page(0, 60, true), "PHP: the last");
    // Sizes the portal may read as huge are read as huge.
    assert_eq!(list("limit=100000"), page(0, 100_000, true));
    assert_eq!(list("limit=99999999999"), page(0, u32::MAX, true));
    assert_eq!(
        list("limit=99999999999999999999999"),
        page(0, u32::MAX, true)
    );
    assert_eq!(list("limit=-1"), page(0, u32::MAX, true), "DataTables: all");
    assert_eq!(list("limit=1e5"), page(0, u32::MAX, true), "PHP: 100000");
    // A decoy under another size name does not hide the size the portal reads.
    assert_eq!(list("limit=1&per_page=10000"), page(0, 10_000, true));
    assert_eq!(list("per_page=10000&limit=1"), page(0, 10_000, true));
    assert_eq!(
        list("page=99999999999999999999&limit=1000"),
        page(0, 1000, true),
        "an unreadable page number is no page"
    );
    assert_eq!(
        list("page=18446744073709551615&limit=1000"),
        page(u64::MAX, 1000, true),
        "saturates"
    );
    // Only listings of records and searches are paged.
    assert_eq!(pg("offset=50", "search"), page(50, 25, false));
    for class in ["view", "export", "file", "admin"] {
        assert_eq!(pg("offset=50&limit=10", class), None, "{class}");
    }
}

#[test]
fn the_default_reading_covers_common_names() {
    let r = Reading::default();
    let pg = |q: &str| {
        r.read_request("GET", "/x", Some(q), None, "list", QueryReading::Last)
            .page
    };
    assert_eq!(pg("start=40&per_page=20"), page(40, 20, true));
    assert_eq!(pg("_offset=10&_count=5"), page(10, 5, true));
    assert_eq!(pg("page=2"), page(40, 20, false));
    assert_eq!(pg("count=10&page_size=5000"), page(0, 5000, true));
    assert!(r.patients.is_empty());
    assert_eq!(r.paging.normal_max, 100);
}

#[test]
fn exports_are_known_by_media_type_or_attachment() {
    let r = Reading::default();
    for (ct, cd, want) in [
        (Some("text/csv"), None, true),
        (Some("text/csv; charset=utf-8"), None, true),
        (Some("Text/CSV ; charset=UTF-8"), None, true),
        (Some("TEXT/CSV"), None, true),
        (Some("application/pdf"), None, true),
        (Some("APPLICATION/PDF"), None, true),
        (Some("application/zip"), None, true),
        (
            Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            None,
            true,
        ),
        (Some("text/html; charset=utf-8"), None, false),
        (Some("text/html"), Some("inline"), false),
        (Some("application/json"), None, false),
        (Some("text/csvx"), None, false),
        (Some(""), None, false),
        (None, None, false),
        (
            Some("text/html"),
            Some("attachment; filename=\"patients.csv\""),
            true,
        ),
        (Some("text/plain"), Some("ATTACHMENT;filename=x.csv"), true),
        (None, Some("  attachment"), true),
        (
            Some("application/pdf"),
            Some("inline; filename=a.pdf"),
            true,
        ),
        (
            Some("text/html"),
            Some("inline; filename=attachment.pdf"),
            false,
        ),
        (Some("text/html"), Some("attachmen"), false),
        (Some("text/html"), Some(""), false),
    ] {
        assert_eq!(r.is_export(ct, cd), want, "{ct:?} {cd:?}");
    }
    let no_attachment =
        built("[export]\ncontent_types = [\"Text/X-VCard\", \"TEXT/CSV\"]\nattachment = false\n");
    let r = &no_attachment.reading;
    assert!(!r.is_export(Some("text/html"), Some("attachment")));
    assert!(r.is_export(Some("text/csv"), Some("attachment")));
    assert!(
        r.is_export(Some("text/x-vcard; charset=UTF-8"), None),
        "lower-cased"
    );
    assert!(
        !r.is_export(Some("application/pdf"), None),
        "replaced, not added"
    );
}

#[test]
fn only_csv_rows_are_counted() {
    let r = Reading::default();
    for (ct, want) in [
        (Some("text/csv"), true),
        (Some("text/csv; charset=utf-8"), true),
        (Some("TEXT/CSV;charset=UTF-8"), true),
        (Some(" text/csv "), true),
        (Some("application/csv"), true),
        (Some("application/pdf"), false),
        (Some("text/plain"), false),
        (Some("application/vnd.ms-excel"), false),
        (None, false),
    ] {
        assert_eq!(r.counts_rows(ct), want, "{ct:?}");
    }
    let off = built("[export]\ncount_rows = false\n");
    assert!(!off.reading.counts_rows(Some("text/csv")));
    assert!(off.reading.is_export(Some("text/csv"), None));
}

// ---- RowCounter ----

/// Feeds `chunks`, returns what leaves (the kept prefixes) and the counter.
fn stream(chunks: &[&[u8]], allowance: Option<u64>) -> (Vec<u8>, RowCounter) {
    let mut c = RowCounter::default();
    let mut out = Vec::new();
    for chunk in chunks {
        match c.feed(chunk, allowance) {
            None => out.extend_from_slice(chunk),
            Some(keep) => out.extend_from_slice(&chunk[..keep]),
        }
    }
    (out, c)
}

#[test]
fn rows_are_cut_after_the_allowance() {
    let csv: &[u8] = b"id;nom\n1;A\n2;B\n3;C\n4;D\n";
    let (out, c) = stream(&[csv], Some(2));
    assert_eq!(out, b"id;nom\n1;A\n2;B\n");
    assert_eq!(c.rows(), 2);
    // Without an allowance everything passes and every row is counted.
    let (out, c) = stream(&[csv], None);
    assert_eq!(out, csv);
    assert_eq!(c.rows(), 4);
    assert_eq!(c.lines, 5);
}

#[test]
fn rows_are_cut_across_chunk_boundaries() {
    // The third row starts in one chunk and ends in the next: none of it leaves.
    let (out, _) = stream(&[b"id;nom\n1;A", b"\n2;B\n3", b";C\n4;D\n"], Some(2));
    assert_eq!(out, b"id;nom\n1;A\n2;B\n");
    // A row split byte by byte.
    let bytes = b"h\nr1\nr2\nr3\n";
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    let (out, _) = stream(&chunks, Some(1));
    assert_eq!(out, b"h\nr1\n");
    // Once full, every later chunk is cut whole; empty chunks need no cut.
    let mut c = RowCounter::default();
    assert_eq!(c.feed(b"h\nr1\nr2\n", Some(1)), Some(5));
    assert_eq!(c.feed(b"r3\n", Some(1)), Some(0));
    assert_eq!(c.feed(b"", Some(1)), None);
}

#[test]
fn a_chunk_ending_at_a_newline_is_kept_whole() {
    let mut c = RowCounter::default();
    assert_eq!(c.feed(b"h\nr1\n", Some(1)), None, "exactly the allowance");
    assert_eq!(c.rows(), 1);
    assert_eq!(c.feed(b"r2\n", Some(1)), Some(0), "the next row is cut");
    // Rows ending with CRLF keep their `\r\n`.
    let (out, c) = stream(&[b"h\r\nr1\r\n", b"r2\r\nr3\r\n"], Some(2));
    assert_eq!(out, b"h\r\nr1\r\nr2\r\n");
    assert_eq!(c.rows(), 2);
    let (out, _) = stream(&[b"h\r\nr1\r", b"\nr2\r\n"], Some(1));
    assert_eq!(out, b"h\r\nr1\r\n");
}

#[test]
fn zero_allowance_keeps_only_the_header() {
    let (out, c) = stream(&[b"id;nom\n1;A\n"], Some(0));
    assert_eq!(out, b"id;nom\n");
    assert_eq!(c.rows(), 0);
    let (out, _) = stream(&[b"id;", b"nom\n1", b";A\n"], Some(0));
    assert_eq!(out, b"id;nom\n");
    // A header alone, or nothing at all, passes.
    let (out, _) = stream(&[b"id;nom\n"], Some(0));
    assert_eq!(out, b"id;nom\n");
    assert_eq!(stream(&[b""], Some(0)).0, b"");
}

// ---- profile sections ----

#[test]
fn bad_sections_name_the_key() {
    for (sections, key) in [
        ("[[patient]]\npath = \"/x\"\n", "patient[0]"),
        ("[[patient]]\npath = \"/x\"\nparam = \"\"\n", "patient[0]"),
        (
            "[[patient]]\npath = \"/x\"\nparam = \"a\"\njson = \"/a\"\n",
            "patient[0]",
        ),
        (
            "[[patient]]\npath = \"/x\"\ncapture = '^/x/\\d+$'\n",
            "patient[0].capture",
        ),
        (
            "[[patient]]\npath = \"/x\"\ncapture = '^/x/(\\d+$'\n",
            "patient[0].capture",
        ),
        (
            "[[patient]]\npath = \"/x\"\njson = \"subject.reference\"\n",
            "patient[0].json",
        ),
        (
            "[[patient]]\npath = \"/x\"\nparam = \"a\"\n[[patient]]\npath = \"/y\"\njson = \"a/b\"\n",
            "patient[1].json",
        ),
        (
            "[[patient]]\npath_regex = '('\nparam = \"a\"\n",
            "patient[0].path_regex",
        ),
        (
            "[[patient]]\npath = \"/a/../x\"\nparam = \"a\"\n",
            "patient[0].path",
        ),
        (
            "[[patient]]\npath = \"/x\"\nmethods = [\"TRACE\"]\nparam = \"a\"\n",
            "patient[0].methods[0]",
        ),
        ("[paging]\ndefault_size = 0\n", "paging.default_size"),
        ("[paging]\ndefault_size = -5\n", "paging.default_size"),
        ("[paging]\nnormal_max = 100001\n", "paging.normal_max"),
    ] {
        assert_eq!(with(sections).err(), Some(vec![key.to_string()]), "{sections}");
    }
    // `current = true` alone is a source; with nothing else set everything is defaulted.
    assert!(with("[[patient]]\npath = \"/x\"\ncurrent = true\n").is_ok());
    assert!(with("[paging]\n[export]\n").is_ok());
}

#[test]
fn every_shipped_profile_loads_and_names_patients() {
    for name in [
        "sample-portal.toml",
        "mediboard.toml",
        "openemr.toml",
        "generic-fhir.toml",
    ] {
        let p = shipped(name);
        assert!(!p.reading.patients.is_empty(), "{name}");
        assert!(!p.classes.is_empty(), "{name}");
    }
    // The generic form profile has no reading sections: the defaults apply.
    let generic = shipped("generic-form.toml");
    assert!(generic.reading.patients.is_empty());
    assert_eq!(generic.reading.paging.default_size, 20);
}

#[test]
fn captures_follow_the_portal_s_path_case() {
    let sample = shipped("sample-portal.toml");
    let upper = "/API/DossierPatient/Patients/5";
    assert_eq!(patient(&sample, upper), None);
    let folded = sample.ignoring_path_case();
    assert_eq!(patient(&folded, upper).as_deref(), Some("5"));
    assert_eq!(class_for(&folded, "GET", upper), "view");
}

mod profiles;
