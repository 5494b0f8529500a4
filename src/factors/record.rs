//! What is stored for one user (sealed, as one record): the app, the passkeys, and the
//! probation of a factor bound with a recovery code; and how a new factor joins them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::Passkey;

/// Everything enrolled for one user; stored sealed as one record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UserFactors {
    pub totp: Option<TotpFactor>,
    #[serde(default)]
    pub passkeys: Vec<NamedPasskey>,
    /// A factor bound with a recovery code, on probation: see [`Probation`].
    #[serde(default)]
    pub probation: Option<Probation>,
}

/// A factor bound through the lost-device path (a recovery code) is on probation for
/// [`PROBATION_SECONDS`]: no second replacement, and proving it changes nothing in the
/// user's factors, while the SOC checks with the user. A stolen password and code sheet
/// would otherwise bind a factor, then use it to remove the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probation {
    /// The kind bound.
    pub kind: Kind,
    /// When it was bound: passkeys created since are the probation's.
    pub since: u64,
    pub until: u64,
}

/// A factor's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Totp,
    Passkey,
}

impl Kind {
    /// The method a session records when this kind proved it.
    pub fn method(self) -> &'static str {
        match self {
            Kind::Totp => "totp",
            Kind::Passkey => "passkey",
        }
    }
}

/// How long a factor bound with a recovery code stays on probation.
pub const PROBATION_SECONDS: u64 = 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotpFactor {
    pub secret: Vec<u8>,
    pub hash: String,
    pub created: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedPasskey {
    pub name: String,
    pub created: u64,
    pub last_used: Option<u64>,
    pub passkey: Passkey,
}

impl NamedPasskey {
    /// The credential id, base64url: how pages and forms name a passkey.
    pub fn id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.passkey.cred_id().as_ref())
    }
}

impl UserFactors {
    pub fn is_empty(&self) -> bool {
        self.totp.is_none() && self.passkeys.is_empty()
    }

    /// The probation in force at `now`, if any.
    pub fn on_probation(&self, now: u64) -> Option<Probation> {
        self.probation.filter(|p| now < p.until)
    }

    /// Make room for a lost-device replacement of `kind` at `now`, and start its probation:
    /// refused (`false`, nothing changed) while another is on probation, so two at once (two
    /// tabs, two codes, an app and a passkey in parallel) bind one factor, never both.
    pub(super) fn replace_lost(&mut self, kind: Kind, now: u64) -> bool {
        if self.on_probation(now).is_some() {
            return false;
        }
        match kind {
            // Its kind if the user had it, else the other (passkeys only, all lost).
            Kind::Totp if self.totp.is_none() => self.passkeys.clear(),
            Kind::Totp => {}
            Kind::Passkey if self.passkeys.is_empty() => self.totp = None,
            Kind::Passkey => self.passkeys.clear(),
        }
        self.probation = Some(Probation {
            kind,
            since: now,
            until: now + PROBATION_SECONDS,
        });
        true
    }

    /// Whether this passkey was bound by the passkey probation in force at `now`.
    pub fn on_probation_passkey(&self, p: &NamedPasskey, now: u64) -> bool {
        self.on_probation(now)
            .is_some_and(|pr| pr.kind == Kind::Passkey && p.created >= pr.since)
    }
}

/// How a new factor joins the user's others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Beside them.
    Add,
    /// In the place of those of its kind: a new authenticator app, or every passkey.
    ReplaceKind,
    /// A recovery-code session's replacement of what was lost: those of its kind if the user
    /// had any, else every other factor (a user with passkeys only, who lost them, sets up
    /// an app instead).
    ReplaceLost,
    /// In the place of every factor and recovery code (a reset by invitation).
    ReplaceAll,
}
