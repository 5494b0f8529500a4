use crate::config::Config;
use std::path::Path;

const MINIMAL: &str = "[[listener]]\naddress = \"127.0.0.1:8080\"\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:8081\"\n";

fn keys(extra: &str) -> Vec<String> {
    let text = format!("{MINIMAL}\n{extra}");
    match Config::from_toml(Path::new("t.toml"), &text) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.into_iter().map(|e| e.key).collect(),
    }
}

#[test]
fn defaults_are_valid_and_documented_values_apply() {
    let text = format!("{MINIMAL}\n[detection]\nhold_minutes = 30\nhoneytokens = [\"999001\"]\nworking_hours = \"07:00-20:00\"\n[detection.thresholds]\nenumeration_run = 6\n[detection.weights]\nscripted_agent = 0.5\n[detection.actions]\nsuspend = 95\n[alerts]\njsonl = \"alerts.jsonl\"\n[alerts.syslog]\naddress = \"siem.local:514\"\nformat = \"cef\"\n");
    let c = Config::from_toml(Path::new("/etc/vigie/vigie.toml"), &text).unwrap();
    assert_eq!(c.detection.hold_minutes, 30);
    assert_eq!(c.detection.thresholds.enumeration_run, 6.0);
    assert_eq!(c.detection.weights["scripted_agent"], 0.5);
    assert_eq!(c.detection.bands.suspend, 95);
    assert_eq!(c.detection.honeytokens, vec!["999001"]);
    assert!(c.detection.working_hours.is_some());
    assert_eq!(
        c.alerts.jsonl.as_deref(),
        Some(Path::new("/etc/vigie/alerts.jsonl"))
    );
    assert!(
        c.alerts.store.is_some(),
        "alerts are kept for the SOC by default"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn bad_detection_and_alert_settings_name_their_key() {
    let found = keys("[detection]\nhold_minutes = 0\nworking_days = [\"mon\"]\n[detection.thresholds]\nshort_mn = 3\nlong_min = -1\n[detection.weights]\nenumerashun = 1\nfast = 2\n[detection.actions]\nalert = 95\nsuspend = 90\n[alerts.syslog]\naddress = \"siem\"\ntransport = \"carrier-pigeon\"\n[alerts.webhook]\nurl = \"ftp://x\"\nheaders = { Authorization = \"env:VIGIE_TEST_UNSET_VARIABLE\" }\n");
    for key in [
        "detection.hold_minutes",
        "detection.working_days",
        "detection.thresholds.short_mn",
        "detection.thresholds.long_min",
        "detection.weights.enumerashun",
        "detection.weights.fast",
        "detection.actions",
        "alerts.syslog.address",
        "alerts.syslog.transport",
        "alerts.webhook.url",
        "alerts.webhook.headers.Authorization",
    ] {
        assert!(found.iter().any(|k| k == key), "{key} not in {found:?}");
    }
}

#[test]
fn switching_detection_off_is_a_warning() {
    let text = format!("{MINIMAL}\n[detection]\nenabled = false\n");
    let c = Config::from_toml(Path::new("t.toml"), &text).unwrap();
    assert!(!c.detection.enabled);
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("[detection] enabled = false")));
}
