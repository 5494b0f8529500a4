//! A factor record's life after enrollment: IT's actions, replacements and probations, the
//! durable note of who enrolled, values sealed for the session, invitation codes.

use super::*;

/// What IT and the enrollment pages call: the app's enrollment link, a probation, cancelled
/// codes and a reset each do what they say to this user and nobody else.
#[tokio::test]
async fn it_actions_change_the_named_user_only() {
    let s = setup();
    let url = s.f.otpauth_url("dr.martin", b"12345678901234567890");
    assert!(url.starts_with("otpauth://totp/Vigie:dr.martin?"), "{url}");
    assert!(
        url.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        "{url}"
    );
    assert!(url.contains("issuer=Vigie"), "{url}");

    let secret = totp::new_secret();
    for user in ["ann", "bob"] {
        let code = totp::code_at(&secret, totp::Hash::Sha1, s.f.now());
        s.f.enroll_totp(user, &secret, &code, Binding::Add)
            .await
            .unwrap();
        s.f.new_recovery_codes(user).await.unwrap();
    }
    s.f.put_on_probation("ann", Kind::Totp).await.unwrap();
    let now = s.f.now();
    let probation = Probation {
        kind: Kind::Totp,
        since: now,
        until: now + PROBATION_SECONDS,
    };
    assert_eq!(s.f.load("ann").await.unwrap().probation, Some(probation));
    assert_eq!(s.f.load("bob").await.unwrap().probation, None);

    s.f.cancel_recovery_codes("ann").await.unwrap();
    assert_eq!(s.f.recovery_codes_left("ann").await.unwrap(), 0);
    assert_eq!(s.f.recovery_codes_left("bob").await.unwrap(), 10);
    s.f.reset("bob").await.unwrap();
    assert!(s.f.load("bob").await.unwrap().is_empty());
    assert_eq!(s.f.recovery_codes_left("bob").await.unwrap(), 0);
    assert!(
        s.f.load("ann").await.unwrap().totp.is_some(),
        "ann keeps her app"
    );
}

/// An app bound again by the user's other factor ends a probation of the app (the disputed
/// app is gone), not one of the passkeys.
#[tokio::test]
async fn an_app_replaced_by_the_other_factor_ends_an_app_probation_only() {
    let s = setup();
    for (user, kind, after) in [("ann", Kind::Totp, false), ("bob", Kind::Passkey, true)] {
        s.f.put_on_probation(user, kind).await.unwrap();
        s.clock.advance(Duration::from_secs(30));
        let secret = totp::new_secret();
        let code = totp::code_at(&secret, totp::Hash::Sha1, s.f.now());
        let v =
            s.f.enroll_totp(user, &secret, &code, Binding::ReplaceKind)
                .await;
        assert_eq!(v.unwrap(), Verdict::Accepted);
        let probation = s.f.load(user).await.unwrap().probation;
        assert_eq!(probation.is_some(), after, "{user}: {kind:?}");
    }
}

/// An invitation code is read with its dashes and spaces, up to 40 characters in all: a longer
/// answer is refused before anything is looked up.
#[tokio::test]
async fn an_invitation_code_is_read_up_to_40_characters() {
    let s = setup();
    let (code, _) = s.f.invite("ann").await.unwrap();
    let padded = |n: usize| format!("{code:<n$}");
    assert_eq!(
        s.f.redeem("ann", &padded(41)).await.unwrap(),
        Verdict::Rejected
    );
    assert_eq!(
        s.f.redeem("ann", &padded(40)).await.unwrap(),
        Verdict::Accepted
    );
}

/// A passkey probation ends with the last passkey it covers, and only then; removing a
/// passkey leaves an app probation alone.
#[tokio::test]
async fn a_passkey_probation_ends_with_its_last_passkey() {
    let s = setup();
    let ids = |f: UserFactors| f.passkeys.iter().map(|p| p.id()).collect::<Vec<_>>();
    for (user, kind) in [("ann", Kind::Passkey), ("bob", Kind::Totp)] {
        register(&s, user, &mut authenticator(true), ORIGIN).await;
        s.clock.advance(Duration::from_secs(10));
        s.f.put_on_probation(user, kind).await.unwrap();
        for _ in 0..2 {
            register(&s, user, &mut authenticator(true), ORIGIN).await;
        }
    }
    let bound = ids(s.f.load("ann").await.unwrap());
    assert_eq!(bound.len(), 3);
    let probation = |user: &'static str| {
        let f = &s.f;
        async move { f.load(user).await.unwrap().probation.map(|p| p.kind) }
    };
    let removed = s.f.remove_passkey("ann", &bound[0], true).await.unwrap();
    assert_eq!(removed, Removal::NotFound, "older than the probation");
    assert_eq!(
        s.f.remove_passkey("ann", &bound[1], true).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(probation("ann").await, Some(Kind::Passkey), "one is left");
    assert_eq!(
        s.f.remove_passkey("ann", &bound[2], true).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(probation("ann").await, None, "none is left");
    let bob = ids(s.f.load("bob").await.unwrap());
    assert_eq!(
        s.f.remove_passkey("bob", &bob[2], false).await.unwrap(),
        Removal::Removed
    );
    assert_eq!(probation("bob").await, Some(Kind::Totp));
}

/// A value waiting in the session (a pending TOTP secret) opens for its user and purpose only,
/// and never shows in what the session stores.
#[test]
fn a_value_sealed_for_the_session_opens_for_its_user_and_purpose_only() {
    let s = setup();
    let secret = b"JBSWY3DPEHPK3PXP-pending";
    let sealed = s.f.seal("alice", "totp-pending", secret);
    assert!(!sealed.windows(secret.len()).any(|w| w == secret));
    let open = |user: &str, purpose: &str, sealed: &[u8]| s.f.open(user, purpose, sealed);
    assert_eq!(
        open("alice", "totp-pending", &sealed),
        Some(secret.to_vec())
    );
    assert_eq!(open("bob", "totp-pending", &sealed), None, "another user");
    assert_eq!(
        open("alice", "fresh-codes", &sealed),
        None,
        "another purpose"
    );
    let mut forged = sealed.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(open("alice", "totp-pending", &forged), None, "altered");
    assert_ne!(
        sealed,
        s.f.seal("alice", "totp-pending", secret),
        "a fresh nonce"
    );
}

/// An enrollment through this replica is written to the durable note, which outlives the
/// factor record; a record with no factor left is no enrollment.
#[tokio::test]
async fn an_enrollment_is_noted_durably_and_an_empty_record_is_not() {
    let s = setup();
    let ledger_at = s.dir.path().join("l.sqlite");
    let noting = |store: &str| {
        let store = crate::storage::sqlite::factors::SqliteFactors::open(&s.dir.path().join(store));
        let ledger = crate::storage::shared_state::Ledger::open(&ledger_at).unwrap();
        Factors::new(
            Arc::new(store.unwrap()),
            KeyRing::ephemeral(),
            s.f.config.clone(),
            s.clock.clone(),
        )
        .unwrap()
        .noting_enrollments_in(Arc::new(ledger))
    };
    let f = noting("a.sqlite");
    let secret = totp::new_secret();
    let code = totp::code_at(&secret, totp::Hash::Sha1, f.now());
    let enrolled = f.enroll_totp("dana", &secret, &code, Binding::Add).await;
    assert_eq!(enrolled.unwrap(), Verdict::Accepted);
    f.save("carl", &UserFactors::default()).await.unwrap();
    assert!(f.had_factor("dana").unwrap());
    // Another replica, its factor records lost: the note still knows dana, and only dana.
    let after_loss = noting("b.sqlite");
    assert!(after_loss.load("dana").await.unwrap().is_empty());
    assert!(after_loss.had_factor("dana").unwrap(), "noted durably");
    assert!(
        !after_loss.had_factor("carl").unwrap(),
        "nothing was enrolled"
    );
}

#[tokio::test]
async fn a_lost_factor_is_replaced_by_its_kind_or_else_the_others_go() {
    let s = setup();
    let app = |f: &Factors| {
        let secret = totp::new_secret();
        let code = totp::code_at(&secret, totp::Hash::Sha1, f.now());
        (secret, code)
    };
    let kinds = |f: UserFactors| (f.totp.map(|t| t.secret), f.passkeys.len());
    // Both kinds: a new app replaces the app only; a new passkey replaces the passkeys only.
    let (old, code) = app(&s.f);
    s.f.enroll_totp("alice", &old, &code, Binding::Add)
        .await
        .unwrap();
    for _ in 0..2 {
        register(&s, "alice", &mut authenticator(true), ORIGIN).await;
    }
    s.clock.advance(Duration::from_secs(60));
    let (new, code) = app(&s.f);
    let v =
        s.f.enroll_totp("alice", &new, &code, Binding::ReplaceLost)
            .await;
    assert_eq!(v.unwrap(), Verdict::Accepted);
    assert_eq!(
        kinds(s.f.load("alice").await.unwrap()),
        (Some(new.clone()), 2)
    );
    // On probation: a second replacement (another tab, another code, the other kind, the
    // same code again) binds nothing.
    let probation = s.f.load("alice").await.unwrap().on_probation(s.f.now());
    assert_eq!(probation.map(|p| p.kind), Some(Kind::Totp));
    let mut key = authenticator(true);
    let v = register_as(&s, "alice", &mut key, ORIGIN, |_| {}, Binding::ReplaceLost);
    assert_eq!(v.await, Verdict::Rejected);
    let again =
        s.f.enroll_totp("alice", &new, &code, Binding::ReplaceLost)
            .await;
    assert_eq!(again.unwrap(), Verdict::Rejected);
    assert_eq!(
        kinds(s.f.load("alice").await.unwrap()),
        (Some(new.clone()), 2)
    );
    // Once it ends, a new passkey replaces the passkeys only.
    s.clock.advance(Duration::from_secs(PROBATION_SECONDS));
    let v = register_as(&s, "alice", &mut key, ORIGIN, |_| {}, Binding::ReplaceLost);
    assert_eq!(v.await, Verdict::Accepted);
    assert_eq!(kinds(s.f.load("alice").await.unwrap()), (Some(new), 1));
    // Passkeys only, all lost: the app that replaces them takes their place.
    register(&s, "bob", &mut authenticator(true), ORIGIN).await;
    let (secret, code) = app(&s.f);
    s.f.enroll_totp("bob", &secret, &code, Binding::ReplaceLost)
        .await
        .unwrap();
    assert_eq!(kinds(s.f.load("bob").await.unwrap()), (Some(secret), 0));
    // An app only, lost: the passkey that replaces it takes its place.
    let (secret, code) = app(&s.f);
    s.f.enroll_totp("carol", &secret, &code, Binding::Add)
        .await
        .unwrap();
    let mut key = authenticator(true);
    let v = register_as(&s, "carol", &mut key, ORIGIN, |_| {}, Binding::ReplaceLost);
    assert_eq!(v.await, Verdict::Accepted);
    assert_eq!(kinds(s.f.load("carol").await.unwrap()), (None, 1));
    // Adding keeps everything.
    register(&s, "carol", &mut authenticator(true), ORIGIN).await;
    assert_eq!(kinds(s.f.load("carol").await.unwrap()), (None, 2));
}
