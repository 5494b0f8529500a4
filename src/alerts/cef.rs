//! ArcSight Common Event Format lines, for SIEMs that parse CEF rather than JSON.

use std::fmt::Write;

use super::Alert;

/// Header fields escape `\` and `|`; a line break would end the record, so it becomes a space.
fn header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Extension values escape `\`, `=` and line breaks.
fn value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// A security event (not an alert) from its ECS document: `CEF:0|Vigie|Vigie|version|event|
/// event|severity|extensions`.
pub(crate) fn event_line(ecs: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let action = text(&ecs["event"]["action"]);
    let severity = match ecs["log"]["level"].as_str() {
        Some("error") => 8,
        Some("warn") => 5,
        _ => 3,
    };
    let mut out = format!(
        "CEF:0|Vigie|Vigie|{}|{}|{}|{severity}|",
        header(env!("CARGO_PKG_VERSION")),
        header(&action),
        header(&action.replace('_', " ")),
    );
    let ext = [
        ("externalId", text(&ecs["event"]["id"])),
        ("suser", text(&ecs["user"]["name"])),
        ("src", text(&ecs["source"]["ip"])),
        ("outcome", text(&ecs["event"]["outcome"])),
        ("msg", ecs["vigie"]["audit"].to_string()),
    ];
    let parts: Vec<String> = ext
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", value(v)))
        .collect();
    out += &parts.join(" ");
    out
}

/// `CEF:0|Vigie|Vigie|version|rule id|rule name|severity|extensions`.
pub(crate) fn line(alert: &Alert) -> String {
    let mut out = format!(
        "CEF:0|Vigie|Vigie|{}|{}|{}|{}|",
        header(env!("CARGO_PKG_VERSION")),
        header(&alert.rule_id),
        header(&alert.rule_name),
        alert.severity.cef(),
    );
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", (alert.at_us / 1000).to_string()),
        ("start", (alert.window_start_us / 1000).to_string()),
        ("end", (alert.window_end_us / 1000).to_string()),
        ("externalId", alert.id.clone()),
        ("suser", alert.user.clone()),
        ("destinationServiceName", alert.portal.clone()),
        ("requestMethod", alert.method.clone()),
        ("request", alert.path_only().to_string()),
        ("requestClientApplication", alert.user_agent.clone()),
        ("act", alert.action.clone()),
        ("cs1Label", "riskScore".into()),
        ("cs1", alert.risk_score.to_string()),
        ("cs2Label", "techniques".into()),
        ("cs2", alert.techniques.join(",")),
        ("cs3Label", "dedupKey".into()),
        ("cs3", alert.dedup_key.clone()),
        ("cs4Label", "sessionHash".into()),
        ("cs4", alert.session_hash.clone()),
        ("cn1Label", "distinctPatients".into()),
        ("cn1", alert.distinct_patients.to_string()),
    ];
    if let Some(ip) = alert.source_ip {
        ext.insert(5, ("src", ip.to_string()));
    }
    for (i, (key, v)) in ext.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        // Writing to a String cannot fail.
        let _ = write!(out, "{sep}{key}={}", value(v));
    }
    out
}
