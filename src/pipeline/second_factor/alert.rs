//! What the SOC is told when a second factor changes outside the usual path.

use super::Visit;
use crate::alerts::{Alert, Severity};

/// A recovery code replaced a lost factor. The user may be a clinician whose phone was
/// stolen, or someone holding their password and their printed codes: the SOC checks with
/// the user. Carries no secret, no code, no patient.
pub(super) fn lost_factor_replaced(v: &Visit<'_>, method: &str) -> Alert {
    let now_us = crate::audit::now_us();
    let rule_id = "VIGIE-FACTOR-REPLACED-WITH-RECOVERY-CODE";
    let user_agent = super::super::normalise::headers::user_agent(v.session.req_header());
    Alert {
        id: Alert::new_id(),
        at_us: now_us,
        rule_id: rule_id.into(),
        rule_name: format!(
            "A recovery code was used to replace a lost second factor ({method}); the old ones no longer work"
        ),
        severity: Severity::Medium,
        risk_score: 60,
        portal: v.portal.config.name.clone(),
        user: v.user.clone(),
        groups: v.record.groups.clone(),
        privileged: v.record.privileged || v.config.is_privileged(&v.record.groups),
        session_hash: v.fp(),
        source_ip: Some(v.request.client.ip),
        user_agent: user_agent.chars().take(256).collect(),
        method: "POST".into(),
        url_path: v.request.target.path.clone(),
        status: if method == "passkey" { 200 } else { 303 },
        window_start_us: now_us,
        window_end_us: now_us,
        evidence: Vec::new(),
        distinct_patients: 0,
        patient_pseudonyms: Vec::new(),
        request_ids: vec![v.request_id.to_string()],
        // Account Manipulation: Device Registration.
        techniques: vec!["T1098.005"],
        action: "alert".into(),
        dedup_key: format!("{rule_id}:{}", v.user),
    }
}
