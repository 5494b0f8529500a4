//! Proving a factor: the prompt, TOTP codes, recovery codes, passkey assertions.

use minijinja::context;
use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

use super::{encode, field, store_down, Proof, Visit};
use crate::factors::Verdict;
use crate::identity::session::AuthLevel;
use crate::pages;
use crate::pipeline::form::safe_return;
use crate::pipeline::refusal::{Reason, Refusal};

/// `GET /.vigie/factor?return=…`: the prompt, with what the return path needs.
pub async fn page(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let return_to = v.return_to();
    prompt(&mut v, &return_to, 200, None, None).await
}

/// Render the prompt (again, after a failure).
async fn prompt(
    v: &mut Visit<'_>,
    return_to: &str,
    status: u16,
    error: Option<String>,
    warning: Option<String>,
) -> Result<u16, Refusal> {
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    let fresh = v.fresh_proof_wanted();
    if factors.is_empty() && fresh {
        return unprovable(v).await;
    }
    if factors.is_empty() {
        let to = format!("/.vigie/enroll?return={}", encode(return_to));
        return v.redirect(&to, &[]).await;
    }
    let need = v.requirement_for(return_to);
    // A detector step-up wants a proof even where the level is met: sending the user back
    // would only be refused again (and each refusal counts towards a hold).
    if need.met_by(&v.record, v.now()) && error.is_none() && !fresh {
        return v.redirect(return_to, &[]).await;
    }
    let has_passkey = !factors.passkeys.is_empty();
    let ctx = context! {
        return_to,
        return_q => encode(return_to),
        has_totp => factors.totp.is_some(),
        has_passkey,
        passkey_required => need.level == AuthLevel::PhishingResistant,
        step_up => v.record.level >= AuthLevel::SecondFactor,
        detector => fresh,
        recovery_open => error.is_some() && v.session.req_header().uri.path().ends_with("recovery"),
        error,
        warning,
    };
    v.page(status, "factor.html", ctx, has_passkey).await
}

/// The detector asks for a fresh proof of a user with no factor: nothing they can do here
/// meets it (enrolling one now is refused, as a stolen session would bind its own). The
/// step-up alert already told the SOC; the page says so instead of sending the user back to
/// be refused again, and the step-up stays pending (held at the refusal limit, as before).
pub(super) async fn unprovable(v: &mut Visit<'_>) -> Result<u16, Refusal> {
    // `pending`: this replica's detector waits (else only the redirect's flag asked).
    let pending = v.step_up_pending();
    tracing::warn!(target: "vigie::audit", event = "step_up_unprovable", user = %v.user, portal = %v.portal.config.name, client = %v.request.client.ip, session = %v.fp(), pending, reason = "no factor enrolled");
    let ctx = context! {
        title => pages::message(v.lang, "step_up_unprovable_title"),
        text => pages::message(v.lang, "step_up_unprovable"),
        reference => v.request_id,
    };
    v.page(403, "notice.html", ctx, false).await
}

/// After a wrong answer: lock at the limit, else the prompt with the error (and a warning
/// when few attempts remain).
async fn wrong(v: &mut Visit<'_>, method: &str, return_to: &str) -> Result<u16, Refusal> {
    match v.failed(method).await? {
        Err(locked) => Err(Refusal::new(locked, Reason::AccountLocked)),
        Ok(left) => {
            let error = pages::message(v.lang, "bad_code");
            let warning =
                (left <= 3).then(|| pages::count(v.lang, "failures_left", u64::from(left)));
            prompt(v, return_to, 200, Some(error), warning).await
        }
    }
}

/// `POST /.vigie/factor/totp`.
pub async fn totp(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let form = v.form().await?;
    let return_to = safe_return(&field(&form, "return"));
    let code = field(&form, "code");
    if crate::factors::totp::parse_code(&code).is_none() {
        // Not a guess at the secret (5 or 7 digits, spaces, full-width digits…): a clear
        // message, and no attempt counted against a clinician who typed "123 456".
        let error = pages::message(v.lang, "code_format");
        return prompt(&mut v, &return_to, 400, Some(error), None).await;
    }
    if let Err(status) = v.gate(false).await? {
        return Ok(status);
    }
    let factors = v.factors.load(&v.user).await.map_err(store_down)?;
    let verdict = v
        .factors
        .check_totp(&v.user, &factors, &code)
        .await
        .map_err(store_down)?;
    if verdict == Verdict::Rejected {
        return wrong(&mut v, "totp", &return_to).await;
    }
    let strongest = factors.passkeys.is_empty();
    let proof = Proof::Had { strongest };
    let cookie = v.upgrade(AuthLevel::SecondFactor, "totp", proof).await?;
    v.redirect(&return_to, &[cookie]).await
}

/// `POST /.vigie/factor/recovery`: a single-use code. It never gives more than the second
/// factor level, so it cannot satisfy a passkey requirement (threat model 22).
pub async fn recovery(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let (form, return_to) = match v.attempt().await? {
        Ok(attempt) => attempt,
        Err(status) => return Ok(status),
    };
    let verdict = v
        .factors
        .use_recovery_code(&v.user, &field(&form, "code"))
        .await
        .map_err(store_down)?;
    if verdict == Verdict::Rejected {
        return wrong(&mut v, "recovery", &return_to).await;
    }
    let left = v
        .factors
        .recovery_codes_left(&v.user)
        .await
        .map_err(store_down)?;
    tracing::warn!(target: "vigie::audit", event = "recovery_code_used", user = %v.user, client = %v.request.client.ip, left);
    let proof = Proof::Had { strongest: false };
    let cookie = v
        .upgrade(AuthLevel::SecondFactor, "recovery", proof)
        .await?;
    v.redirect(&return_to, &[cookie]).await
}

/// `POST /.vigie/passkey/auth/start`: the challenge, kept server-side for this session.
pub async fn passkey_start(mut v: Visit<'_>) -> Result<u16, Refusal> {
    v.body(true).await?;
    let wait = v.wait_left().await?;
    if wait > 0 {
        return v.too_soon(wait, true).await;
    }
    let fp = v.fp();
    let options = v.factors.start_authentication(&v.user, &fp).await;
    let options = options.map_err(store_down)?;
    v.options(options, 400, "no passkey is registered").await
}

#[derive(Deserialize)]
struct AuthAnswer {
    #[serde(default)]
    r#return: String,
    credential: PublicKeyCredential,
}

/// `POST /.vigie/passkey/auth/finish`: verify the assertion, raise the session to
/// phishing-resistant.
pub async fn passkey_finish(mut v: Visit<'_>) -> Result<u16, Refusal> {
    let body = v.body(true).await?;
    if let Err(status) = v.gate(true).await? {
        return Ok(status);
    }
    let fp = v.fp();
    let verdict = match serde_json::from_slice::<AuthAnswer>(&body) {
        Ok(answer) => {
            let verdict = v
                .factors
                .finish_authentication(&v.user, &fp, &answer.credential)
                .await
                .map_err(store_down)?;
            (verdict, safe_return(&answer.r#return))
        }
        // Malformed JSON or CBOR is a failed attempt like any other.
        Err(_) => (Verdict::Rejected, "/".to_string()),
    };
    match verdict {
        (Verdict::Accepted, return_to) => {
            // A passkey bound with a recovery code is worth no more than the code until its
            // probation ends: it must not turn a code sheet into the phishing-resistant level
            // (threat model 22).
            let factors = v.factors.load(&v.user).await.map_err(store_down)?;
            let probation = factors.on_probation(v.now());
            let level = match probation.map(|p| p.kind) {
                Some(crate::factors::Kind::Passkey) => AuthLevel::SecondFactor,
                _ => AuthLevel::PhishingResistant,
            };
            let proof = Proof::Had { strongest: true };
            let cookie = v.upgrade(level, "passkey", proof).await?;
            let body = serde_json::json!({ "redirect": return_to }).to_string();
            v.json(200, body, &[cookie]).await
        }
        (Verdict::Rejected, _) => match v.failed("passkey").await? {
            Err(_) => v.json_error(423, "account locked").await,
            Ok(_) => v.json_error(400, "passkey not accepted").await,
        },
    }
}
