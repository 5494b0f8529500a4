//! The Elastic Common Schema shape of an alert, the one document every sink ships.

use serde_json::{json, Value};

use super::Alert;

/// The ECS release whose field set the document follows.
pub const ECS_VERSION: &str = "8.11.0";

/// RFC 3339 UTC with milliseconds; out-of-range times fall back to the epoch rather than fail.
pub(crate) fn rfc3339_ms(unix_us: i64) -> String {
    let ts = jiff::Timestamp::from_microsecond(unix_us).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Alert {
    /// The alert as an ECS 8.x `event.kind: alert` document, with Vigie's own fields under `vigie`.
    pub fn to_ecs(&self) -> Value {
        let evidence: Vec<Value> = self
            .evidence
            .iter()
            .map(|e| {
                json!({
                    "signal": e.signal,
                    "observed": e.observed,
                    "baseline": e.baseline,
                    "threshold": e.threshold,
                    "detail": e.detail,
                })
            })
            .collect();
        // One readable line for SIEM list views: who, what, how risky, what was done; no
        // patient data (pseudonyms stay in `vigie.patients`).
        let message = format!(
            "{} — user {} on {} (risk {}, {}; {} {} answered {})",
            self.rule_name,
            self.user,
            self.portal,
            self.risk_score,
            self.action,
            self.method,
            self.path_only(),
            self.status
        );
        let mut doc = json!({
            "@timestamp": rfc3339_ms(self.at_us),
            "message": message,
            "ecs": { "version": ECS_VERSION },
            "event": {
                "kind": "alert",
                "category": ["intrusion_detection"],
                "type": ["info"],
                "id": self.id,
                "severity": self.severity.ecs(),
                "risk_score": self.risk_score,
                "action": self.action,
                "start": rfc3339_ms(self.window_start_us),
                "end": rfc3339_ms(self.window_end_us),
            },
            "rule": { "id": self.rule_id, "name": self.rule_name },
            "user": { "name": self.user, "roles": self.groups },
            "user_agent": { "original": self.user_agent },
            "url": { "path": self.path_only() },
            "http": {
                "request": { "method": self.method },
                "response": { "status_code": self.status },
            },
            "threat": {
                "framework": "MITRE ATT&CK",
                "technique": { "id": self.techniques },
            },
            "observer": { "product": "Vigie", "vendor": "Vigie", "type": "proxy" },
            "service": { "name": self.portal },
            "vigie": {
                "privileged": self.privileged,
                "session": { "hash": self.session_hash },
                "severity": self.severity.as_str(),
                "evidence": evidence,
                "patients": {
                    "distinct": self.distinct_patients,
                    "pseudonyms": self.patient_pseudonyms,
                },
                "request_ids": self.request_ids,
                "suggested_action": self.action,
                "dedup_key": self.dedup_key,
            },
        });
        // ECS leaves absent fields out rather than null; a client address may be unknown.
        if let Some(ip) = self.source_ip {
            doc["source"] = json!({ "ip": ip.to_string() });
        }
        doc
    }
}
