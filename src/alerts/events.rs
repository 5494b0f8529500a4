//! Security events that are not alerts (sign-ins, locks, factor changes, holds, console and
//! admin actions, store outages) for the SIEM: every entry of the audit trail as one ECS
//! `event.kind: event` document. What an entry carries was chosen for the trail (no secret,
//! no free text: a break-glass reason or an analyst's note is sealed in the store and only
//! counted here), so the document carries the same. It is sent as the writer takes the entry,
//! before the store has it: a store outage does not keep it from the SIEM.

use serde_json::{json, Map, Value};

use super::ecs::{rfc3339_ms, ECS_VERSION};
use crate::audit::Entry;

/// ECS categories of an event name.
fn category(event: &str) -> &'static str {
    match event {
        e if e.starts_with("login") || e.starts_with("console_login") || e == "logout" => {
            "authentication"
        }
        e if e.contains("factor") || e.contains("invitation") || e.contains("recovery") => "iam",
        e if e.contains("lock") || e.contains("session") => "session",
        e if e.contains("store") || e.contains("shared_state") || e.contains("records") => {
            "database"
        }
        "config_reload" | "upgrade_refused" => "configuration",
        _ => "process",
    }
}

/// The ECS document of an audit entry.
pub fn to_ecs(e: &Entry) -> Value {
    let mut fields: Map<String, Value> = e.fields.clone();
    let outcome = match fields.get("outcome").and_then(Value::as_str) {
        Some("success" | "accepted" | "password") => "success",
        Some(_) => "failure",
        None => "unknown",
    };
    let client = fields
        .remove("client")
        .and_then(|c| c.as_str().map(str::to_string));
    let message = fields
        .remove("message")
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_else(|| e.event.replace('_', " "));
    let mut doc = json!({
        "@timestamp": rfc3339_ms(e.at_us),
        "message": message,
        "ecs": { "version": ECS_VERSION },
        "event": {
            "kind": "event",
            "category": [category(&e.event)],
            "action": e.event,
            "outcome": outcome,
            "id": e.id,
            "severity": match e.level.as_str() { "error" => 73, "warn" => 47, _ => 21 },
        },
        "log": { "level": e.level },
        "observer": { "product": "Vigie", "vendor": "Vigie", "type": "proxy" },
        "vigie": { "audit": fields },
    });
    if let Some(user) = &e.user {
        doc["user"] = json!({ "name": user });
    }
    if let Some(ip) = client.filter(|c| c.parse::<std::net::IpAddr>().is_ok()) {
        doc["source"] = json!({ "ip": ip });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_becomes_an_ecs_event_with_its_user_source_and_outcome() {
        let e = Entry {
            id: "e1".into(),
            at_us: 1_796_151_738_000_000,
            level: "warn".into(),
            event: "login".into(),
            user: Some("dr.martin".into()),
            fields: json!({ "outcome": "failure", "client": "10.1.2.3", "portal": "ehr" })
                .as_object()
                .unwrap()
                .clone(),
            link: None,
        };
        let doc = to_ecs(&e);
        assert_eq!(doc["event"]["kind"], "event");
        assert_eq!(doc["event"]["category"][0], "authentication");
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["user"]["name"], "dr.martin");
        assert_eq!(doc["source"]["ip"], "10.1.2.3");
        assert_eq!(
            doc["vigie"]["audit"],
            json!({ "outcome": "failure", "portal": "ehr" })
        );
    }
}
