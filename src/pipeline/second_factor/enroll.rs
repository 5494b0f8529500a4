//! Enrollment: the proof policy demands (invitation or trusted network), then a TOTP app or
//! a passkey, then recovery codes shown once. Someone holding only a stolen password cannot
//! bind their own factor where an invitation is required (threat model 20), and the secret
//! never appears in a URL or a log.

use minijinja::context;
use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::{encode, field, store_down, Proof, Visit};
use crate::factors::rules::{enrollment_needs, EnrollmentNeeds, FactorRights};
use crate::factors::{totp, Binding, UserFactors, Verdict};
use crate::identity::session::AuthLevel;
use crate::metrics::METRICS;
use crate::pages;
use crate::pipeline::form::safe_return;
use crate::pipeline::refusal::{Reason, Refusal};

impl Visit<'_> {
    /// Whether this session may bind a factor now: a first factor (or, after a reset
    /// invitation, a replacement) once the enrollment proof is satisfied; another factor
    /// with a recent proof of the user's strongest one; one replacement of a lost factor
    /// with a recovery code ([`FactorRights`]).
    fn may_enroll(&self, factors: &UserFactors) -> bool {
        if self.step_up_pending() {
            // The detector doubts this session: it proves a factor the user already had.
            return false;
        }
        if self.proof_ok() && (factors.is_empty() || self.record.reset_pending) {
            return true;
        }
        if factors.is_empty() {
            return self.needs(factors) == EnrollmentNeeds::Nothing;
        }
        matches!(
            self.rights(factors),
            FactorRights::ReplaceLost
                | FactorRights::Manage {
                    add_or_replace: true
                }
        )
    }

    /// How a factor bound now joins the others: in the place of all of them after a reset
    /// invitation, of its own kind for a recovery-code session (the lost device) or a new
    /// app, else beside them.
    fn binding(&self, factors: &UserFactors, totp: bool) -> Binding {
        if self.replacing() {
            Binding::ReplaceAll
        } else if self.rights(factors) == FactorRights::ReplaceLost {
            Binding::ReplaceLost
        } else if totp && factors.totp.is_some() {
            Binding::ReplaceKind
        } else {
            Binding::Add
        }
    }

    /// A recovery-code session replaced a lost factor: the user's other sessions (perhaps on
    /// the lost device) end, and the SOC hears of it, since a stolen password and a stolen
    /// code sheet would do the same.
    async fn after_lost_replaced(&mut self, method: &str) -> Result<(), Refusal> {
        let ended = self.end_other_sessions().await?;
        METRICS
            .enrollments
            .with_label_values(&["lost_replaced"])
            .inc();
        tracing::warn!(target: "vigie::audit", event = "factor_replaced", via = "recovery_code", method, user = %self.user, client = %self.request.client.ip, session = %self.fp(), sessions_ended = ended);
        let alert = super::alert::factor_alert(self, super::alert::LOST_REPLACED, method);
        self.alerts.raise(alert);
        Ok(())
    }

    /// A replacement made with a recovery code was undone by a factor the user had: audited
    /// and told to the SOC (someone disputed it: the one who made it, or the one who undid
    /// it, is not the user).
    pub(super) fn lost_replacement_undone(&self, method: &str) {
        tracing::warn!(target: "vigie::audit", event = "lost_replacement_undone", method, user = %self.user, client = %self.request.client.ip, session = %self.fp());
        let alert = super::alert::factor_alert(self, super::alert::LOST_UNDONE, method);
        self.alerts.raise(alert);
    }

    /// Whether a lost-device replacement was made since this request began (another request
    /// won the race): its factor is on probation.
    async fn replaced_meanwhile(&self) -> Result<bool, Refusal> {
        let factors = self.factors.load(&self.user).await.map_err(store_down)?;
        Ok(factors.on_probation(self.now()).is_some())
    }

    /// The user's sessions but this one end (perhaps one on the lost device); how many.
    pub(super) async fn end_other_sessions(&self) -> Result<usize, Refusal> {
        self.sessions
            .end_user(
                &self.user,
                Some(&self.record.id),
                crate::identity::Ending::Revoked,
            )
            .await
            .map_err(|_| Refusal::new(503, Reason::SessionStoreUnavailable))
    }

    /// Whether binding now replaces the user's factors (a reset invitation was accepted).
    fn replacing(&self) -> bool {
        self.record.reset_pending && self.proof_ok()
    }

    /// A reset completed (the old factors were replaced when the new one was bound, so an
    /// abandoned reset leaves the account as it was): the user's other sessions, perhaps
    /// on the lost device, end.
    async fn after_reset(&mut self) -> Result<(), Refusal> {
        let ended = self.end_other_sessions().await?;
        METRICS.enrollments.with_label_values(&["reset"]).inc();
        tracing::warn!(target: "vigie::audit", event = "factor_reset", user = %self.user, client = %self.request.client.ip, via = "invitation", sessions_ended = ended);
        Ok(())
    }

    fn needs(&self, factors: &UserFactors) -> EnrollmentNeeds {
        let c = &self.factors.config;
        // A user whose factors vanished with the store (the durable note says they had one)
        // is no newcomer: only an invitation lets them bind a new one. Unreadable: the same.
        let had = !factors.is_empty() || self.factors.had_factor(&self.user).unwrap_or(true);
        enrollment_needs(
            c.enrollment,
            &c.trusted_networks,
            self.privileged(),
            had,
            self.request.client.ip,
        )
    }

    fn proof_ok(&self) -> bool {
        let window = self.factors.config.enrollment_window.as_secs();
        self.record
            .enroll_proof_at
            .is_some_and(|t| self.now().saturating_sub(t) <= window)
    }

    /// After a first factor: new recovery codes, kept sealed in the session until shown.
    pub(super) async fn first_codes(&mut self, first: bool) -> Result<Option<Vec<u8>>, Refusal> {
        if !first {
            return Ok(None);
        }
        let codes = self
            .factors
            .new_recovery_codes(&self.user)
            .await
            .map_err(store_down)?;
        Ok(Some(self.factors.seal(
            &self.user,
            "fresh-codes",
            codes.join("\n").as_bytes(),
        )))
    }
}

/// `GET /.vigie/enroll`: the invitation form, or the choice of factor.
pub async fn page(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let return_to = v.return_to();
    if v.step_up_pending() {
        let factors = v.factors.load(&v.user).await.map_err(store_down)?;
        if factors.is_empty() {
            return super::verify::unprovable(&mut v).await;
        }
        let to = super::fresh_factor_redirect(&return_to);
        return v.redirect(&to, &[]).await;
    }
    render(&mut v, &return_to, None).await
}

async fn render(v: &mut Visit<'_>, return_to: &str, error: Option<String>) -> Result<u16, Refusal> {
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    let recent = v.record.level >= AuthLevel::SecondFactor;
    let resetting = v.record.reset_pending && v.proof_ok();
    let need_invitation = if factors.is_empty() {
        v.needs(&factors) == EnrollmentNeeds::Invitation && !v.proof_ok()
    } else {
        // Someone with a factor adds more from the account page; here only a reset.
        !resetting
    };
    if !factors.is_empty() && recent && !resetting {
        return v.redirect(crate::policy::ACCOUNT_PATH, &[]).await;
    }
    let ctx = context! {
        return_to,
        return_q => encode(return_to),
        need_invitation,
        has_factor => !factors.is_empty(),
        error,
    };
    v.page(200, "enroll.html", ctx, !need_invitation).await
}

/// `POST /.vigie/enroll/invitation`: consume the code IT handed over. If the user had
/// factors (a lost device), they are reset now.
pub async fn invitation(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let (form, return_to) = match v.attempt().await? {
        Ok(attempt) => attempt,
        Err(status) => return Ok(status),
    };
    let verdict = v
        .factors
        .redeem(&v.user, &field(&form, "invitation"))
        .await
        .map_err(store_down)?;
    if verdict == Verdict::Rejected {
        return match v.failed("invitation").await? {
            Err(locked) => Err(Refusal::new(locked, Reason::AccountLocked)),
            Ok(_) => {
                let error = pages::message(v.lang, "invitation_bad");
                render(&mut v, &return_to, Some(error)).await
            }
        };
    }
    let had = !v
        .factors
        .load(&v.user)
        .await
        .map_err(store_down)?
        .is_empty();
    v.factors
        .succeeded(&v.user, v.request.client.ip)
        .await
        .map_err(store_down)?;
    tracing::info!(target: "vigie::audit", event = "invitation_redeemed", user = %v.user, client = %v.request.client.ip, reset = had);
    let now = v.now();
    let cookie = v
        .rotate(|r| {
            r.enroll_proof_at = Some(now);
            r.reset_pending = had;
        })
        .await?;
    let to = format!("/.vigie/enroll?return={}", encode(&return_to));
    v.redirect(&to, &[cookie]).await
}

/// `GET /.vigie/enroll/totp`: a new secret, kept sealed in the session, shown as a QR code.
pub async fn totp_page(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let return_to = v.return_to();
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    if !v.may_enroll(&factors) {
        let to = format!("/.vigie/enroll?return={}", encode(&return_to));
        return v.redirect(&to, &[]).await;
    }
    // The secret being set up stays the same across reloads and a change of language: a
    // QR code already scanned keeps working. Only a new visit without one makes another.
    let pending = v
        .record
        .pending_totp
        .as_ref()
        .and_then(|s| v.factors.open(&v.user, "totp-pending", s));
    if let Some(secret) = pending {
        return show_secret(&mut v, &secret, &return_to, None).await;
    }
    let secret = totp::new_secret();
    let sealed = v.factors.seal(&v.user, "totp-pending", &secret);
    v.save_record(|r| r.pending_totp = Some(sealed.clone()))
        .await?;
    show_secret(&mut v, &secret, &return_to, None).await
}

async fn show_secret(
    v: &mut Visit<'_>,
    secret: &[u8],
    return_to: &str,
    error: Option<String>,
) -> Result<u16, Refusal> {
    let url = v.factors.otpauth_url(&v.user, secret);
    let ctx = context! {
        return_to,
        qr => totp::qr_svg(&url),
        otpauth => url,
        secret => totp::secret_for_typing(secret),
        error,
    };
    v.page(200, "enroll_totp.html", ctx, false).await
}

/// `POST /.vigie/enroll/totp`: the first code from the app binds the secret.
pub async fn totp_confirm(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let (form, return_to) = match v.attempt().await? {
        Ok(attempt) => attempt,
        Err(status) => return Ok(status),
    };
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    let pending = v
        .record
        .pending_totp
        .as_ref()
        .and_then(|s| v.factors.open(&v.user, "totp-pending", s));
    let binding = v.binding(&factors, true);
    let (true, Some(secret)) = (v.may_enroll(&factors), pending) else {
        let to = format!("/.vigie/enroll?return={}", encode(&return_to));
        return v.redirect(&to, &[]).await;
    };
    let code = field(&form, "code");
    let Some(code) = totp::parse_code(&code) else {
        // Not a guess at the secret: a clear message, the same secret, nothing counted.
        let error = pages::message(v.lang, "code_format");
        return show_secret(&mut v, &secret, &return_to, Some(error)).await;
    };
    let verdict = v
        .factors
        .enroll_totp(&v.user, &secret, &code, binding)
        .await
        .map_err(store_down)?;
    if verdict == Verdict::Rejected
        && binding == Binding::ReplaceLost
        && v.replaced_meanwhile().await?
    {
        // The same form sent twice, or another tab: the replacement is made, once. The
        // codes, if this session made it, wait on their page.
        let to = format!("/.vigie/codes?return={}", encode(&return_to));
        return v.redirect(&to, &[]).await;
    }
    if verdict == Verdict::Rejected {
        return match v.failed("totp_enroll").await? {
            Err(locked) => Err(Refusal::new(locked, Reason::AccountLocked)),
            Ok(_) => {
                let error = pages::message(v.lang, "bad_code");
                show_secret(&mut v, &secret, &return_to, Some(error)).await
            }
        };
    }
    METRICS.enrollments.with_label_values(&["totp"]).inc();
    tracing::info!(target: "vigie::audit", event = "factor_enrolled", method = "totp", user = %v.user, client = %v.request.client.ip, binding = ?binding);
    let lost = binding == Binding::ReplaceLost;
    // The user's other factor replacing an app bound with a recovery code: an undo.
    let undoing = binding == Binding::ReplaceKind
        && factors
            .on_probation(v.now())
            .is_some_and(|p| p.kind == crate::factors::Kind::Totp);
    match binding {
        Binding::ReplaceAll => v.after_reset().await?,
        Binding::ReplaceLost => v.after_lost_replaced("totp").await?,
        Binding::ReplaceKind if undoing => {
            // Its sessions end, and the codes that replacement issued are replaced.
            v.end_other_sessions().await?;
            v.lost_replacement_undone("totp");
        }
        Binding::Add | Binding::ReplaceKind => {}
    }
    let codes = v
        .first_codes(factors.is_empty() || binding == Binding::ReplaceAll || lost || undoing)
        .await?;
    let return_to = if binding == Binding::ReplaceKind && !lost {
        // A new app in place of the old one, with a fresh proof: said on the account page.
        tracing::warn!(target: "vigie::audit", event = "factor_replaced", via = "fresh_proof", method = "totp", user = %v.user, client = %v.request.client.ip, session = %v.fp());
        format!("{}?done=app", crate::policy::ACCOUNT_PATH)
    } else {
        return_to
    };
    finish(&mut v, codes, &return_to, "totp", lost)
        .await
        .map(|(status, _)| status)
}

/// Raise the session after an enrollment and send the user on (through the codes page the
/// first time). Returns the status and the redirect target.
/// `lost`: the factor replaced a lost one with a recovery code; the session changes nothing
/// more.
async fn finish(
    v: &mut Visit<'_>,
    codes: Option<Vec<u8>>,
    return_to: &str,
    method: &str,
    lost: bool,
) -> Result<(u16, String), Refusal> {
    let has_codes = codes.is_some();
    let mut cookie = v
        .upgrade(AuthLevel::SecondFactor, method, Proof::Enrolled)
        .await?;
    if has_codes || lost {
        v.save_record(|r| {
            r.fresh_codes = codes.clone();
            r.codes_shown_at = None;
            r.lost_replaced |= lost;
        })
        .await?;
    }
    let to = if has_codes {
        format!("/.vigie/codes?return={}", encode(return_to))
    } else {
        return_to.to_string()
    };
    if method == "passkey" {
        let body = serde_json::json!({ "redirect": to }).to_string();
        return Ok((v.json(200, body, &[std::mem::take(&mut cookie)]).await?, to));
    }
    Ok((v.redirect(&to, &[cookie]).await?, to))
}

/// The user's factors when this session may enroll now; `Err` carries the 403 already sent.
async fn enrolling(v: &mut Visit<'_>) -> Result<Result<UserFactors, u16>, Refusal> {
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    if v.may_enroll(&factors) {
        return Ok(Ok(factors));
    }
    let why = "enrollment needs an invitation or a recent second factor";
    Ok(Err(v.json_error(403, why).await?))
}

/// `POST /.vigie/passkey/register/start`.
pub async fn passkey_start(mut v: Visit<'_>) -> Result<u16, Refusal> {
    v.body(true).await?;
    if let Err(status) = enrolling(&mut v).await? {
        return Ok(status);
    }
    let fp = v.fp();
    let options = v.factors.start_registration(&v.user, &fp).await;
    let options = options.map_err(store_down)?;
    v.options(options, 500, "cannot start a registration").await
}

#[derive(Deserialize)]
struct RegisterAnswer {
    #[serde(default)]
    name: String,
    #[serde(default)]
    r#return: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /.vigie/passkey/register/finish`. Registering proves the new key, not an old
/// factor: the session reaches the second-factor level; phishing-resistant comes from a
/// passkey sign-in.
pub async fn passkey_finish(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let body = v.body(true).await?;
    let factors = match enrolling(&mut v).await? {
        Ok(factors) => factors,
        Err(status) => return Ok(status),
    };
    let Ok(answer) = serde_json::from_slice::<RegisterAnswer>(&body) else {
        return v.json_error(400, "malformed registration").await;
    };
    let name: String = answer
        .name
        .chars()
        .filter(|c| !c.is_control())
        .take(60)
        .collect::<String>()
        .trim()
        .to_string();
    let name = if name.is_empty() {
        "passkey".to_string()
    } else {
        name
    };
    let fp = v.fp();
    let binding = v.binding(&factors, false);
    let verdict = v
        .factors
        .finish_registration(&v.user, &fp, &name, &answer.credential, binding)
        .await
        .map_err(store_down)?;
    if verdict == Verdict::Rejected {
        tracing::warn!(target: "vigie::audit", event = "factor_enroll_refused", method = "passkey", user = %v.user, client = %v.request.client.ip);
        return v.json_error(400, "registration not accepted").await;
    }
    METRICS.enrollments.with_label_values(&["passkey"]).inc();
    tracing::info!(target: "vigie::audit", event = "factor_enrolled", method = "passkey", user = %v.user, client = %v.request.client.ip, binding = ?binding);
    let lost = binding == Binding::ReplaceLost;
    match binding {
        Binding::ReplaceAll => v.after_reset().await?,
        Binding::ReplaceLost => v.after_lost_replaced("passkey").await?,
        Binding::Add | Binding::ReplaceKind => {}
    }
    let first = factors.is_empty() || binding == Binding::ReplaceAll;
    let codes = v.first_codes(first || lost).await?;
    let return_to = if first {
        safe_return(&answer.r#return)
    } else {
        crate::policy::ACCOUNT_PATH.to_string()
    };
    finish(&mut v, codes, &return_to, "passkey", lost)
        .await
        .map(|(s, _)| s)
}

/// How long the codes page may show the same codes again (a reload, a change of language,
/// printing) before the user says they kept them.
const CODES_VISIBLE_SECONDS: u64 = 10 * 60;

/// `GET /.vigie/codes`: new recovery codes, shown on one page until the user says they kept
/// them (`POST`), or for ten minutes; then forgotten by the session.
pub async fn codes(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let return_to = v.return_to();
    if v.session.req_header().method == http::Method::HEAD || prefetch(v.session.req_header()) {
        // A HEAD (a link checker) or a prefetch starts no showing.
        return v.redirect(&return_to, &[]).await;
    }
    // A step-up waits for a proof: codes shown to this session would answer it (a stolen
    // session would read them and prove with one). The user sees them after the proof.
    if let Some(wait) = wait_for_proof(&mut v).await {
        return wait;
    }
    let opened = v
        .record
        .fresh_codes
        .as_ref()
        .and_then(|s| v.factors.open(&v.user, "fresh-codes", s));
    let Some(plain) = opened else {
        return v.redirect(&return_to, &[]).await;
    };
    let now = v.now();
    match v.record.codes_shown_at {
        None => v.save_record(|r| r.codes_shown_at = Some(now)).await?,
        Some(at) if now.saturating_sub(at) <= CODES_VISIBLE_SECONDS => {}
        Some(_) => {
            forget_codes(&mut v).await?;
            return v.redirect(&return_to, &[]).await;
        }
    }
    let codes: Vec<String> = String::from_utf8_lossy(&plain)
        .lines()
        .map(str::to_string)
        .collect();
    let ctx = context! { codes, return_to, minutes => CODES_VISIBLE_SECONDS / 60 };
    v.page(200, "codes.html", ctx, true).await
}

/// A browser's speculative load (`Sec-Purpose: prefetch`, the older `Purpose: prefetch`),
/// not a person looking.
fn prefetch(req: &pingora::http::RequestHeader) -> bool {
    ["sec-purpose", "purpose", "x-moz", "x-purpose"]
        .iter()
        .any(|h| {
            req.headers.get_all(*h).iter().any(|v| {
                let v = v.to_str().unwrap_or_default().to_ascii_lowercase();
                v.contains("prefetch") || v.contains("preview")
            })
        })
}

/// `POST /.vigie/codes`: the user kept the codes; the session forgets them.
pub async fn codes_kept(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let form = v.form().await?;
    let return_to = safe_return(&field(&form, "return"));
    // Nor may it throw them away before the user has seen them.
    if let Some(wait) = wait_for_proof(&mut v).await {
        return wait;
    }
    forget_codes(&mut v).await?;
    v.redirect(&return_to, &[]).await
}

/// While a step-up waits for a proof, the session's unread codes are not its to read or drop:
/// off to the factor page, back to the codes after.
async fn wait_for_proof(v: &mut Visit<'_>) -> Option<Result<u16, Refusal>> {
    if !v.step_up_pending() {
        return None;
    }
    let to = super::fresh_factor_redirect("/.vigie/codes");
    Some(v.redirect(&to, &[]).await)
}

async fn forget_codes(v: &mut Visit<'_>) -> Result<(), Refusal> {
    v.save_record(|r| {
        r.fresh_codes = None;
        r.codes_shown_at = None;
    })
    .await
}
