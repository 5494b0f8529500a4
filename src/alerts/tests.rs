//! The ECS document, the file sinks and the dispatcher; helpers for the socket tests.

use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;
use crate::metrics::METRICS;

const AT_US: i64 = 1_700_000_000_123_456;
pub(super) const WAIT: Duration = Duration::from_secs(5);

pub(crate) fn sample(rule_id: &str) -> Alert {
    Alert {
        id: Alert::new_id(),
        at_us: AT_US,
        rule_id: rule_id.into(),
        rule_name: "Sequential patient enumeration".into(),
        severity: Severity::High,
        risk_score: 87,
        portal: "ehr".into(),
        user: "dr.martin".into(),
        groups: vec!["clinicians".into(), "cardiology".into()],
        privileged: false,
        session_hash: "s-9c1e77".into(),
        source_ip: Some("192.0.2.10".parse().unwrap()),
        user_agent: "Mozilla/5.0".into(),
        method: "GET".into(),
        url_path: "/patients/{id}/record".into(),
        status: 200,
        window_start_us: AT_US - 300_000_000,
        window_end_us: AT_US,
        evidence: vec![Evidence {
            signal: "sequential_ids".into(),
            observed: 42.0,
            baseline: Some(3.5),
            threshold: 20.0,
            detail: "42 consecutive record ids in 5 minutes".into(),
        }],
        distinct_patients: 42,
        patient_pseudonyms: vec!["p-3f9a01".into(), "p-77b2c4".into()],
        request_ids: vec!["req-1".into(), "req-2".into()],
        techniques: vec!["T1078", "T1213"],
        action: "step_up".into(),
        dedup_key: "VIGIE-EXF-003:dr.martin:ehr".into(),
        context: None,
    }
}

fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            out.push(k);
            strings(v, out)
        }),
        _ => {}
    }
}

#[test]
fn ecs_document_has_the_alert_shape() {
    let mut alert = sample("VIGIE-EXF-003");
    alert.url_path = "/patients/123/record?mrn=998877#top".into();
    let doc = alert.to_ecs();
    assert_eq!(doc["@timestamp"], "2023-11-14T22:13:20.123Z");
    assert_eq!(doc["ecs"]["version"], ECS_VERSION);
    assert_eq!(doc["event"]["kind"], "alert");
    assert_eq!(doc["event"]["category"][0], "intrusion_detection");
    assert_eq!(doc["event"]["type"][0], "info");
    assert_eq!(doc["event"]["id"], alert.id.as_str());
    assert_eq!(doc["event"]["severity"], 73);
    assert_eq!(doc["event"]["risk_score"], 87);
    assert_eq!(doc["event"]["action"], "step_up");
    assert_eq!(doc["event"]["start"], "2023-11-14T22:08:20.123Z");
    assert_eq!(doc["event"]["end"], "2023-11-14T22:13:20.123Z");
    assert_eq!(doc["rule"]["id"], "VIGIE-EXF-003");
    assert_eq!(doc["rule"]["name"], "Sequential patient enumeration");
    assert_eq!(doc["user"]["name"], "dr.martin");
    assert_eq!(doc["user"]["roles"][1], "cardiology");
    assert_eq!(doc["source"]["ip"], "192.0.2.10");
    assert_eq!(doc["user_agent"]["original"], "Mozilla/5.0");
    assert_eq!(doc["url"]["path"], "/patients/123/record");
    assert_eq!(doc["http"]["request"]["method"], "GET");
    assert_eq!(doc["http"]["response"]["status_code"], 200);
    assert_eq!(doc["threat"]["framework"], "MITRE ATT&CK");
    assert_eq!(doc["threat"]["technique"]["id"][1], "T1213");
    assert_eq!(doc["observer"]["product"], "Vigie");
    assert_eq!(doc["observer"]["vendor"], "Vigie");
    assert_eq!(doc["observer"]["type"], "proxy");
    assert_eq!(doc["service"]["name"], "ehr");
    let vigie = &doc["vigie"];
    assert_eq!(vigie["privileged"], false);
    assert_eq!(vigie["session"]["hash"], "s-9c1e77");
    assert_eq!(vigie["severity"], "high");
    assert_eq!(vigie["evidence"][0]["signal"], "sequential_ids");
    assert_eq!(vigie["evidence"][0]["baseline"], 3.5);
    assert_eq!(vigie["evidence"][0]["threshold"], 20.0);
    assert_eq!(vigie["patients"]["distinct"], 42);
    assert_eq!(vigie["patients"]["pseudonyms"][0], "p-3f9a01");
    assert_eq!(vigie["patients"]["pseudonyms"][1], "p-77b2c4");
    assert_eq!(vigie["request_ids"][0], "req-1");
    assert_eq!(vigie["suggested_action"], "step_up");
    assert_eq!(vigie["dedup_key"], "VIGIE-EXF-003:dr.martin:ehr");

    let mut all = Vec::new();
    strings(&doc, &mut all);
    assert!(all.iter().all(|s| !s.contains('?') && !s.contains("mrn")));

    alert.source_ip = None;
    alert.evidence[0].baseline = None;
    let doc = alert.to_ecs();
    assert!(doc.get("source").is_none());
    assert!(doc["vigie"]["evidence"][0]["baseline"].is_null());
}

#[test]
fn severity_scales() {
    let all = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    let ecs: Vec<u8> = all.iter().map(|s| s.ecs()).collect();
    let syslog: Vec<u8> = all.iter().map(|s| s.syslog()).collect();
    let cef: Vec<u8> = all.iter().map(|s| s.cef()).collect();
    assert_eq!(ecs, [21, 47, 73, 99]);
    assert_eq!(syslog, [5, 4, 3, 2]);
    assert_eq!(cef, [3, 5, 8, 10]);
    let mut alert = sample("VIGIE-EXF-001");
    alert.severity = Severity::Critical;
    assert_eq!(alert.to_ecs()["event"]["severity"], 99);
    assert_eq!(alert.to_ecs()["vigie"]["severity"], "critical");
}

#[test]
fn jsonl_sink_appends_one_line_per_alert_and_follows_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.jsonl");
    let alerts = Alerts::start(SinkSettings {
        jsonl: Some(path.clone()),
        ..SinkSettings::default()
    })
    .unwrap();
    let raised: Vec<Alert> = (0..3).map(|_| sample("VIGIE-EXF-003")).collect();
    let ids: Vec<String> = raised.iter().map(|a| a.id.clone()).collect();
    raised.into_iter().for_each(|a| alerts.raise(a));
    assert!(alerts.flush(Duration::from_secs(5)));

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, id) in lines.iter().zip(&ids) {
        let doc: Value = serde_json::from_str(line).unwrap();
        assert_eq!(doc["event"]["id"], id.as_str());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    std::fs::rename(&path, dir.path().join("alerts.jsonl.1")).unwrap();
    let next = sample("VIGIE-EXF-003");
    let next_id = next.id.clone();
    alerts.raise(next);
    assert!(alerts.flush(Duration::from_secs(5)));
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(doc["event"]["id"], next_id.as_str());
}

#[test]
fn store_lists_newest_first_and_tracks_status() {
    let dir = tempfile::tempdir().unwrap();
    store_contract(&AlertStore::open(&dir.path().join("alerts.db")).unwrap());
}

/// What every alert store does (the PostgreSQL one runs it too): listing, filters, counts,
/// and triage with its rules, conflicts and history.
pub(crate) fn store_contract(store: &AlertStore) {
    use super::triage::{Change, Filter, Resolution, Status, TriageError};
    let mut ids = Vec::new();
    let kinds = [
        ("VIGIE-EXF-003", Severity::High, 87, "dr.martin", "ehr"),
        ("VIGIE-EXF-001", Severity::Medium, 55, "inf.durand", "ehr"),
        ("VIGIE-EXF-003", Severity::Critical, 95, "dr.martin", "lab"),
    ];
    for (i, (rule, severity, risk, user, portal)) in kinds.into_iter().enumerate() {
        let mut alert = sample(rule);
        alert.at_us = AT_US + i as i64 * 1_000_000;
        (alert.severity, alert.risk_score) = (severity, risk);
        (alert.user, alert.portal) = (user.into(), portal.into());
        store.insert(&alert, &alert.to_ecs()).unwrap();
        ids.push(alert.id);
    }
    let recent = store.recent(2).unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0]["event"]["id"], ids[2].as_str());
    assert_eq!(recent[1]["event"]["id"], ids[1].as_str());
    assert_eq!(recent[0]["vigie"]["status"], "new");

    let listed = |f: Filter| -> Vec<String> {
        store
            .list(&Filter { limit: 10, ..f })
            .unwrap()
            .iter()
            .map(|a| a["event"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let id = |i: usize| ids[i].clone();
    assert_eq!(listed(Filter::default()), [id(2), id(1), id(0)]);
    let f = Filter {
        riskiest: true,
        ..Filter::default()
    };
    assert_eq!(listed(f), [id(2), id(0), id(1)]);
    let f = Filter {
        rule: Some("VIGIE-EXF-003".into()),
        ..Filter::default()
    };
    assert_eq!(listed(f), [id(2), id(0)]);
    let f = Filter {
        user: Some("inf.durand".into()),
        ..Filter::default()
    };
    assert_eq!(listed(f), [id(1)]);
    let f = Filter {
        portal: Some("lab".into()),
        ..Filter::default()
    };
    assert_eq!(listed(f), [id(2)]);
    let f = Filter {
        severities: vec!["high".into(), "critical".into()],
        ..Filter::default()
    };
    assert_eq!(listed(f), [id(2), id(0)]);
    let f = Filter {
        since_us: Some(AT_US + 1_000_000),
        until_us: Some(AT_US + 2_000_000),
        ..Filter::default()
    };
    assert_eq!(listed(f), [id(1)]);

    // Triage: forward, by a named analyst, from the status they saw.
    let to = |expected, to, resolution| Change::Status {
        expected,
        to,
        resolution,
    };
    let triage_error = |r: Result<(), SinkError>| match r {
        Err(SinkError::Triage(t)) => t,
        other => panic!("expected a triage error, got {other:?}"),
    };
    store
        .change(
            &id(2),
            &to(Status::New, Status::Acknowledged, None),
            "ana.soc",
            Some("vu, j'appelle le service"),
        )
        .unwrap();
    // Someone else, who still saw it new, is told it changed rather than overwriting it.
    assert_eq!(
        triage_error(store.change(
            &id(2),
            &to(Status::New, Status::Investigating, None),
            "bob.soc",
            None
        )),
        TriageError::Conflict("acknowledged".into())
    );
    assert_eq!(
        triage_error(store.change(
            &id(2),
            &to(Status::Acknowledged, Status::New, None),
            "ana.soc",
            None
        )),
        TriageError::Backwards {
            from: "acknowledged",
            to: "new"
        }
    );
    assert_eq!(
        triage_error(store.change(
            &id(2),
            &to(Status::Acknowledged, Status::Closed, None),
            "ana.soc",
            None
        )),
        TriageError::ResolutionNeeded
    );
    assert_eq!(
        triage_error(store.change(
            "0000000000000000",
            &to(Status::New, Status::Acknowledged, None),
            "ana.soc",
            None
        )),
        TriageError::NotFound
    );
    store
        .change(
            &id(2),
            &Change::Assign(Some("bob.soc".into())),
            "ana.soc",
            None,
        )
        .unwrap();
    store
        .change(
            &id(2),
            &to(
                Status::Acknowledged,
                Status::Closed,
                Some(Resolution::FalsePositive),
            ),
            "bob.soc",
            Some("garde de nuit, liste de service"),
        )
        .unwrap();
    assert_eq!(
        triage_error(store.change(
            &id(2),
            &to(Status::Closed, Status::Investigating, None),
            "bob.soc",
            None
        )),
        TriageError::NoteNeeded,
        "reopening says why"
    );
    store
        .change(
            &id(1),
            &Change::Note,
            "ana.soc",
            Some("même poste que l'alerte d'hier"),
        )
        .unwrap();

    let shown = store.get(&id(2)).unwrap().unwrap();
    let t = &shown["vigie"]["triage"];
    assert_eq!(
        (
            t["status"].as_str(),
            t["resolution"].as_str(),
            t["assignee"].as_str()
        ),
        (Some("closed"), Some("false_positive"), Some("bob.soc"))
    );
    assert!(t["updated_us"].as_i64().unwrap() > 0);
    let history = store.history(&id(2)).unwrap();
    let lines: Vec<(String, String, Option<String>, Option<String>)> = history
        .iter()
        .map(|e| {
            (
                e.analyst.clone(),
                e.kind.clone(),
                e.before.clone(),
                e.after.clone(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                "ana.soc".into(),
                "status".into(),
                Some("new".into()),
                Some("acknowledged".into())
            ),
            (
                "ana.soc".into(),
                "assign".into(),
                None,
                Some("bob.soc".into())
            ),
            (
                "bob.soc".into(),
                "status".into(),
                Some("acknowledged".into()),
                Some("closed:false_positive".into())
            ),
        ]
    );
    assert_eq!(history[0].note.as_deref(), Some("vu, j'appelle le service"));
    assert_eq!(history[1].note, None);
    assert_eq!(store.history(&id(1)).unwrap()[0].kind, "note");
    assert!(store.get("0000000000000000").unwrap().is_none());

    // Counts per status, every status named; with the other filters applied.
    let counts = store.counts(&Filter::default()).unwrap();
    assert_eq!(
        counts,
        [
            (Status::New, 2),
            (Status::Acknowledged, 0),
            (Status::Investigating, 0),
            (Status::Closed, 1)
        ]
    );
    let f = Filter {
        statuses: vec![Status::New],
        ..Filter::default()
    };
    assert_eq!(listed(f.clone()), [id(1), id(0)]);
    let by_user = Filter {
        user: Some("dr.martin".into()),
        ..f
    };
    assert_eq!(store.counts(&by_user).unwrap()[0], (Status::New, 1));
    assert_eq!(store.counts(&by_user).unwrap()[3], (Status::Closed, 1));

    // The same alert delivered twice (a retried sink) is kept once.
    let again = sample("VIGIE-EXF-003");
    store.insert(&again, &again.to_ecs()).unwrap();
    store.insert(&again, &again.to_ecs()).unwrap_or(());
    assert_eq!(store.recent(10).unwrap().len(), 4);

    // Past the retention: the alerts raised before, and their history, go.
    store
        .change(&id(0), &Change::Note, "ana.soc", Some("à revoir"))
        .unwrap();
    assert_eq!(store.prune(AT_US + 1).unwrap(), 2, "id 0 and the duplicate");
    assert_eq!(store.recent(10).unwrap().len(), 2);
    assert!(store.get(&id(0)).unwrap().is_none());
    assert!(store.history(&id(0)).unwrap().is_empty());
    assert_eq!(
        store.history(&id(2)).unwrap().len(),
        3,
        "the others keep theirs"
    );
}

#[test]
fn store_sink_fills_the_store_the_admin_api_reads() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = Alerts::start(SinkSettings {
        store: Some(dir.path().join("alerts.db")),
        ..SinkSettings::default()
    })
    .unwrap();
    let alert = sample("VIGIE-EXF-003");
    let id = alert.id.clone();
    alerts.raise(alert);
    assert!(alerts.flush(Duration::from_secs(5)));
    let store = alerts.store().expect("a store is configured");
    let recent = store.recent(10).unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0]["event"]["id"], id.as_str());
    let ack = super::triage::Change::Status {
        expected: super::triage::Status::New,
        to: super::triage::Status::Acknowledged,
        resolution: None,
    };
    store.change(&id, &ack, "ana.soc", None).unwrap();
    assert_eq!(
        store.recent(1).unwrap()[0]["vigie"]["status"],
        "acknowledged"
    );
}

#[test]
fn start_fails_on_a_bad_file_or_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").join("alerts.jsonl");
    let err = Alerts::start(SinkSettings {
        jsonl: Some(missing),
        ..SinkSettings::default()
    })
    .err()
    .expect("the directory does not exist");
    assert!(matches!(err, AlertError::Sink { sink: "jsonl", .. }));

    let err = Alerts::start(SinkSettings {
        webhook: Some(WebhookSettings {
            url: "ftp://siem.example/hook".into(),
            ..WebhookSettings::default()
        }),
        ..SinkSettings::default()
    })
    .err()
    .expect("only http and https");
    assert!(matches!(
        err,
        AlertError::Sink {
            sink: "webhook",
            ..
        }
    ));
}

#[test]
fn disabled_alerts_still_count() {
    let counter = METRICS
        .alerts
        .with_label_values(&["VIGIE-TEST-DISABLED", "high"]);
    let before = counter.get();
    let alerts = Alerts::disabled();
    alerts.raise(sample("VIGIE-TEST-DISABLED"));
    assert_eq!(counter.get(), before + 1);
    assert!(alerts.store().is_none());
    assert!(alerts.flush(Duration::from_millis(10)));
}

pub(super) fn accept_within(listener: &TcpListener, wait: Duration) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(WAIT)).unwrap();
                return Some(stream);
            }
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Err(_) => return None,
        }
    }
}
