//! What keeps one party's traces from counting as another's (a source's failures are its
//! address's, a digest is bound to its purpose and its user, a passkey handle to its user),
//! how long a source's count is kept, and how long a lost-device replacement stays on
//! probation.

use std::net::IpAddr;

use super::super::{invite_purpose, recovery_purpose};
use super::{setup, Setup};

/// Guess from `ip` for a fresh user each time (only the source's count can slow it down)
/// until the source must wait; how many guesses that took.
async fn guess_until_slowed(s: &Setup, ip: IpAddr) -> usize {
    let mut n = 0;
    while s.f.wait_left(&format!("u{n}"), ip).await.unwrap() == 0 {
        s.f.begin_attempt(&format!("u{n}"), ip)
            .await
            .unwrap()
            .unwrap();
        n += 1;
        assert!(n < 1000, "a source guessing for every user is never slowed");
    }
    n
}

/// A source that has guessed for many users waits; another source does not: the source key
/// is its own address's, never shared.
#[tokio::test]
async fn a_busy_source_waits_and_another_does_not() {
    let s = setup();
    let busy: IpAddr = "10.1.2.3".parse().unwrap();
    let other: IpAddr = "192.0.2.9".parse().unwrap();
    let n = guess_until_slowed(&s, busy).await;
    assert!(
        n >= 20,
        "slowed after {n}: a source has more room than a user"
    );
    assert_eq!(s.f.wait_left("fresh", other).await.unwrap(), 0);
    assert!(s.f.begin_attempt("fresh", other).await.unwrap().is_ok());
}

/// A recovery code is never an invitation, nor another user's code: every digest purpose is
/// distinct and names its user.
#[test]
fn digest_purposes_are_bound_to_their_kind_and_their_user() {
    let all = [
        recovery_purpose("alice"),
        recovery_purpose("bob"),
        invite_purpose("alice"),
        invite_purpose("bob"),
    ];
    for (i, a) in all.iter().enumerate() {
        assert!(!a.is_empty());
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

/// A passkey's user handle is the user's own: stable, distinct between users, never empty.
#[test]
fn each_user_has_a_stable_passkey_handle_of_their_own() {
    use super::super::passkeys::RelyingParty;
    let alice = RelyingParty::user_handle("alice");
    assert_eq!(alice, RelyingParty::user_handle("alice"));
    assert_ne!(alice, RelyingParty::user_handle("bob"));
    assert!(!alice.is_nil());
}

/// A factor bound with a recovery code is on probation for 24 hours (README), then free.
#[test]
fn a_lost_device_probation_lasts_a_day() {
    let mut f = super::super::UserFactors::default();
    assert!(f.replace_lost(super::super::Kind::Totp, 1_000));
    assert!(f.on_probation(1_000 + 24 * 3600 - 1).is_some());
    assert!(f.on_probation(1_000 + 24 * 3600).is_none());
}

/// A source's count is kept while it keeps guessing (five quiet minutes outlast any delay, not
/// the count), and forgotten after a quiet quarter of an hour.
#[tokio::test]
async fn a_source_is_forgotten_after_a_quiet_quarter_hour() {
    let s = setup();
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    guess_until_slowed(&s, ip).await;
    s.clock.advance(std::time::Duration::from_secs(300));
    assert_eq!(s.f.wait_left("x1", ip).await.unwrap(), 0);
    s.f.begin_attempt("x1", ip).await.unwrap().unwrap();
    assert!(s.f.wait_left("x2", ip).await.unwrap() > 0, "kept");
    s.clock.advance(std::time::Duration::from_secs(15 * 60 + 1));
    s.f.begin_attempt("x3", ip).await.unwrap().unwrap();
    assert_eq!(s.f.wait_left("x4", ip).await.unwrap(), 0, "forgotten");
}
