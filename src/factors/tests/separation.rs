//! What keeps one party's traces from counting as another's: a source's failures are its
//! address's, and a digest is bound to its purpose and its user.

use std::net::IpAddr;

use super::super::{invite_purpose, recovery_purpose};
use super::setup;

/// A source that has guessed for many users waits; another source does not: the source key
/// is its own address's, never shared.
#[tokio::test]
async fn a_busy_source_waits_and_another_does_not() {
    let s = setup();
    let busy: IpAddr = "10.1.2.3".parse().unwrap();
    let other: IpAddr = "192.0.2.9".parse().unwrap();
    let mut n = 0;
    // A fresh user each time: only the source's count can slow it down.
    while s.f.wait_left(&format!("u{n}"), busy).await.unwrap() == 0 {
        s.f.begin_attempt(&format!("u{n}"), busy)
            .await
            .unwrap()
            .unwrap();
        n += 1;
        assert!(n < 1000, "a source guessing for every user is never slowed");
    }
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
