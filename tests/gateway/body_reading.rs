//! The detector reads a patient id wherever PHP does (issue 15): in a multipart body, in a
//! urlencoded body past 64 KiB, and in the query when `max_input_vars` drops the body's decoy.
//! Real gateway, real PHP portal; an enumeration of records posted that way is stopped.

use crate::common::*;
use crate::detection::sink_docs;
use crate::prelogin::{gateway_on, profile_variant, send, sign_in, start_php_ini, ALICE};

/// The PHP portal's profile with its record page read for detection.
const RECORDS: &str = r#"
[request]
language = "php"
request_order = "GP"

[[class]]
name = "view"
path = "/index.php"
query = { m = "record" }

[[patient]]
path = "/index.php"
query = { m = "record" }
param = "patient_id"
"#;

/// The record page's answer names its patient: what the detector counts from the response.
const ANSWERS: &str = r#"
[[records]]
path = "/index.php"
query = { m = "record" }
html = 'RECORD (\d+)\.'
"#;

/// Posts records 1, 2, 3… shaped by `request` (id → query and body) until the gateway
/// stops the session; returns how many records PHP served, each checked to be the one asked.
fn enumerate(shape: impl Fn(u32) -> (String, String, Vec<u8>)) -> usize {
    enumerate_with(RECORDS, |id| id, "enumeration", shape)
}

/// The same with this profile addition, patient ids picked by `pick` from 1, 2, 3…, and the
/// signal the alerts must show.
fn enumerate_with(
    addition: &str,
    pick: impl Fn(u32) -> u32,
    signal: &str,
    shape: impl Fn(u32) -> (String, String, Vec<u8>),
) -> usize {
    let php = start_php_ini(false, 1, &["request_order=GP", "display_errors=0"]);
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_variant(&dir, |p| format!("{p}{addition}"));
    let jsonl = dir.path().join("alerts.jsonl");
    let extra = format!(
        "{GENEROUS_BUDGETS}[alerts]\njsonl = \"{}\"\n",
        jsonl.display()
    );
    let gw = gateway_on(&php, &profile, &extra);
    let (mut c, login) = sign_in(&gw, ALICE);
    assert_eq!(login.status, 302, "{}", login.text());
    let mut served = 0;
    for n in 1..=100 {
        let id = pick(n);
        let (query, content_type, body) = shape(id);
        let headers = format!(
            "Origin: http://localhost:{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            gw.port,
            body.len()
        );
        let r = send(
            &mut c,
            "POST",
            &format!("/index.php?m=record{query}"),
            &headers,
            &body,
        );
        match r.status {
            200 => {
                assert!(r.text().contains(&format!("RECORD {id}.")), "{}", r.text());
                served += 1;
            }
            // A step-up (401 to a POST) or a throttle: a stolen session cannot prove a
            // factor, and goes on until it is held.
            401 => {}
            // Body phase or head, a refusal reads the same: when to come back.
            429 => assert!(r.header("retry-after").is_some(), "{}", r.text()),
            403 => {
                // Whichever phase held it, the refusal names the hold for the help desk.
                assert!(r.header("x-vigie-held").is_some(), "{}", r.text());
                // The detector's doing: a held session is held on every page now.
                let after = send(&mut c, "GET", "/index.php?m=home", "", b"");
                assert!(
                    after.status == 403 && after.header("x-vigie-held").is_some(),
                    "stopped with {} at record {id}, then {}: {}",
                    r.status,
                    after.status,
                    after.text()
                );
                alerted(&jsonl, signal);
                return served;
            }
            other => panic!("unexpected {other} at record {id}: {}", r.text()),
        }
    }
    panic!("the enumeration was never stopped ({served} records served)");
}

/// The alerts name `signal` (the enumeration of patient ids: the ids were read, not only the
/// pace).
fn alerted(jsonl: &std::path::Path, signal: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (text, alerts) = sink_docs(jsonl);
        let found = alerts.iter().any(|alert| {
            alert["vigie"]["evidence"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["signal"] == signal))
        });
        if found {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {signal} in the alerts: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_patient_id_in_a_multipart_body_is_counted() {
    let served = enumerate(|id| {
        let body = format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--b0undary\r\nContent-Disposition: form-data; name='patient_id'\r\n\r\n{id}\r\n--b0undary--\r\n"
        );
        (
            String::new(),
            "multipart/form-data; boundary=b0undary".into(),
            body.into_bytes(),
        )
    });
    assert!(
        served <= 30,
        "{served} records before the session was stopped"
    );
}

#[test]
fn records_in_answers_are_counted_however_the_request_named_them() {
    // No request-side reading at all: only what the record pages answered counts. Random ids
    // in multipart bodies past 64 KiB (no enumeration, no id the gateway was told to read).
    let answers_only = format!("{}{ANSWERS}", RECORDS.split("[[patient]]").next().unwrap());
    let served = enumerate_with(
        &answers_only,
        |n| n * 7919 % 100_000 + 1,
        "patients_short",
        |id| {
            let body = format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"filler\"\r\n\r\n{}\r\n--b0undary\r\nContent-Disposition: form-data; name=\"patient_id\"\r\n\r\n{id}\r\n--b0undary--\r\n",
            "x".repeat(70_000)
        );
            (
                String::new(),
                "multipart/form-data; boundary=b0undary".into(),
                body.into_bytes(),
            )
        },
    );
    assert!(
        served < 100,
        "{served} records before the session was stopped"
    );
}

#[test]
fn a_patient_id_past_64_kib_of_form_is_counted() {
    let served = enumerate(|id| {
        let body = format!("filler={}&patient_id={id}", "x".repeat(70_000));
        (
            String::new(),
            "application/x-www-form-urlencoded".into(),
            body.into_bytes(),
        )
    });
    assert!(
        served <= 30,
        "{served} records before the session was stopped"
    );
}

#[test]
fn a_decoy_past_max_input_vars_does_not_hide_the_query_id() {
    // PHP drops body variables past the 1001st: the decoy never reaches `$_REQUEST`, the
    // query's id does.
    let served = enumerate(|id| {
        let junk: Vec<String> = (0..1001).map(|i| format!("j{i}=1")).collect();
        let body = format!("{}&patient_id=1", junk.join("&"));
        (
            format!("&patient_id={id}"),
            "application/x-www-form-urlencoded".into(),
            body.into_bytes(),
        )
    });
    assert!(
        served <= 30,
        "{served} records before the session was stopped"
    );
}

#[test]
fn a_login_past_64_kib_with_an_encoded_password_name_never_reaches_the_portal() {
    // Past 64 KiB the login reader only scans for the password field's name; PHP decodes
    // `pass%77ord` and ` password` to `password` all the same, and would sign bob in over
    // alice's session. The one reader sees what PHP sees.
    let php = start_php_ini(false, 1, &["display_errors=0"]);
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_variant(&dir, |p| p);
    let gw = gateway_on(&php, &profile, GENEROUS_BUDGETS);
    let (mut c, login) = sign_in(&gw, ALICE);
    assert_eq!(login.status, 302, "{}", login.text());
    for name in ["pass%77ord", "+password", "%20password", "password%00x"] {
        let body = format!(
            "filler={}&login=1&username=bob&{name}=bob-pw",
            "x".repeat(70_000)
        );
        let headers = format!(
            "Origin: http://localhost:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            gw.port,
            body.len()
        );
        let r = send(&mut c, "POST", "/index.php", &headers, body.as_bytes());
        assert_eq!(r.status, 400, "{name}: {}", r.text());
    }
    let home = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert!(
        home.text().contains("AUTHENTICATED-AS alice"),
        "{}",
        home.text()
    );
}
