//! Each extractor on its own, then each shipped profile read through `Reading::read_request`
//! the way the pipeline reads a request: the endpoint class first (first matching class, else
//! "view"), then the patient, the page and the export markers.

use std::path::Path;

use serde_json::{json, Value};

use super::*;
use crate::config::profile::{self, PortalProfile};

fn shipped(name: &str) -> PortalProfile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/profiles")
        .join(name);
    profile::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A profile with a bare login and `sections` (top-level keys first, then tables).
fn with(sections: &str) -> Result<PortalProfile, Vec<String>> {
    let text = format!(
        "name = \"t\"\n{sections}\n[login]\npath = \"/login\"\nusername_field = \"u\"\n\
         password_field = \"p\"\n[login.success]\nsession_cookies = [\"s\"]\n"
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
    assert_eq!(list("limit=+40"), page(0, 40, true));
    assert_eq!(list("limit=%2040%20"), page(0, 40, true));
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

// ---- the sample portal ----

#[test]
fn sample_portal_record_pages() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=1234",
    );
    assert_eq!(class, "view");
    assert_eq!(r.patient.as_deref(), Some("1234"));
    assert!(!r.current);
    assert_eq!(r.page, None);
    // HEAD reads the same record.
    let head = read(
        &p,
        "HEAD",
        "/index.php?tab=vw_full_patients&patient_id=1234",
        None,
        None,
    );
    assert_eq!(head.1.patient.as_deref(), Some("1234"));
    // Without an id, the session's current patient.
    assert_eq!(
        get(&p, "/index.php?m=dPpatients&tab=vw_full_patients").1,
        current()
    );
    // `/` and `/index.php/…` run index.php.
    assert_eq!(
        patient(&p, "/?tab=vw_full_patients&patient_id=6").as_deref(),
        Some("6")
    );
    assert_eq!(
        patient(&p, "/index.php/x/y?tab=vw_full_patients&patient_id=7").as_deref(),
        Some("7")
    );
    // The last `tab` decides, as the portal reads it.
    assert_eq!(
        patient(
            &p,
            "/index.php?tab=vw_idx_patients&tab=vw_full_patients&patient_id=3"
        )
        .as_deref(),
        Some("3")
    );
    let (class, r) = get(
        &p,
        "/index.php?tab=vw_full_patients&tab=vw_idx_patients&patient_id=3",
    );
    assert_eq!((class.as_str(), r.patient), ("search", None));
    // A record page carrying `page=` is still a record page.
    assert_eq!(
        class_of_target(&p, "/index.php?tab=vw_full_patients&patient_id=3&page=2"),
        "view"
    );
}

fn class_of_target(p: &PortalProfile, target: &str) -> String {
    class_for(p, "GET", target)
}

#[test]
fn sample_portal_api() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(&p, "/api/dossierpatient/patients/293");
    assert_eq!(class, "view", "one record is not a listing page");
    assert_eq!(r.patient.as_deref(), Some("293"));
    assert_eq!(r.page, None);
    // The portal parses the id as a number: `+7` and `007` are patient 7.
    for path in [
        "/api/dossierpatient/patients/+7",
        "/api/dossierpatient/patients/007",
    ] {
        assert_eq!(patient(&p, path).as_deref(), Some("7"), "{path}");
    }
    assert_eq!(
        patient(&p, "/api/dossierpatient/patients/0").as_deref(),
        Some("0")
    );
    assert_eq!(patient(&p, "/api/dossierpatient/patients/abc"), None);
    // The listing: offset and limit.
    let (class, r) = get(&p, "/api/dossierpatient/patients?offset=100&limit=50");
    assert_eq!(class, "list");
    assert_eq!(r.patient, None);
    assert_eq!(r.page, page(100, 50, true));
    assert_eq!(
        get(&p, "/api/dossierpatient/patients").1.page,
        page(0, 50, false)
    );
    let (class, r) = get(&p, "/api/dossierpatient/patients/?offset=0&limit=10000");
    assert_eq!(class, "list", "trailing slash: still the listing");
    assert_eq!(r.page, page(0, 10_000, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    assert_eq!(p.reading.paging.records, vec!["list".to_string()]);
}

#[test]
fn sample_portal_ui_list() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&tab=vw_idx_patients&q=DUP&page=3",
    );
    assert_eq!(class, "search");
    assert_eq!(r.page, page(150, 50, false), "page × 50");
    assert_eq!(r.patient, None);
    // Without `tab` the portal shows the list too.
    assert_eq!(
        get(&p, "/index.php?page=2"),
        (
            "search".into(),
            RequestReading {
                page: page(100, 50, false),
                ..Default::default()
            }
        )
    );
    assert_eq!(get(&p, "/index.php?q=MAR").1.page, page(0, 50, false));
    assert!(p.reading.paging.normal_max >= 50, "the portal's own page");
}

#[test]
fn sample_portal_export_and_assets() {
    let p = shipped("sample-portal.toml");
    let (class, r) = get(&p, "/index.php?m=dPpatients&raw=ajax_export_patients_csv");
    assert_eq!(class, "export");
    assert_eq!(r, RequestReading::default());
    assert_eq!(
        class_of_target(&p, "/index.php?raw=view&raw=ajax_export_patients_csv"),
        "export"
    );
    let r = &p.reading;
    let (ct, cd) = (
        Some("text/csv; charset=utf-8"),
        Some("attachment; filename=\"patients.csv\""),
    );
    assert!(r.is_export(ct, cd));
    assert!(r.is_export(ct, None));
    assert!(r.counts_rows(ct));
    assert!(!r.is_export(Some("text/html; charset=utf-8"), None));
    assert!(!r.is_export(Some("application/json"), None));
    assert_eq!(class_of_target(&p, "/static/bench-1k.txt"), "file");
    assert_eq!(class_of_target(&p, "/style.css"), "file");
    assert_eq!(class_of_target(&p, "/status"), "view");
}

// ---- Mediboard ----

#[test]
fn mediboard_record_routes() {
    let p = shipped("mediboard.toml");
    for target in [
        "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=42",
        "/index.php?m=patients&tab=vw_full_patients&patient_id=42",
        "/?m=dPpatients&tab=vw_full_patients&patient_id=42",
        "/index.php?m=dPpatients&a=vw_full_patients&dialog=1&patient_id=42",
        "/index.php?m=dPpatients&a=print_patient&dialog=1&patient_id=42",
        "/index.php?m=dPcabinet&tab=edit_planning&pat_id=42",
        "/index.php?m=dPplanningOp&tab=vw_edit_planning&pat_id=42",
    ] {
        let (class, r) = get(&p, target);
        assert_eq!(class, "view", "{target}");
        assert_eq!(r.patient.as_deref(), Some("42"), "{target}");
        assert!(!r.current);
    }
    // Screens that fall back to the session's current patient.
    for target in [
        "/index.php?m=dPpatients&tab=vw_full_patients",
        "/index.php?m=patients&tab=vw_full_patients",
        "/index.php?m=dPpatients&a=httpreq_vw_patient",
        "/index.php?m=dPpatients&a=httpreq_vw_full_patient&ajax=1",
        "/index.php?m=dPpatients&tab=vw_edit_patients",
    ] {
        assert_eq!(get(&p, target).1, current(), "{target}");
    }
    // Other screens name no patient.
    for target in [
        "/index.php?m=dPcabinet&tab=edit_consultation&selConsult=5",
        "/index.php?m=dPhospi&tab=vw_affectations",
        "/index.php?m=dPplanningOp&tab=vw_full_patients",
    ] {
        assert_eq!(get(&p, target).1, RequestReading::default(), "{target}");
    }
}

#[test]
fn mediboard_rest_and_fhir_routes() {
    let p = shipped("mediboard.toml");
    for target in [
        "/api/dossierpatient/patients/42",
        "/api/dossierpatient/patient/42",
        "/api/fhir/Patient/42",
        "/api/fhir/Patient/42/_history/3",
        "/api/fhir/Patient/42/Observation",
    ] {
        let (class, r) = get(&p, target);
        assert_eq!(class, "view", "{target}");
        assert_eq!(r.patient.as_deref(), Some("42"), "{target}");
    }
    for target in [
        "/api/fhir/Observation?patient=42&_count=20",
        "/api/fhir/Observation?subject=Patient/42",
        "/api/fhir/Encounter?subject=Patient%2F42",
    ] {
        let (class, r) = get(&p, target);
        assert_eq!(class, "list", "{target}");
        assert_eq!(r.patient.as_deref(), Some("42"), "{target}");
    }
    let (class, r) = get(&p, "/api/fhir/Patient?_count=500&_offset=1000");
    assert_eq!(class, "list");
    assert_eq!(r.page, page(1000, 500, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    let (class, r) = get(&p, "/api/dossierpatient/patients?start=60&limit=30");
    assert_eq!((class.as_str(), r.page), ("list", page(60, 30, true)));
}

#[test]
fn mediboard_reads_ids_as_php_does() {
    let p = shipped("mediboard.toml");
    let id = |q: &str| {
        patient(
            &p,
            &format!("/index.php?m=dPpatients&tab=vw_full_patients&{q}"),
        )
    };
    for (q, want) in [
        ("patient_id=1&patient_id=2", "2"),
        ("patient.id=43", "43"),
        ("patient+id=44", "44"),
        ("patient%2Eid=45", "45"),
        ("patient_id=%34%36", "46"),
        ("patient_id=+47", "47"),
        ("patient_id=48&patient.id=49", "49"),
        // MySQL reads `17/0` as 17: counted whole, never as patient 0.
        ("patient_id=17/0", "17/0"),
        ("patient_id=17%2F0", "17/0"),
    ] {
        assert_eq!(id(q).as_deref(), Some(want), "{q}");
    }
    // Zero padding past 64 characters is still a patient for MySQL.
    let padded = format!("{}50", "0".repeat(80));
    assert_eq!(id(&format!("patient_id={padded}")), Some(padded));
    // An array is not `patient_id`: the current patient shows.
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&tab=vw_full_patients&patient_id[]=5"
        )
        .1,
        current()
    );
    // POSTed forms carry it in the body.
    let (_, r) = read(
        &p,
        "POST",
        "/index.php",
        Some("m=dPpatients&dosql=do_patients_aed&patient_id=51"),
        None,
    );
    assert_eq!(r.patient.as_deref(), Some("51"));
}

#[test]
fn mediboard_objects_exports_and_files() {
    let p = shipped("mediboard.toml");
    let (class, r) = get(
        &p,
        "/index.php?m=system&a=export_object&object_guid=CPatient-52",
    );
    assert_eq!(class, "export");
    assert_eq!(r.patient.as_deref(), Some("CPatient-52"));
    assert_eq!(
        patient(
            &p,
            "/index.php?m=system&a=export_object&object_guid=CSejour-52"
        ),
        None
    );
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&a=ajax_export_vcard&suppressHeaders=1&patient_id=53",
    );
    assert_eq!(
        (class.as_str(), r.patient.as_deref()),
        ("export", Some("53"))
    );
    assert_eq!(
        class_of_target(&p, "/index.php?m=dPpatients&raw=export_patients"),
        "export"
    );
    assert_eq!(
        class_of_target(&p, "/index.php?m=dPfiles&a=fileviewer&file_id=1"),
        "file"
    );
    assert_eq!(
        class_of_target(&p, "/index.php?m=files&a=preview_files"),
        "file"
    );
    assert_eq!(class_of_target(&p, "/api/patients"), "list");
    let r = &p.reading;
    // CCSVFile: text/plain with an attachment; vCards; application/csv.
    assert!(r.is_export(
        Some("text/plain;charset=UTF-8"),
        Some("attachment;filename=\"export.csv\"")
    ));
    assert!(!r.counts_rows(Some("text/plain;charset=UTF-8")));
    assert!(r.is_export(Some("text/x-vcard; charset=UTF-8"), None));
    assert!(r.is_export(Some("application/csv"), None));
    assert!(r.counts_rows(Some("application/csv")));
    assert!(r.is_export(Some("application/pdf"), None));
    assert!(!r.is_export(Some("text/html;charset=UTF-8"), None));
}

#[test]
fn mediboard_searches_page_by_row_offset() {
    let p = shipped("mediboard.toml");
    let (class, r) = get(&p, "/index.php?m=dPpatients&tab=vw_idx_patients&nom=DUP");
    assert_eq!(class, "search");
    assert_eq!(r.page, page(0, 30, false));
    let (class, r) = get(
        &p,
        "/index.php?m=dPpatients&a=ajax_recherche_dossier_clinique&start=60",
    );
    assert_eq!(class, "search");
    assert_eq!(r.page, page(60, 30, false));
    // `page` is a row offset in Mediboard (inc_pagination), not a page number.
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&a=httpreq_list_patients&page=90"
        )
        .1
        .page,
        page(90, 30, false)
    );
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&a=ajax_search_patient&limit=5000"
        )
        .1
        .page,
        page(0, 5000, true)
    );
    assert_eq!(
        get(
            &p,
            "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=1&start=30"
        )
        .1
        .page,
        None,
        "a record page is not paged"
    );
}

// ---- OpenEMR ----

#[test]
fn openemr_login_and_session() {
    let p = shipped("openemr.toml");
    assert_eq!(p.login.path, "/interface/main/main_screen.php");
    assert_eq!(
        (
            p.login.username_field.as_str(),
            p.login.password_field.as_str()
        ),
        ("authUser", "clearPass")
    );
    assert_eq!(
        p.login.marker_field.as_deref(),
        Some("new_login_session_management")
    );
    assert_eq!(p.login.session_cookies, vec!["OpenEMR".to_string()]);
    assert_eq!(p.logout.as_ref().unwrap().path, "/interface/logout.php");
    assert!(p.block.authorization_header);
}

#[test]
fn openemr_ui_patients() {
    let p = shipped("openemr.toml");
    let demo = "/interface/patient_file/summary/demographics.php";
    assert_eq!(
        patient(&p, &format!("{demo}?set_pid=7")).as_deref(),
        Some("7")
    );
    assert_eq!(
        patient(&p, &format!("{demo}?set_pid=3&set_pid=4")).as_deref(),
        Some("4")
    );
    assert_eq!(
        patient(&p, &format!("{demo}?pid=1&set_pid=2")).as_deref(),
        Some("2"),
        "set_pid makes the patient current"
    );
    assert_eq!(get(&p, demo).1, current());
    assert_eq!(get(&p, &format!("{demo}?set_pid=")).1, current());
    assert_eq!(
        get(
            &p,
            "/interface/patient_file/summary/stats_full.php?active=all"
        )
        .1,
        current()
    );
    assert_eq!(
        patient(&p, "/interface/main/calendar/index.php?pid=8").as_deref(),
        Some("8")
    );
    assert_eq!(
        patient(&p, "/interface/patient_file/encounter/forms.php?pid=9").as_deref(),
        Some("9")
    );
    assert_eq!(
        get(&p, "/interface/main/tabs/main.php?token_main=x").1,
        RequestReading::default()
    );
    let (class, r) = get(
        &p,
        "/controller.php?document&retrieve&patient_id=12&document_id=34&as_file=false",
    );
    assert_eq!((class.as_str(), r.patient.as_deref()), ("file", Some("12")));
}

#[test]
fn openemr_api_patients() {
    let p = shipped("openemr.toml");
    let uuid = "90cde167-7b9b-4ed1-bd55-533925cb2605";
    for target in [
        format!("/apis/default/api/patient/{uuid}"),
        format!("/apis/default/api/patient/{uuid}/encounter"),
        format!("/apis/default/fhir/Patient/{uuid}"),
        format!("/apis/default/fhir/Patient?_id={uuid}"),
        format!("/apis/default/fhir/Observation?patient={uuid}"),
        format!("/apis/default/fhir/Observation?patient=Patient/{uuid}"),
        format!("/apis/default/fhir/DocumentReference?subject=Patient/{uuid}"),
        format!("/apis/clinic2/fhir/Condition?subject=https://ehr.example/apis/clinic2/fhir/Patient/{uuid}"),
    ] {
        assert_eq!(patient(&p, &target).as_deref(), Some(uuid), "{target}");
    }
    assert_eq!(
        patient(&p, "/apis/default/fhir/Observation?subject=Group/1"),
        None
    );
    let (class, r) = read(
        &p,
        "POST",
        "/apis/default/fhir/Patient/_search",
        Some(&format!("_id={uuid}")),
        None,
    );
    assert_eq!((class.as_str(), r.patient.as_deref()), ("list", Some(uuid)));
    assert_eq!(
        class_of_target(&p, &format!("/apis/default/fhir/Patient/{uuid}")),
        "view"
    );
}

#[test]
fn openemr_listings_and_exports() {
    let p = shipped("openemr.toml");
    let (class, r) = get(&p, "/apis/default/api/patient?_offset=200&_limit=50");
    assert_eq!(class, "list");
    assert_eq!(r.page, page(200, 50, true));
    // `_maxresults` is read before `_limit`; a decoy `_count` hides neither.
    assert_eq!(
        get(&p, "/apis/default/api/patient?_count=1&_maxresults=200")
            .1
            .page,
        page(0, 200, true)
    );
    let (class, r) = get(&p, "/apis/default/fhir/Patient?_count=100000&_offset=0");
    assert_eq!(class, "list");
    assert_eq!(r.page, page(0, 100_000, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    assert_eq!(
        get(&p, "/apis/default/fhir/Patient?_count=99999999999999999999")
            .1
            .page,
        page(0, u32::MAX, true)
    );
    // The finder (DataTables): `-1` asks for every row.
    let finder = "/interface/main/finder/dynamic_finder_ajax.php";
    let (class, r) = get(
        &p,
        &format!("{finder}?sEcho=2&iDisplayStart=100&iDisplayLength=25&sColumns=name,DOB"),
    );
    assert_eq!(class, "search");
    assert_eq!(r.page, page(100, 25, true));
    assert_eq!(
        get(&p, &format!("{finder}?iDisplayStart=0&iDisplayLength=-1"))
            .1
            .page,
        page(0, u32::MAX, true)
    );
    assert_eq!(
        get(&p, "/interface/main/finder/patient_select.php?fstart=200")
            .1
            .page,
        page(200, 100, false)
    );
    for (target, want) in [
        ("/apis/default/fhir/$export", "export"),
        ("/apis/default/fhir/Patient/$export", "export"),
        ("/apis/default/fhir/Group/5/$export", "export"),
        ("/interface/reports/patient_list.php", "list"),
        ("/interface/usergroup/usergroup_admin.php", "admin"),
        ("/interface/usergroup/adminacl.php", "admin"),
        ("/interface/super/edit_globals.php", "admin"),
        ("/interface/usergroup/user_info.php", "view"),
        ("/interface/usergroup/mfa_registrations.php", "view"),
    ] {
        assert_eq!(class_of_target(&p, target), want, "{target}");
    }
    assert_eq!(
        class_for(&p, "POST", "/apis/default/fhir/DocumentReference/$docref"),
        "export"
    );
    assert_eq!(
        get(&p, "/apis/default/fhir/Patient/$export").1.patient,
        None
    );
    let r = &p.reading;
    // Report CSVs are forced downloads.
    assert!(r.is_export(
        Some("application/force-download"),
        Some("attachment; filename=patient_list.csv")
    ));
    assert!(r.is_export(Some("application/force-download"), None));
    assert!(r.is_export(Some("application/fhir+ndjson"), None));
    assert!(!r.is_export(Some("application/fhir+json"), None));
    assert!(!r.is_export(Some("text/html; charset=utf-8"), None));
}

// ---- generic FHIR ----

#[test]
fn generic_fhir_reads() {
    let p = shipped("generic-fhir.toml");
    for target in [
        "/fhir/Patient/123",
        "/fhir/Patient/123/_history/2",
        "/fhir/Patient/123/Observation?code=1234-5",
        "/fhir/Patient/123/$everything",
        "/fhir/Patient?_id=123",
        "/fhir/Observation?patient=123",
        "/fhir/Observation?patient=Patient/123",
        "/fhir/Encounter?subject=Patient/123",
        "/fhir/Encounter?subject=http://h.example/fhir/Patient/123",
        "/fhir/Condition?subject:Patient=123",
        "/fhir/Observation?patient=123&patient=456",
    ] {
        assert_eq!(patient(&p, target).as_deref(), Some("123"), "{target}");
    }
    for target in [
        "/fhir/Observation?subject=Group/5",
        "/fhir/Observation?code=1234-5",
        "/fhir/metadata",
        "/fhir/Patient/$export",
        "/fhir/Patient/_search",
    ] {
        assert_eq!(patient(&p, target), None, "{target}");
    }
    assert_eq!(class_of_target(&p, "/fhir/Patient/123"), "view");
    assert_eq!(class_of_target(&p, "/fhir/Patient?_id=123"), "list");
    assert_eq!(
        class_of_target(&p, "/fhir/Observation?patient=123"),
        "search"
    );
    // POSTed searches carry their parameters in a form body.
    for (path, body) in [
        ("/fhir/Patient/_search", "_id=124"),
        ("/fhir/Observation/_search", "patient=124"),
        ("/fhir/Observation/_search", "subject=Patient/124"),
    ] {
        let (_, r) = read(&p, "POST", path, Some(body), None);
        assert_eq!(r.patient.as_deref(), Some("124"), "{path} {body}");
    }
    // Created and updated resources name their patient in JSON.
    let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/125"}});
    for (method, path) in [
        ("POST", "/fhir/Observation"),
        ("PUT", "/fhir/Observation/o1"),
    ] {
        let (_, r) = read(&p, method, path, None, Some(&obs));
        assert_eq!(r.patient.as_deref(), Some("125"), "{method} {path}");
    }
    let imm = json!({"resourceType": "Immunization", "patient": {"reference": "Patient/126"}});
    assert_eq!(
        read(&p, "POST", "/fhir/Immunization", None, Some(&imm))
            .1
            .patient
            .as_deref(),
        Some("126")
    );
    assert_eq!(
        read(&p, "POST", "/fhir/Observation", None, Some(&json!({})))
            .1
            .patient,
        None
    );
    let pat = json!({"resourceType": "Patient", "id": "127"});
    assert_eq!(
        read(&p, "PUT", "/fhir/Patient/127", None, Some(&pat))
            .1
            .patient
            .as_deref(),
        Some("127")
    );
}

#[test]
fn generic_fhir_pages_and_exports() {
    let p = shipped("generic-fhir.toml");
    assert_eq!(get(&p, "/fhir/Patient").1.page, page(0, 20, false));
    assert_eq!(
        get(&p, "/fhir/Patient?_count=50&_offset=100").1.page,
        page(100, 50, true)
    );
    // Servlets read the first of repeated parameters.
    assert_eq!(
        get(&p, "/fhir/Patient?_count=10&_count=5000").1.page,
        page(0, 10, true)
    );
    let (_, r) = get(&p, "/fhir/Patient?_count=1000000");
    assert_eq!(r.page, page(0, 1_000_000, true));
    assert!(r.page.unwrap().size > p.reading.paging.normal_max);
    assert_eq!(
        get(
            &p,
            "/fhir/Observation?_getpages=abc&_getpagesoffset=40&_count=20"
        )
        .1
        .page,
        page(40, 20, true)
    );
    assert_eq!(
        get(&p, "/api/patients?page=2&limit=25").1.page,
        page(50, 25, true)
    );
    for target in [
        "/fhir/$export",
        "/fhir/Patient/$export",
        "/fhir/Group/g1/$export",
        "/fhir/Patient/$everything",
    ] {
        assert_eq!(class_of_target(&p, target), "export", "{target}");
    }
    assert_eq!(class_of_target(&p, "/fhir/Binary/b1"), "file");
    let r = &p.reading;
    assert!(r.is_export(Some("application/fhir+ndjson"), None));
    assert!(r.is_export(Some("text/csv"), None));
    assert!(!r.is_export(Some("application/fhir+json;charset=utf-8"), None));
}

#[test]
fn every_shipped_profile_passes_the_configuration_check() {
    for name in [
        "sample-portal.toml",
        "mediboard.toml",
        "openemr.toml",
        "generic-fhir.toml",
        "generic-form.toml",
    ] {
        let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/profiles")
            .join(name);
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:1\"\n[policy]\ntime_zone = \"Europe/Paris\"\n\
             [[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:1\"\nprofile = \"{}\"\n",
            profile.display()
        );
        let config = crate::config::Config::demo_from_toml(Path::new("t.toml"), &text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(config.warnings.is_empty(), "{name}: {:?}", config.warnings);
    }
}
