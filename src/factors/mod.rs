//! Second factors: TOTP ([`totp`]), WebAuthn passkeys ([`passkeys`]) and recovery codes
//! ([`recovery`]), sealed at rest ([`crypto`]) in a [`store::FactorStore`], with the pure
//! rules (throttling, enrollment proof, requirements) in [`rules`]. [`Factors`] is the one
//! service the request pipeline talks to.

pub mod crypto;
pub mod passkeys;
mod record;
pub mod recovery;
pub mod rules;
pub mod store;
pub mod totp;

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential,
};

use crate::config::SecondFactorConfig;
use crate::identity::session::Clock;
use crate::identity::store::StoreError;
use crypto::{CryptoError, KeyRing};
use passkeys::RelyingParty;
use store::{FactorStore, Invitation};

pub use record::{
    Binding, Kind, NamedPasskey, Probation, TotpFactor, UserFactors, PROBATION_SECONDS,
};

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sealed factor data cannot be opened: {0}")]
    Crypto(#[from] CryptoError),
    #[error("stored factor data is corrupt: {0}")]
    Corrupt(String),
}

/// What removing a passkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    NotFound,
    /// Refused: it is the user's only factor.
    LastFactor,
}

/// Outcome of a verification attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
}

pub struct Factors {
    store: Arc<dyn FactorStore>,
    keys: Arc<KeyRing>,
    rp: RelyingParty,
    pub config: SecondFactorConfig,
    clock: Arc<dyn Clock>,
    /// Where a store that can lose its data (Redis) is backed by a durable note of who has
    /// enrolled: should the factors vanish, a new one needs an invitation, as a reset does.
    enrolled: Option<Arc<crate::storage::shared_state::Ledger>>,
    /// Users already noted there by this process (the note is written once).
    noted: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Factors {
    pub fn new(
        store: Arc<dyn FactorStore>,
        keys: impl Into<Arc<KeyRing>>,
        config: SecondFactorConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let rp = RelyingParty::new(&config.rp_id, &config.rp_name, &config.origins)?;
        Ok(Self {
            store,
            keys: keys.into(),
            rp,
            config,
            clock,
            enrolled: None,
            noted: Default::default(),
        })
    }

    /// Keep a durable note of enrolled users in `ledger` (factors kept in Redis).
    pub fn noting_enrollments_in(
        mut self,
        ledger: Arc<crate::storage::shared_state::Ledger>,
    ) -> Self {
        self.enrolled = Some(ledger);
        self
    }

    /// Whether the user may have had a factor, as far as the durable note knows (a factor
    /// record lost with Redis does not make its user a newcomer who may enroll without
    /// invitation; for a while after a loss, nobody is taken for one).
    pub fn had_factor(&self, user: &str) -> Result<bool, FactorError> {
        match &self.enrolled {
            Some(ledger) => Ok(ledger.may_have_enrolled(user, self.now())?),
            None => Ok(false),
        }
    }

    fn note_enrolled(&self, user: &str, factors: &UserFactors) -> Result<(), FactorError> {
        let Some(ledger) = &self.enrolled else {
            return Ok(());
        };
        if factors.is_empty() || self.noted.lock().expect("noted").contains(user) {
            return Ok(());
        }
        ledger.mark_enrolled(user)?;
        self.noted.lock().expect("noted").insert(user.to_string());
        Ok(())
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    pub async fn load(&self, user: &str) -> Result<UserFactors, FactorError> {
        Ok(self.load_versioned(user).await?.0)
    }

    async fn load_versioned(&self, user: &str) -> Result<(UserFactors, u64), FactorError> {
        let Some((sealed, version)) = self.store.load(user).await? else {
            // No factor: perhaps lost with Redis, while another replica already told the
            // shared note this user had one (this replica's check may not have run yet).
            if let Some(ledger) = &self.enrolled {
                if self.store.noted_enrolled(user).await? {
                    ledger.add_enrolled(&[user.to_string()])?;
                }
            }
            return Ok((UserFactors::default(), 0));
        };
        let (plain, stale) = self.keys.open(&aad("factors", user), &sealed)?;
        let factors: UserFactors =
            serde_json::from_slice(&plain).map_err(|e| FactorError::Corrupt(e.to_string()))?;
        self.note_enrolled(user, &factors)?;
        if stale {
            // Sealed under an older key: re-seal under the current one (rotation). Losing
            // the race to another writer is fine: it sealed under the current key too.
            let sealed = self.seal_record(user, &factors)?;
            if self.store.save(user, sealed, version).await? {
                return Box::pin(self.load_versioned(user)).await;
            }
        }
        Ok((factors, version))
    }

    fn seal_record(&self, user: &str, factors: &UserFactors) -> Result<Vec<u8>, FactorError> {
        let plain = serde_json::to_vec(factors).map_err(|e| FactorError::Corrupt(e.to_string()))?;
        Ok(self.keys.seal(&aad("factors", user), &plain))
    }

    /// Change the user's record with `change` (`None`: no change to store), retrying when
    /// another writer got there first, so no change is lost.
    pub async fn update<R>(
        &self,
        user: &str,
        mut change: impl FnMut(&mut UserFactors) -> Option<R>,
    ) -> Result<Option<R>, FactorError> {
        for _ in 0..8 {
            let (mut factors, version) = self.load_versioned(user).await?;
            let Some(result) = change(&mut factors) else {
                return Ok(None);
            };
            let sealed = self.seal_record(user, &factors)?;
            if self.store.save(user, sealed, version).await? {
                self.note_enrolled(user, &factors)?;
                return Ok(Some(result));
            }
        }
        Err(FactorError::Corrupt(
            "the factor record kept changing under us".into(),
        ))
    }

    /// Store `factors` as the user's record, whatever it was (tests, tools).
    pub async fn save(&self, user: &str, factors: &UserFactors) -> Result<(), FactorError> {
        self.update(user, |f| {
            *f = factors.clone();
            Some(())
        })
        .await
        .map(|_| ())
    }

    /// Seal a value for this user that waits in the session; `purpose` is bound in, so a
    /// pending TOTP secret cannot be passed off as recovery codes or a factor record.
    pub fn seal(&self, user: &str, purpose: &str, plain: &[u8]) -> Vec<u8> {
        self.keys.seal(&aad(purpose, user), plain)
    }

    pub fn open(&self, user: &str, purpose: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        self.keys
            .open(&aad(purpose, user), sealed)
            .ok()
            .map(|(p, _)| p)
    }

    // ---- throttling and locking ----

    /// Seconds the user (from this address) must still wait before the next attempt, without
    /// counting one (starting a passkey ceremony is not a guess).
    pub async fn wait_left(&self, user: &str, ip: IpAddr) -> Result<u64, FactorError> {
        let now = self.now();
        let by_user = rules::wait_left(self.store.failures(&user_key(user)).await?, now);
        let by_source = rules::source_wait_left(self.store.failures(&ip_key(ip)).await?, now);
        Ok(by_user.max(by_source))
    }

    /// Count an attempt before verifying it, per user and per source, so that a burst of
    /// parallel guesses is counted in full. `Err(seconds)`: refused, wait that long (the
    /// attempt is given back).
    pub async fn begin_attempt(
        &self,
        user: &str,
        ip: IpAddr,
    ) -> Result<Result<(), u64>, FactorError> {
        let now = self.now();
        let (uk, ik) = (user_key(user), ip_key(ip));
        let by_user = self.store.reserve_attempt(&uk, now, None).await?;
        let forget = Some(rules::SOURCE_FORGET_SECONDS);
        let by_source = self.store.reserve_attempt(&ik, now, forget).await?;
        let wait = rules::wait_left(by_user, now).max(rules::source_wait_left(by_source, now));
        if wait > 0 {
            self.store.release_attempt(&uk).await?;
            self.store.release_attempt(&ik).await?;
            return Ok(Err(wait));
        }
        Ok(Ok(()))
    }

    /// The user's consecutive failures, this attempt's included (the caller locks at the limit).
    pub async fn failures(&self, user: &str) -> Result<u32, FactorError> {
        Ok(self.store.failures(&user_key(user)).await?.0)
    }

    /// A verified attempt: the user's count starts again; the source gets its attempt back.
    pub async fn succeeded(&self, user: &str, ip: IpAddr) -> Result<(), FactorError> {
        self.store.clear_failures(&user_key(user)).await?;
        Ok(self.store.release_attempt(&ip_key(ip)).await?)
    }

    /// After an unlock by IT: the user starts again from zero failures.
    pub async fn forget_failures(&self, user: &str) -> Result<(), FactorError> {
        Ok(self.store.clear_failures(&user_key(user)).await?)
    }

    // ---- TOTP ----

    fn hash(&self) -> totp::Hash {
        self.config.totp_hash
    }

    /// Check a code against the enrolled secret; a step is accepted once (replay).
    pub async fn check_totp(
        &self,
        user: &str,
        factors: &UserFactors,
        code: &str,
    ) -> Result<Verdict, FactorError> {
        let Some(t) = &factors.totp else {
            return Ok(Verdict::Rejected);
        };
        let hash = totp::Hash::parse(&t.hash).unwrap_or(totp::Hash::Sha1);
        self.claim(user, &t.secret, hash, code, false).await
    }

    async fn claim(
        &self,
        user: &str,
        secret: &[u8],
        hash: totp::Hash,
        code: &str,
        or_same: bool,
    ) -> Result<Verdict, FactorError> {
        match totp::matching_step(secret, hash, code, self.now()) {
            Some(step) if self.store.claim_totp_step(user, step, or_same).await? => {
                Ok(Verdict::Accepted)
            }
            _ => Ok(Verdict::Rejected),
        }
    }

    /// Bind a pending secret once the user proves they hold it (an app is one factor: it
    /// takes the place of the one before, if any).
    pub async fn enroll_totp(
        &self,
        user: &str,
        secret: &[u8],
        code: &str,
        binding: Binding,
    ) -> Result<Verdict, FactorError> {
        // A replacement secret's first code may fall in the step the old one used last; not
        // on the lost-device path, where a second submission of the code must not pass.
        let replacing = matches!(binding, Binding::ReplaceKind | Binding::ReplaceAll);
        if self
            .claim(user, secret, self.hash(), code, replacing)
            .await?
            == Verdict::Rejected
        {
            return Ok(Verdict::Rejected);
        }
        if binding == Binding::ReplaceAll {
            self.reset(user).await?;
        }
        let totp = TotpFactor {
            secret: secret.to_vec(),
            hash: self.hash().label().to_string(),
            created: self.now(),
        };
        let now = self.now();
        let bound = self
            .update(user, |f| {
                if binding == Binding::ReplaceLost && !f.replace_lost(Kind::Totp, now) {
                    return None;
                }
                if binding == Binding::ReplaceKind
                    && f.probation.is_some_and(|p| p.kind == Kind::Totp)
                {
                    // The user's other factor replaced the app bound with a recovery code.
                    f.probation = None;
                }
                f.totp = Some(totp.clone());
                Some(())
            })
            .await?;
        Ok(bound.map_or(Verdict::Rejected, |()| Verdict::Accepted))
    }

    pub fn otpauth_url(&self, user: &str, secret: &[u8]) -> String {
        totp::otpauth_url(secret, self.hash(), &self.config.issuer, user)
    }

    // ---- recovery codes ----

    /// Ten new codes replace any old ones; only their keyed digests are stored.
    pub async fn new_recovery_codes(&self, user: &str) -> Result<Vec<String>, FactorError> {
        let codes = recovery::generate();
        let digests: Vec<String> = codes
            .iter()
            .map(|c| {
                self.keys
                    .digests(&recovery_purpose(user), c.replace('-', "").as_bytes())
            })
            .map(|mut all| all.swap_remove(0))
            .collect();
        self.store.set_recovery_codes(user, &digests).await?;
        Ok(codes)
    }

    /// Put the user's factors of `kind` on probation from now (after a disputed replacement:
    /// the app that undid it, perhaps a phished one, changes nothing for a while).
    pub async fn put_on_probation(&self, user: &str, kind: Kind) -> Result<(), FactorError> {
        let now = self.now();
        self.update(user, |f| {
            f.probation = Some(Probation {
                kind,
                since: now,
                until: now + PROBATION_SECONDS,
            });
            Some(())
        })
        .await
        .map(|_| ())
    }

    /// No recovery code works any more (until new ones are made).
    pub async fn cancel_recovery_codes(&self, user: &str) -> Result<(), FactorError> {
        Ok(self.store.set_recovery_codes(user, &[]).await?)
    }

    pub async fn use_recovery_code(&self, user: &str, raw: &str) -> Result<Verdict, FactorError> {
        let Some(code) = recovery::normalise(raw) else {
            return Ok(Verdict::Rejected);
        };
        let candidates = self.keys.digests(&recovery_purpose(user), code.as_bytes());
        Ok(if self.store.use_recovery_code(user, &candidates).await? {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        })
    }

    pub async fn recovery_codes_left(&self, user: &str) -> Result<usize, FactorError> {
        Ok(self.store.recovery_codes_left(user).await?)
    }

    // ---- invitations (enrollment proof and factor reset) ----

    /// A one-time enrollment code for `user`, valid for the configured time. A new
    /// invitation replaces the previous one.
    pub async fn invite(&self, user: &str) -> Result<(String, u64), FactorError> {
        let raw: String = recovery::generate()
            .into_iter()
            .take(2)
            .collect::<Vec<_>>()
            .join("")
            .replace('-', "");
        let code = format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..12]);
        let expires = self.now() + self.config.invitation_ttl.as_secs();
        let digest = self
            .keys
            .digests(&invite_purpose(user), &raw.as_bytes()[..12])
            .swap_remove(0);
        self.store
            .put_invitation(user, Invitation { digest, expires })
            .await?;
        Ok((code, expires))
    }

    /// Consume the user's invitation if `raw` is its code.
    pub async fn redeem(&self, user: &str, raw: &str) -> Result<Verdict, FactorError> {
        let code: String = raw
            .chars()
            .filter(|c| *c != '-' && *c != ' ')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if code.len() != 12 || raw.len() > 40 {
            return Ok(Verdict::Rejected);
        }
        let candidates = self.keys.digests(&invite_purpose(user), code.as_bytes());
        Ok(
            if self
                .store
                .take_invitation(user, &candidates, self.now())
                .await?
            {
                Verdict::Accepted
            } else {
                Verdict::Rejected
            },
        )
    }

    /// Forget every factor of the user and their recovery codes (a lost device, after an
    /// in-person check). The last accepted TOTP step stays: steps only move forward.
    pub async fn reset(&self, user: &str) -> Result<(), FactorError> {
        Ok(self.store.delete_user(user).await?)
    }

    // ---- passkeys ----

    /// Begin registering a passkey; returns the browser's options (JSON).
    pub async fn start_registration(
        &self,
        user: &str,
        ceremony: &str,
    ) -> Result<Option<String>, FactorError> {
        let factors = self.load(user).await?;
        let existing: Vec<Passkey> = factors.passkeys.iter().map(|p| p.passkey.clone()).collect();
        let Ok((options, state)) = self.rp.start_registration(user, &existing) else {
            return Ok(None);
        };
        self.keep_state(user, &format!("reg:{ceremony}"), &state)
            .await?;
        Ok(serde_json::to_string(&options).ok())
    }

    /// Finish a registration with the browser's answer; the passkey is stored under `name`,
    /// beside the others or in their place (`binding`).
    pub async fn finish_registration(
        &self,
        user: &str,
        ceremony: &str,
        name: &str,
        answer: &RegisterPublicKeyCredential,
        binding: Binding,
    ) -> Result<Verdict, FactorError> {
        let Some(state) = self
            .take_state::<PasskeyRegistration>(user, &format!("reg:{ceremony}"))
            .await?
        else {
            return Ok(Verdict::Rejected);
        };
        let Ok(passkey) = self.rp.finish_registration(answer, &state) else {
            return Ok(Verdict::Rejected);
        };
        if binding == Binding::ReplaceAll {
            self.reset(user).await?;
        }
        let named = NamedPasskey {
            name: name.to_string(),
            created: self.now(),
            last_used: None,
            passkey,
        };
        let now = self.now();
        let bound = self
            .update(user, |f| {
                match binding {
                    Binding::ReplaceLost if !f.replace_lost(Kind::Passkey, now) => return None,
                    Binding::ReplaceKind => f.passkeys.clear(),
                    Binding::Add | Binding::ReplaceAll | Binding::ReplaceLost => {}
                }
                f.passkeys.push(named.clone());
                Some(())
            })
            .await?;
        Ok(bound.map_or(Verdict::Rejected, |()| Verdict::Accepted))
    }

    pub async fn start_authentication(
        &self,
        user: &str,
        ceremony: &str,
    ) -> Result<Option<String>, FactorError> {
        let factors = self.load(user).await?;
        let keys: Vec<Passkey> = factors.passkeys.iter().map(|p| p.passkey.clone()).collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let Ok((options, state)) = self.rp.start_authentication(&keys) else {
            return Ok(None);
        };
        self.keep_state(user, &format!("auth:{ceremony}"), &state)
            .await?;
        Ok(serde_json::to_string(&options).ok())
    }

    /// Verify a passkey assertion; the signature counter is updated (a counter going
    /// backwards is refused by `webauthn-rs`).
    pub async fn finish_authentication(
        &self,
        user: &str,
        ceremony: &str,
        answer: &PublicKeyCredential,
    ) -> Result<Verdict, FactorError> {
        let Some(state) = self
            .take_state::<PasskeyAuthentication>(user, &format!("auth:{ceremony}"))
            .await?
        else {
            return Ok(Verdict::Rejected);
        };
        let Ok(result) = self.rp.finish_authentication(answer, &state) else {
            return Ok(Verdict::Rejected);
        };
        let now = self.now();
        // The passkey must still be there (not removed meanwhile) for the sign-in to count.
        let updated = self
            .update(user, |f| {
                let p = f
                    .passkeys
                    .iter_mut()
                    .find(|p| p.passkey.cred_id() == result.cred_id())?;
                p.passkey.update_credential(&result);
                p.last_used = Some(now);
                Some(())
            })
            .await?;
        Ok(match updated {
            Some(()) => Verdict::Accepted,
            None => Verdict::Rejected,
        })
    }

    /// Remove a passkey, never the user's last factor (decided on the record being changed,
    /// so two removals at once cannot leave the account without any). `on_probation_only`:
    /// only one bound by the passkey probation in force (the user undoing a replacement made
    /// with a recovery code). Once no such passkey is left, the probation ends.
    pub async fn remove_passkey(
        &self,
        user: &str,
        id: &str,
        on_probation_only: bool,
    ) -> Result<Removal, FactorError> {
        let now = self.now();
        let mut outcome = Removal::NotFound;
        self.update(user, |f| {
            let found = f.passkeys.iter().find(|p| p.id() == id);
            let allowed =
                found.is_some_and(|p| !on_probation_only || f.on_probation_passkey(p, now));
            if !allowed {
                outcome = Removal::NotFound;
                return None;
            }
            if f.totp.is_none() && f.passkeys.len() == 1 {
                outcome = Removal::LastFactor;
                return None;
            }
            f.passkeys.retain(|p| p.id() != id);
            if f.on_probation(now)
                .is_some_and(|pr| pr.kind == Kind::Passkey)
                && !f.passkeys.iter().any(|p| f.on_probation_passkey(p, now))
            {
                f.probation = None;
            }
            outcome = Removal::Removed;
            Some(())
        })
        .await?;
        Ok(outcome)
    }

    async fn keep_state<T: Serialize>(
        &self,
        user: &str,
        key: &str,
        state: &T,
    ) -> Result<(), FactorError> {
        let json = serde_json::to_vec(state).map_err(|e| FactorError::Corrupt(e.to_string()))?;
        let sealed = self.keys.seal(format!("{user}\0{key}").as_bytes(), &json);
        let expires = self.now() + passkeys::CEREMONY_SECONDS;
        Ok(self
            .store
            .put_challenge(&format!("{user}\0{key}"), sealed, expires)
            .await?)
    }

    /// The ceremony state, taken once. It is keyed by user and session, so another user's
    /// (or another session's) challenge is never found.
    async fn take_state<T: for<'de> Deserialize<'de>>(
        &self,
        user: &str,
        key: &str,
    ) -> Result<Option<T>, FactorError> {
        let full = format!("{user}\0{key}");
        let Some(sealed) = self.store.take_challenge(&full, self.now()).await? else {
            return Ok(None);
        };
        let (json, _) = self.keys.open(full.as_bytes(), &sealed)?;
        Ok(serde_json::from_slice(&json).ok())
    }
}

/// Associated data of a sealed value: what it is and whose.
fn aad(purpose: &str, user: &str) -> Vec<u8> {
    format!("{purpose}\0{user}").into_bytes()
}

fn user_key(user: &str) -> String {
    format!("u:{user}")
}

fn ip_key(ip: IpAddr) -> String {
    format!("ip:{}", crate::budget::source_of(ip))
}

fn recovery_purpose(user: &str) -> String {
    format!("recovery\0{user}")
}

fn invite_purpose(user: &str) -> String {
    format!("invitation\0{user}")
}

#[cfg(test)]
mod tests;
