//! The pure rules of second factors: how long to wait after failures, when to lock, what an
//! enrollment must prove, whether a session meets a requirement. No I/O: unit-tested alone.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::EnrollmentProof;
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
mod tests {
    use super::*;
    use crate::identity::session::record;

    #[test]
    fn delays_grow_and_are_capped() {
        let d: Vec<u64> = (0..12).map(|n| delay_after(n, FREE_FAILURES)).collect();
        assert_eq!(d, vec![0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(delay_after(10_000, FREE_FAILURES), 300);
        assert_eq!(
            source_wait_left((19, 100), 100),
            0,
            "a shared address has more room"
        );
        assert_eq!(source_wait_left((20, 100), 100), 2);
        assert_eq!(wait_left((4, 100), 101), 3);
        assert_eq!(wait_left((4, 100), 200), 0);
        assert_eq!(wait_left((0, 0), 5), 0);
    }

    #[test]
    fn enrollment_proofs() {
        let lan: Vec<IpNet> = vec!["10.20.0.0/16".parse().unwrap()];
        let inside: IpAddr = "10.20.3.4".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        use EnrollmentNeeds::*;
        use EnrollmentProof as P;
        assert_eq!(
            enrollment_needs(P::Invitation, &lan, false, false, inside),
            Invitation
        );
        assert_eq!(
            enrollment_needs(P::TrustedNetworks, &lan, false, false, inside),
            Nothing
        );
        assert_eq!(
            enrollment_needs(P::TrustedNetworks, &lan, false, false, outside),
            Invitation
        );
        assert_eq!(
            enrollment_needs(P::TrustedNetworks, &lan, true, false, inside),
            Invitation,
            "privileged"
        );
        assert_eq!(
            enrollment_needs(P::Open, &lan, false, false, outside),
            Nothing
        );
        assert_eq!(
            enrollment_needs(P::Open, &lan, true, false, outside),
            Invitation,
            "privileged"
        );
        assert_eq!(
            enrollment_needs(P::Open, &lan, false, true, outside),
            Invitation,
            "reset"
        );
    }

    #[test]
    fn requirements_and_step_up_windows() {
        let now = 10_000;
        let mut s = record(Some("alice"), AuthLevel::Password, now - 1000);
        assert!(Requirement::PASSWORD.met_by(&s, now));
        assert!(!Requirement::SECOND_FACTOR.met_by(&s, now));
        s.level = AuthLevel::SecondFactor;
        s.second_factor_at = Some(now - 400);
        assert!(Requirement::SECOND_FACTOR.met_by(&s, now));
        let fresh = Requirement {
            level: AuthLevel::SecondFactor,
            within: Some(300),
        };
        assert!(!fresh.met_by(&s, now), "factor older than the window");
        s.second_factor_at = Some(now - 300);
        assert!(fresh.met_by(&s, now));
        let passkey = Requirement {
            level: AuthLevel::PhishingResistant,
            within: None,
        };
        assert!(!passkey.met_by(&s, now), "TOTP is not phishing-resistant");
        s.level = AuthLevel::PhishingResistant;
        s.phishing_resistant_at = Some(now - 10);
        assert!(passkey.met_by(&s, now));
        assert_eq!(
            fresh.max(passkey),
            Requirement {
                level: AuthLevel::PhishingResistant,
                within: Some(300)
            }
        );
    }
}
