//! The pure rules of second factors: how long to wait after failures, when to lock, what an
//! enrollment must prove, whether a session meets a requirement. No I/O: unit-tested alone.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::EnrollmentProof;
use crate::factors::UserFactors;
use crate::identity::session::{AuthLevel, SessionRecord};

/// A user's failures allowed before delays start.
const FREE_FAILURES: u32 = 3;
/// A source address's: many people may share one (a ward behind a proxy).
pub const FREE_SOURCE_FAILURES: u32 = 20;
/// A source's count starts again after this long without attempts.
pub const SOURCE_FORGET_SECONDS: u64 = 15 * 60;
/// The longest delay between two attempts.
const MAX_DELAY: u64 = 300;

/// Seconds to wait after `failures` consecutive failures: none for the first `free`, then
/// 2, 4, 8 … seconds, capped at five minutes.
pub fn delay_after(failures: u32, free: u32) -> u64 {
    if failures < free {
        return 0;
    }
    let exp = (failures - free).min(16);
    (1u64 << (exp + 1)).min(MAX_DELAY)
}

/// Seconds a user must still wait at `now`, given (failures, last failure time).
pub fn wait_left((failures, last): (u32, u64), now: u64) -> u64 {
    (last + delay_after(failures, FREE_FAILURES)).saturating_sub(now)
}

/// The same for a source address.
pub fn source_wait_left((failures, last): (u32, u64), now: u64) -> u64 {
    (last + delay_after(failures, FREE_SOURCE_FAILURES)).saturating_sub(now)
}

/// What enrollment demands of this user, from this address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentNeeds {
    Nothing,
    Invitation,
}

/// Privileged users and users who already have a factor (a reset) always need an
/// invitation; otherwise the configured proof decides.
pub fn enrollment_needs(
    proof: EnrollmentProof,
    trusted: &[IpNet],
    privileged: bool,
    has_factor: bool,
    client: IpAddr,
) -> EnrollmentNeeds {
    if privileged || has_factor {
        return EnrollmentNeeds::Invitation;
    }
    match proof {
        EnrollmentProof::Open => EnrollmentNeeds::Nothing,
        EnrollmentProof::TrustedNetworks if trusted.iter().any(|n| n.contains(&client)) => {
            EnrollmentNeeds::Nothing
        }
        _ => EnrollmentNeeds::Invitation,
    }
}

/// What a session may change in the user's own factors, from how it proved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorRights {
    /// Nothing: no recent proof, or a recovery session that already made its replacement.
    Nothing,
    /// A recovery code was the proof. It is the lost-device path: one replacement factor,
    /// which takes the place of the lost kind; no removal, no new codes otherwise.
    ReplaceLost,
    /// A recent proof of a factor the user had: new recovery codes; and, when that proof was
    /// of their strongest kind (`add_or_replace`), add a factor, replace the authenticator
    /// app, or remove a passkey (an app's code removing the passkeys would otherwise clear
    /// the way to adding its own).
    Manage { add_or_replace: bool },
}

/// The rights of session `s` at `now` over a user's `factors`. "Recent" is the second
/// factor proven within `fresh` seconds. While a factor bound with a recovery code is on
/// probation, neither another recovery code nor that factor changes anything.
pub fn factor_rights(
    s: &SessionRecord,
    factors: &UserFactors,
    fresh: u64,
    now: u64,
) -> FactorRights {
    let recent = s.level >= AuthLevel::SecondFactor
        && s.second_factor_at
            .is_some_and(|t| now.saturating_sub(t) <= fresh);
    if !recent || s.lost_replaced {
        return FactorRights::Nothing;
    }
    let probation = factors.on_probation(now);
    let method = s.factor_method.as_deref();
    if probation.is_some_and(|p| method == Some(p.kind.method())) {
        return FactorRights::Nothing;
    }
    match method {
        Some("recovery") if probation.is_some() => FactorRights::Nothing,
        Some("recovery") => FactorRights::ReplaceLost,
        Some("passkey") => FactorRights::Manage {
            add_or_replace: s.strongest_proof,
        },
        // An app's code is the strongest kind only while the user has no passkey: one added
        // since (by the user, elsewhere) raises the bar for sessions already open.
        Some("totp") => FactorRights::Manage {
            add_or_replace: s.strongest_proof && factors.passkeys.is_empty(),
        },
        _ => FactorRights::Nothing,
    }
}

/// What a request needs from its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub level: AuthLevel,
    /// The factor at that level must be at most this many seconds old.
    pub within: Option<u64>,
}

impl Requirement {
    /// Nothing asked of the session (a public path, or a portal without sessions).
    pub const PUBLIC: Requirement = Requirement {
        level: AuthLevel::None,
        within: None,
    };
    pub const PASSWORD: Requirement = Requirement {
        level: AuthLevel::Password,
        within: None,
    };
    pub const SECOND_FACTOR: Requirement = Requirement {
        level: AuthLevel::SecondFactor,
        within: None,
    };

    /// The stronger of two requirements.
    pub fn max(self, other: Requirement) -> Requirement {
        let level = self.level.max(other.level);
        let within = match (self.within, other.within) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Requirement { level, within }
    }

    /// Whether `s` meets it at `now`.
    pub fn met_by(&self, s: &SessionRecord, now: u64) -> bool {
        if s.level < self.level {
            return false;
        }
        let proven_at = match self.level {
            AuthLevel::None => return true,
            AuthLevel::Password => s.password_at,
            AuthLevel::SecondFactor => s.second_factor_at,
            AuthLevel::PhishingResistant => s.phishing_resistant_at,
        };
        match (self.within, proven_at) {
            (None, _) => true,
            (Some(w), Some(at)) => now.saturating_sub(at) <= w,
            (Some(_), None) => false,
        }
    }
}

#[cfg(test)]
mod tests;
