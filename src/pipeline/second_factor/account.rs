//! The user's security settings: enrolled factors, passkeys to add or remove, recovery
//! codes to regenerate. Everything here needs a recent second factor (the policy's
//! requirement for [`crate::policy::ACCOUNT_PATH`]); a stale session is sent to the prompt.

use minijinja::context;

use super::{factor_redirect, field, store_down, Visit};
use crate::metrics::METRICS;
use crate::pages;
use crate::pipeline::refusal::Refusal;

impl Visit<'_> {
    /// `None` when the session's factor is recent enough; else the redirect to the prompt.
    /// While a detector step-up waits, only a proof newer than it will do: new recovery
    /// codes would otherwise meet the step-up without one.
    async fn needs_fresh_factor(&mut self) -> Result<Option<u16>, Refusal> {
        let need = self.requirement_for(crate::policy::ACCOUNT_PATH);
        let pending = self.step_up_pending();
        if need.met_by(&self.record, self.now()) && !pending {
            return Ok(None);
        }
        let to = match pending {
            true => super::fresh_factor_redirect(crate::policy::ACCOUNT_PATH),
            false => factor_redirect(crate::policy::ACCOUNT_PATH),
        };
        Ok(Some(self.redirect(&to, &[]).await?))
    }
}

fn date(t: u64) -> String {
    // Days since the epoch to a civil date (no time-zone data needed for a day).
    let days = (t / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `GET /.vigie/account`.
pub async fn page(mut v: Visit<'_>, message: Option<String>) -> Result<u16, Refusal> {
    if let Some(status) = v.needs_fresh_factor().await? {
        return Ok(status);
    }
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    let left = v
        .factors
        .recovery_codes_left(&v.user)
        .await
        .map_err(store_down)?;
    let passkeys: Vec<_> = factors
        .passkeys
        .iter()
        .map(|p| {
            context! {
                id => p.id(),
                name => p.name.clone(),
                created => date(p.created),
                last_used => p.last_used.map(date),
            }
        })
        .collect();
    let ctx = context! {
        has_totp => factors.totp.is_some(),
        passkeys,
        codes_left => left,
        fresh_minutes => v.factors.config.fresh_window.as_secs() / 60,
        message,
    };
    v.page(200, "account.html", ctx, true).await
}

/// `POST /.vigie/account/passkey/remove`: never the last factor.
pub async fn remove_passkey(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let form = v.form().await?;
    if let Some(status) = v.needs_fresh_factor().await? {
        return Ok(status);
    }
    let id = field(&form, "id");
    let removal = v
        .factors
        .remove_passkey(&v.user, &id)
        .await
        .map_err(store_down)?;
    match removal {
        crate::factors::Removal::Removed => {
            METRICS
                .enrollments
                .with_label_values(&["passkey_removed"])
                .inc();
            tracing::warn!(target: "vigie::audit", event = "factor_removed", method = "passkey", user = %v.user, client = %v.request.client.ip);
            let msg = pages::message(v.lang, "removed");
            page(v, Some(msg)).await
        }
        crate::factors::Removal::LastFactor => {
            let msg = pages::message(v.lang, "cannot_remove_last");
            page(v, Some(msg)).await
        }
        crate::factors::Removal::NotFound => page(v, None).await,
    }
}

/// `POST /.vigie/account/codes`: ten new codes; the old ones stop working.
pub async fn new_codes(mut v: Visit<'_>) -> Result<u16, Refusal> {
    v.form().await?;
    if let Some(status) = v.needs_fresh_factor().await? {
        return Ok(status);
    }
    let codes = v
        .factors
        .new_recovery_codes(&v.user)
        .await
        .map_err(store_down)?;
    let sealed = v
        .factors
        .seal(&v.user, "fresh-codes", codes.join("\n").as_bytes());
    v.save_record(|r| r.fresh_codes = Some(sealed.clone()))
        .await?;
    tracing::warn!(target: "vigie::audit", event = "recovery_codes_regenerated", user = %v.user, client = %v.request.client.ip);
    let to = format!(
        "/.vigie/codes?return={}",
        super::encode(crate::policy::ACCOUNT_PATH)
    );
    v.redirect(&to, &[]).await
}

#[cfg(test)]
mod tests;
