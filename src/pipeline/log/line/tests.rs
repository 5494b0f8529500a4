use super::*;
use std::time::{Duration, Instant};

fn outcome<'a>(portal: &'a str, path: &'a str, rule: Option<&'a str>) -> Outcome<'a> {
    Outcome {
        request_id: "00000001deadbeef",
        portal,
        method: "GET",
        path,
        status: 403,
        client: Some("2001:db8::7".parse().unwrap()),
        identity: "dr.martin",
        rejected: Some("policy"),
        upstream_error: None,
        rule,
        break_glass: false,
        started: Instant::now(),
    }
}

fn render(o: &Outcome<'_>, now: SystemTime) -> serde_json::Value {
    let mut line = Line::new();
    line.render(o, 1234, now);
    assert_eq!(line.buf.last(), Some(&b'\n'), "one line");
    assert_eq!(line.buf.iter().filter(|&&c| c == b'\n').count(), 1);
    serde_json::from_slice(&line.buf).expect("valid JSON")
}

#[test]
fn a_line_has_every_field_and_masks_identifiers() {
    let at = UNIX_EPOCH + Duration::from_micros(1_795_000_000_000_042);
    let v = render(&outcome("ehr", "/patients/4242/labs", Some("admins")), at);
    assert_eq!(v["timestamp"], "2026-11-18T11:06:40.000042Z");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "request");
    assert_eq!(v["target"], "vigie::access");
    assert_eq!(v["request_id"], "00000001deadbeef");
    assert_eq!(v["path"], "/patients/:id/labs");
    assert_eq!(v["status"], 403);
    assert_eq!(v["client"], "2001:db8::7");
    assert_eq!(v["identity"], "dr.martin");
    assert_eq!(v["rejected"], "policy");
    assert_eq!(v["rule"], "admins");
    assert_eq!(v["duration_us"], 1234);
    assert!(
        v.get("upstream_error").is_none(),
        "absent fields are left out"
    );
}

#[test]
fn hostile_text_stays_inside_its_string() {
    let v = render(
        &outcome("a\"b\\c\n", "/x\"y/\u{7}z", None),
        SystemTime::now(),
    );
    assert_eq!(v["portal"], "a\"b\\c\n");
    assert_eq!(v["path"], "/x\"y/\u{7}z");
    assert!(v.get("rule").is_none());
}
