//! Break-glass: a time-boxed lift of the denials marked liftable (working hours, networks,
//! privileged limits) and of budgets, for a clinical emergency. It needs a written reason and
//! a fresh phishing-resistant factor, alerts the SOC at once, marks every request of the
//! session in the audit log, and ends by itself.

use minijinja::context;

use super::{factor_redirect, field, Visit};
use crate::metrics::METRICS;
use crate::pages;
use crate::pipeline::refusal::Refusal;
use crate::policy::BREAK_GLASS_PATH;

const MIN_REASON: usize = 15;
const MAX_REASON: usize = 1000;

impl Visit<'_> {
    /// `None` when the session has the fresh passkey proof; else the redirect to the prompt.
    /// Break-glass lifts detector step-ups, so while one waits the proof must be newer.
    async fn needs_passkey(&mut self, return_to: &str) -> Result<Option<u16>, Refusal> {
        let here = format!("{BREAK_GLASS_PATH}?return={}", super::encode(return_to));
        let pending = self.step_up_pending();
        if self.requirement_for(&here).met_by(&self.record, self.now()) && !pending {
            return Ok(None);
        }
        let to = match pending {
            true => super::fresh_factor_redirect(&here),
            false => factor_redirect(&here),
        };
        Ok(Some(self.redirect(&to, &[]).await?))
    }

    async fn break_glass_form(
        &mut self,
        return_to: &str,
        error: Option<String>,
    ) -> Result<u16, Refusal> {
        let minutes = self.config.policy.break_glass.duration.as_secs() / 60;
        let intro = pages::count(self.lang, "bg_intro", minutes);
        let ctx = context! { return_to, intro, error };
        self.page(200, "break_glass.html", ctx, false).await
    }
}

/// `GET /.vigie/break-glass?return=…`: the form, after a fresh passkey.
pub async fn page(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let return_to = v.return_to();
    if let Some(status) = v.needs_passkey(&return_to).await? {
        return Ok(status);
    }
    v.break_glass_form(&return_to, None).await
}

/// `POST /.vigie/break-glass`: turn it on for the configured time.
pub async fn activate(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let form = v.form().await?;
    let return_to = crate::pipeline::form::safe_return(&field(&form, "return"));
    if let Some(status) = v.needs_passkey(&return_to).await? {
        return Ok(status);
    }
    let reason: String = field(&form, "reason")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON)
        .collect();
    let reason = reason.trim().to_string();
    if reason.chars().count() < MIN_REASON {
        let error = pages::message(v.lang, "bg_reason_short");
        return v.break_glass_form(&return_to, Some(error)).await;
    }
    if v.record.break_glass_active(v.now()) {
        // It ends by itself; it is not extended by asking again.
        return v.redirect(&return_to, &[]).await;
    }
    let until = v.now() + v.config.policy.break_glass.duration.as_secs();
    let length = reason.chars().count();
    // The chained entry names the record (`vigie audit verify` checks the record against it),
    // and so does the session, whose end names it too.
    let record = crate::audit::new_id();
    let cookie = v
        .rotate(|r| {
            r.break_glass_until = Some(until);
            r.break_glass_reason = Some(reason.clone());
            r.break_glass_record = Some(record.clone());
        })
        .await?;
    METRICS
        .break_glass
        .with_label_values(&[&v.portal.config.name])
        .inc();
    // Neither the alert nor the log carries the free text (a reason may name a patient or a
    // condition): it stays with the session, and in the sealed break-glass record the admin
    // API opens for the review (`/api/break-glass`).
    tracing::error!(target: "vigie::alert", severity = "high", event = "break_glass_alert", user = %v.user, portal = %v.portal.config.name, client = %v.request.client.ip, session = %v.fp(), until, reason_chars = length);
    tracing::warn!(target: "vigie::audit", event = "break_glass", user = %v.user, portal = %v.portal.config.name, session = %v.fp(), until, reason_chars = length, record = %record);
    // The record the review needs, kept past the session: the reason sealed at rest.
    crate::audit::break_glass(crate::audit::BreakGlass {
        id: record,
        at_us: crate::audit::now_us(),
        user: v.user.clone(),
        portal: v.portal.config.name.clone(),
        session: v.fp(),
        until: until as i64,
        reason,
    });
    v.redirect(&return_to, &[cookie]).await
}
