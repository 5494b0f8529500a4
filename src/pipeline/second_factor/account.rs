//! The user's security settings: enrolled factors, passkeys to add or remove, the
//! authenticator app to replace, recovery codes to regenerate. Everything here needs a recent
//! second factor (the policy's requirement for [`crate::policy::ACCOUNT_PATH`]); a stale
//! session is sent to the prompt. What the proof allows is [`FactorRights`]: a recovery-code
//! session sees the one replacement it may make, and nothing else.

use minijinja::context;

use super::{encode, factor_redirect, field, store_down, Visit};
use crate::factors::rules::FactorRights;
use crate::factors::UserFactors;
use crate::metrics::METRICS;
use crate::pages::{self, when};
use crate::pipeline::refusal::Refusal;

/// A message over the page, and whether it reports a refusal.
pub struct Notice {
    pub text: String,
    pub refused: bool,
}

impl Notice {
    fn done(text: String) -> Option<Self> {
        Some(Self {
            text,
            refused: false,
        })
    }
}

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

    /// Undoing a passkey replacement made with a recovery code: a recent proof of a factor
    /// the user had before it (the app), which may remove the passkeys it bound, and only
    /// those, while it is on probation.
    fn may_undo(&self, factors: &UserFactors) -> bool {
        let passkey_probation = factors
            .on_probation(self.now())
            .is_some_and(|p| p.kind == crate::factors::Kind::Passkey);
        passkey_probation && matches!(self.rights(factors), FactorRights::Manage { .. })
    }

    /// Removing a passkey or regenerating codes: a recent proof of the user's strongest kind
    /// (not a recovery code: the lost-device path replaces, it does not manage). New codes
    /// open the lost-device path, so an app's code must not mint them past a passkey.
    fn may_manage(&self, factors: &UserFactors) -> bool {
        self.rights(factors)
            == FactorRights::Manage {
                add_or_replace: true,
            }
    }
}

/// `GET /.vigie/account` (`?remove=ID` asks to confirm a removal; `?done=app` says the app
/// was replaced).
pub async fn page(mut v: Visit<'_>, notice: Option<Notice>) -> Result<u16, Refusal> {
    if let Some(status) = v.needs_fresh_factor().await? {
        return Ok(status);
    }
    let notice = notice.or_else(|| match v.query("done").as_deref() {
        Some("app") => Notice::done(pages::message(v.lang, "app_replaced")),
        Some("undo") => Notice::done(pages::message(v.lang, "undo_done")),
        _ => None,
    });
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    let left = v
        .factors
        .recovery_codes_left(&v.user)
        .await
        .map_err(store_down)?;
    let zone = &v.config.policy.zone;
    let day = |t: u64| when::date(v.lang, zone, t);
    let confirm = v.query("remove").and_then(|id| {
        let p = factors.passkeys.iter().find(|p| p.id() == id)?;
        Some(context! { id => id, name => p.name.clone() })
    });
    let may_manage = v.may_manage(&factors);
    let may_undo = v.may_undo(&factors);
    let passkeys: Vec<_> = factors
        .passkeys
        .iter()
        .map(|p| {
            context! {
                removable => may_manage || (may_undo && factors.on_probation_passkey(p, v.now())),
                id => p.id(),
                name => p.name.clone(),
                created => day(p.created),
                last_used => p.last_used.map(day),
                remove_q => encode(&p.id()),
            }
        })
        .collect();
    let rights = v.rights(&factors);

    let probation = factors.on_probation(v.now()).map(|p| {
        pages::message(v.lang, "probation_text")
            .replace("{until}", &when::date_time(v.lang, zone, p.until))
    });
    let status = if notice.as_ref().is_some_and(|n| n.refused) {
        403
    } else {
        200
    };
    let ctx = context! {
        has_totp => factors.totp.is_some(),
        totp_created => factors.totp.as_ref().map(|t| day(t.created)),
        passkeys,
        confirm => if may_manage || may_undo { confirm } else { None },
        may_manage,
        privileged_lost => rights == FactorRights::Nothing && v.record.factor_method.as_deref() == Some("recovery") && v.privileged() && !v.record.lost_replaced,
        probation,
        codes_left => pages::count(v.lang, "codes_left", left as u64),
        fresh_note => pages::count(v.lang, "fresh_note", v.factors.config.fresh_window.as_secs() / 60),
        recovery_session => rights == FactorRights::ReplaceLost,
        replaced_done => v.record.lost_replaced,

        add_or_replace => matches!(rights, FactorRights::ReplaceLost | FactorRights::Manage { add_or_replace: true }),
        account_q => encode(crate::policy::ACCOUNT_PATH),
        message => notice.as_ref().map(|n| n.text.clone()),
        refused => notice.as_ref().is_some_and(|n| n.refused),
    };
    v.page(status, "account.html", ctx, true).await
}

/// The page again, saying why a change was refused (403): a recovery code's session, a
/// proof weaker than the user's strongest kind, a factor on probation.
async fn refused(v: Visit<'_>, factors: &UserFactors) -> Result<u16, Refusal> {
    let (reason, key) = match v.rights(factors) {
        FactorRights::Manage { .. } => ("weaker_proof", "stronger_proof_needed"),
        _ if factors.on_probation(v.now()).is_some() => ("probation", "probation_refused"),
        _ => ("recovery_code_session", "recovery_session_refused"),
    };
    let text = pages::message(v.lang, key);
    tracing::warn!(target: "vigie::audit", event = "factor_change_refused", reason, user = %v.user, client = %v.request.client.ip, session = %v.fp());
    page(
        v,
        Some(Notice {
            text,
            refused: true,
        }),
    )
    .await
}

/// `POST /.vigie/account/passkey/remove`: never the last factor.
pub async fn remove_passkey(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let form = v.form().await?;
    if let Some(status) = v.needs_fresh_factor().await? {
        return Ok(status);
    }
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    let id = field(&form, "id");
    let manage = v.may_manage(&factors);
    let undo = !manage
        && v.may_undo(&factors)
        && factors
            .passkeys
            .iter()
            .any(|p| p.id() == id && factors.on_probation_passkey(p, v.now()));
    if !manage && !undo {
        return refused(v, &factors).await;
    }
    let name = factors
        .passkeys
        .iter()
        .find(|p| p.id() == id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let removal = v
        .factors
        .remove_passkey(&v.user, &id, undo)
        .await
        .map_err(store_down)?;
    match removal {
        crate::factors::Removal::Removed => {
            METRICS
                .enrollments
                .with_label_values(&["passkey_removed"])
                .inc();
            tracing::warn!(target: "vigie::audit", event = "factor_removed", method = "passkey", user = %v.user, client = %v.request.client.ip, undo);
            if undo {
                // The key a recovery code bound is gone, and so are its sessions and the codes
                // that replacement issued (whoever made it holds them). None are issued to
                // this session: its proof was weaker than a passkey, and codes would open the
                // lost-device path to it; a new sign-in with the app makes new ones.
                v.end_other_sessions().await?;
                v.factors
                    .cancel_recovery_codes(&v.user)
                    .await
                    .map_err(store_down)?;
                // Disputed: one of the two was not the user. The app that undid it changes
                // nothing for a while (a second phished code must not finish the takeover);
                // the SOC or an invitation reset settles it.
                v.factors
                    .put_on_probation(&v.user, crate::factors::Kind::Totp)
                    .await
                    .map_err(store_down)?;
                v.lost_replacement_undone("passkey");
                let to = format!("{}?done=undo", crate::policy::ACCOUNT_PATH);
                return v.redirect(&to, &[]).await;
            }
            let msg = pages::message(v.lang, "removed_named").replace("{name}", &name);
            page(v, Notice::done(msg)).await
        }
        crate::factors::Removal::LastFactor => {
            let msg = pages::message(v.lang, "cannot_remove_last");
            page(v, Notice::done(msg)).await
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
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    if !v.may_manage(&factors) {
        return refused(v, &factors).await;
    }
    let codes = v
        .factors
        .new_recovery_codes(&v.user)
        .await
        .map_err(store_down)?;
    let sealed = v
        .factors
        .seal(&v.user, "fresh-codes", codes.join("\n").as_bytes());
    v.save_record(|r| {
        r.fresh_codes = Some(sealed.clone());
        r.codes_shown_at = None;
    })
    .await?;
    tracing::warn!(target: "vigie::audit", event = "recovery_codes_regenerated", user = %v.user, client = %v.request.client.ip);
    let to = format!(
        "/.vigie/codes?return={}",
        encode(crate::policy::ACCOUNT_PATH)
    );
    v.redirect(&to, &[]).await
}
