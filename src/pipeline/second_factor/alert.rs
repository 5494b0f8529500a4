//! What the SOC is told when a second factor changes outside the usual path.

use super::Visit;
use crate::alerts::{Alert, Severity};

/// What happened, for the SOC: rule id, name, severity, risk.
pub(super) struct Rule {
    id: &'static str,
    name: &'static str,
    severity: Severity,
    risk: u8,
}

/// A recovery code replaced a lost factor. The user may be a clinician whose phone was
/// stolen, or someone holding their password and their printed codes: the SOC checks with
/// the user.
pub(super) const LOST_REPLACED: Rule = Rule {
    id: "VIGIE-FACTOR-REPLACED-WITH-RECOVERY-CODE",
    name: "A recovery code was used to replace a lost second factor; the old ones no longer work",
    severity: Severity::Medium,
    risk: 60,
};

/// That replacement was undone by a factor the user had before it: one of the two was not
/// the user.
pub(super) const LOST_UNDONE: Rule = Rule {
    id: "VIGIE-RECOVERY-REPLACEMENT-UNDONE",
    name: "A factor replaced with a recovery code was removed by a factor the user had before it: one of them was not the user",
    severity: Severity::High,
    risk: 80,
};

/// The alert for `rule`, about this visit's user and session. Carries no secret, no code,
/// no patient.
pub(super) fn factor_alert(v: &Visit<'_>, rule: Rule, method: &str) -> Alert {
    let name = format!("{} ({method})", rule.name);
    let event = Alert::account_event(rule.id, name, &v.user, &v.portal.config.name);
    let user_agent = super::super::normalise::headers::user_agent(v.session.req_header());
    Alert {
        severity: rule.severity,
        risk_score: rule.risk,
        groups: v.record.groups.clone(),
        privileged: v.privileged(),
        session_hash: v.fp(),
        source_ip: Some(v.request.client.ip),
        user_agent: user_agent.chars().take(256).collect(),
        method: "POST".into(),
        url_path: v.request.target.path.clone(),
        // A passkey ceremony answers JSON; the forms redirect.
        status: if v.request.target.path.starts_with("/.vigie/passkey/") {
            200
        } else {
            303
        },
        request_ids: vec![v.request_id.to_string()],
        // Account Manipulation: Device Registration.
        techniques: vec!["T1098.005"],
        ..event
    }
}
