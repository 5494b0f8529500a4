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

#[test]
fn a_recovery_code_replaces_once_and_manages_nothing() {
    use crate::factors::{Kind, Probation, UserFactors};
    let fresh = 300;
    let mut s = record(Some("n.q"), AuthLevel::SecondFactor, 1_000);
    s.second_factor_at = Some(1_000);
    let plain = UserFactors::default();
    let rights = |s: &SessionRecord, f: &UserFactors, now: u64| factor_rights(s, f, fresh, now);
    s.factor_method = Some("recovery".into());
    assert_eq!(rights(&s, &plain, 1_100), FactorRights::ReplaceLost);
    assert_eq!(rights(&s, &plain, 1_300), FactorRights::ReplaceLost);
    // Stale: nothing, whatever the method.
    assert_eq!(rights(&s, &plain, 1_301), FactorRights::Nothing);
    // The one replacement made: nothing more in this session.
    s.lost_replaced = true;
    assert_eq!(rights(&s, &plain, 1_100), FactorRights::Nothing);
    s.factor_method = Some("totp".into());
    assert_eq!(rights(&s, &plain, 1_100), FactorRights::Nothing);
    s.lost_replaced = false;
    // What a proof allows was fixed when it was given: an app's code while the user had a
    // passkey stays weaker, even once the passkeys are gone.
    assert_eq!(
        rights(&s, &plain, 1_100),
        FactorRights::Manage {
            add_or_replace: false
        }
    );
    s.strongest_proof = true;
    assert_eq!(
        rights(&s, &plain, 1_100),
        FactorRights::Manage {
            add_or_replace: true
        }
    );
    // (A passkey added since by the user lowers an app session's rights:
    // tests/gateway/lost_factor.rs, which has real passkeys.)
    // A factor on probation: proving it, or another recovery code, changes nothing until
    // the probation ends; another kind's proof still manages.
    let mut probation = plain.clone();
    probation.probation = Some(Probation {
        kind: Kind::Totp,
        since: 1_000,
        until: 1_200,
    });
    assert_eq!(rights(&s, &probation, 1_100), FactorRights::Nothing);
    assert_eq!(
        rights(&s, &probation, 1_200),
        FactorRights::Manage {
            add_or_replace: true
        }
    );
    s.factor_method = Some("recovery".into());
    assert_eq!(rights(&s, &probation, 1_100), FactorRights::Nothing);
    s.factor_method = Some("passkey".into());
    assert_eq!(
        rights(&s, &probation, 1_100),
        FactorRights::Manage {
            add_or_replace: true
        }
    );
    // A password alone, or an unknown method, changes nothing.
    s.factor_method = None;
    assert_eq!(rights(&s, &plain, 1_100), FactorRights::Nothing);
    let mut password = record(Some("n.q"), AuthLevel::Password, 1_000);
    password.factor_method = Some("passkey".into());
    password.second_factor_at = Some(1_000);
    assert_eq!(rights(&password, &plain, 1_100), FactorRights::Nothing);
}
