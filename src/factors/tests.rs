//! The factor service against a real SQLite file, an injected clock and a software WebAuthn
//! authenticator (threat model 17, 18, 20, 21, 22).

use std::sync::Arc;
use std::time::Duration;

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use super::*;
use crate::config::Config;
use crate::identity::session::ManualClock;

const ORIGIN: &str = "https://ehr.vigie.test";

struct Setup {
    f: Factors,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:1\"\n[[portal]]\nname = \"p\"\nupstream = \"127.0.0.1:1\"\nlogin = \"gateway\"\n[second_factor]\nwebauthn_rp_id = \"vigie.test\"\nwebauthn_origins = [\"{ORIGIN}\"]\n"
    );
    let config = Config::demo_from_toml(std::path::Path::new("t.toml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        crate::storage::sqlite::factors::SqliteFactors::open(&dir.path().join("f.sqlite")).unwrap(),
    );
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let f = Factors::new(
        store,
        KeyRing::ephemeral(),
        config.second_factor,
        clock.clone(),
    )
    .unwrap();
    Setup { f, clock, dir }
}

fn authenticator(uv: bool) -> WebauthnAuthenticator<SoftPasskey> {
    WebauthnAuthenticator::new(SoftPasskey::new(uv))
}

async fn register(
    s: &Setup,
    user: &str,
    auth: &mut WebauthnAuthenticator<SoftPasskey>,
    origin: &str,
) -> Verdict {
    register_with(s, user, auth, origin, |_| {}).await
}

/// Register, letting the client tamper with the server's options first.
async fn register_with(
    s: &Setup,
    user: &str,
    auth: &mut WebauthnAuthenticator<SoftPasskey>,
    origin: &str,
    tamper: impl FnOnce(&mut CreationChallengeResponse),
) -> Verdict {
    register_as(s, user, auth, origin, tamper, Binding::Add).await
}

async fn register_as(
    s: &Setup,
    user: &str,
    auth: &mut WebauthnAuthenticator<SoftPasskey>,
    origin: &str,
    tamper: impl FnOnce(&mut CreationChallengeResponse),
    binding: Binding,
) -> Verdict {
    let json = s.f.start_registration(user, "sess").await.unwrap().unwrap();
    let mut options: CreationChallengeResponse = serde_json::from_str(&json).unwrap();
    tamper(&mut options);
    match auth.do_registration(Url::parse(origin).unwrap(), options) {
        Ok(answer) => {
            s.f.finish_registration(user, "sess", "key", &answer, binding)
                .await
                .unwrap()
        }
        // Every case here must reach the server: the authenticator itself refuses nothing.
        Err(e) => panic!("the software authenticator refused: {e:?}"),
    }
}

async fn assertion(
    s: &Setup,
    user: &str,
    ceremony: &str,
    auth: &mut WebauthnAuthenticator<SoftPasskey>,
) -> PublicKeyCredential {
    let json =
        s.f.start_authentication(user, ceremony)
            .await
            .unwrap()
            .unwrap();
    let options: RequestChallengeResponse = serde_json::from_str(&json).unwrap();
    auth.do_authentication(Url::parse(ORIGIN).unwrap(), options)
        .unwrap()
}

#[tokio::test]
async fn totp_secrets_are_sealed_and_steps_accepted_once() {
    let s = setup();
    let secret = totp::new_secret();
    let now = s.f.now();
    let code = totp::code_at(&secret, totp::Hash::Sha1, now);
    assert_eq!(
        s.f.enroll_totp("alice", &secret, "000000x", Binding::Add)
            .await
            .unwrap(),
        Verdict::Rejected
    );
    assert_eq!(
        s.f.enroll_totp("alice", &secret, &code, Binding::Add)
            .await
            .unwrap(),
        Verdict::Accepted
    );
    // The file holds neither the raw secret nor its base32 form.
    let db = std::fs::read(s.dir.path().join("f.sqlite")).unwrap();
    let b32 = totp::secret_for_typing(&secret).replace(' ', "");
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_slice()));
    assert!(!db.windows(b32.len()).any(|w| w == b32.as_bytes()));
    let factors = s.f.load("alice").await.unwrap();
    // The enrollment code's step is used: the same code again is a replay.
    assert_eq!(
        s.f.check_totp("alice", &factors, &code).await.unwrap(),
        Verdict::Rejected
    );
    s.clock.advance(Duration::from_secs(30));
    let next = totp::code_at(&secret, totp::Hash::Sha1, s.f.now() + 30);
    assert_eq!(
        s.f.check_totp("alice", &factors, &next).await.unwrap(),
        Verdict::Accepted
    );
    // An older step after a newer one: refused, though inside the tolerance window.
    let current = totp::code_at(&secret, totp::Hash::Sha1, s.f.now());
    assert_eq!(
        s.f.check_totp("alice", &factors, &current).await.unwrap(),
        Verdict::Rejected
    );
    s.clock.advance(Duration::from_secs(120));
    for offset in [-60i64, 60] {
        let far = totp::code_at(
            &secret,
            totp::Hash::Sha1,
            (s.f.now() as i64 + offset) as u64,
        );
        assert_eq!(
            s.f.check_totp("alice", &factors, &far).await.unwrap(),
            Verdict::Rejected,
            "±2 steps"
        );
    }
}

#[tokio::test]
async fn failures_slow_down_then_lock_well_before_100() {
    let s = setup();
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let mut locked_at = None;
    for n in 1..=100u32 {
        // An attacker who waits out every delay still reaches the lock quickly.
        if let Err(wait) = s.f.begin_attempt("bob", ip).await.unwrap() {
            s.clock.advance(Duration::from_secs(wait));
            s.f.begin_attempt("bob", ip).await.unwrap().unwrap();
        }
        if s.f.failures("bob").await.unwrap() >= s.f.config.max_failures {
            locked_at = Some(n);
            break;
        }
    }
    assert_eq!(
        locked_at,
        Some(10),
        "default lock after 10 consecutive failures"
    );
    // Delays apply per user, whatever the source; a source has more room.
    let elsewhere: IpAddr = "192.0.2.9".parse().unwrap();
    assert!(s.f.wait_left("bob", elsewhere).await.unwrap() > 0);
    assert_eq!(s.f.wait_left("carol", ip).await.unwrap(), 0);
    s.f.succeeded("bob", ip).await.unwrap();
    assert_eq!(s.f.wait_left("bob", elsewhere).await.unwrap(), 0);
    // IT's unlock forgets the user's failures (and only the user's).
    for _ in 0..3 {
        s.f.begin_attempt("bob", elsewhere).await.unwrap().unwrap();
        s.f.begin_attempt("carol", elsewhere)
            .await
            .unwrap()
            .unwrap();
    }
    s.f.forget_failures("bob").await.unwrap();
    assert_eq!(s.f.failures("bob").await.unwrap(), 0);
    assert_eq!(s.f.failures("carol").await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_parallel_guesses_is_counted_before_any_is_checked() {
    let s = Arc::new(setup());
    let ip: IpAddr = "10.1.2.3".parse().unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.f.begin_attempt("dave", ip).await.unwrap().is_ok() })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    // Only the free attempts go through at once; the rest wait (and were given back).
    assert_eq!(
        admitted, 3,
        "{admitted} of 200 parallel guesses were checked"
    );
    assert_eq!(s.f.failures("dave").await.unwrap(), 3);
}

#[tokio::test]
async fn recovery_codes_and_invitations_are_single_use() {
    let s = setup();
    let codes = s.f.new_recovery_codes("alice").await.unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        s.f.use_recovery_code("bob", &codes[0]).await.unwrap(),
        Verdict::Rejected
    );
    assert_eq!(
        s.f.use_recovery_code("alice", &codes[0].to_uppercase())
            .await
            .unwrap(),
        Verdict::Accepted
    );
    assert_eq!(
        s.f.use_recovery_code("alice", &codes[0]).await.unwrap(),
        Verdict::Rejected
    );
    assert_eq!(s.f.recovery_codes_left("alice").await.unwrap(), 9);
    let again = s.f.new_recovery_codes("alice").await.unwrap();
    assert_eq!(
        s.f.use_recovery_code("alice", &codes[1]).await.unwrap(),
        Verdict::Rejected,
        "replaced"
    );
    assert_eq!(
        s.f.use_recovery_code("alice", &again[1]).await.unwrap(),
        Verdict::Accepted
    );

    let (code, expires) = s.f.invite("alice").await.unwrap();
    assert_eq!(expires, s.f.now() + 72 * 3600);
    assert_eq!(
        s.f.redeem("bob", &code).await.unwrap(),
        Verdict::Rejected,
        "another user's"
    );
    assert_eq!(
        s.f.redeem("alice", "aaaa-bbbb-cccc").await.unwrap(),
        Verdict::Rejected
    );
    assert_eq!(
        s.f.redeem("alice", &code.to_uppercase()).await.unwrap(),
        Verdict::Accepted
    );
    assert_eq!(
        s.f.redeem("alice", &code).await.unwrap(),
        Verdict::Rejected,
        "used"
    );
    let (late, _) = s.f.invite("alice").await.unwrap();
    s.clock.advance(Duration::from_secs(72 * 3600));
    assert_eq!(
        s.f.redeem("alice", &late).await.unwrap(),
        Verdict::Rejected,
        "expired"
    );
}

#[tokio::test]
async fn passkeys_register_authenticate_and_refuse_every_forgery() {
    let s = setup();
    let mut alice = authenticator(true);
    assert_eq!(
        register(&s, "alice", &mut alice, ORIGIN).await,
        Verdict::Accepted
    );
    // User verification is required: a client that drops the requirement and an
    // authenticator that does not verify the user are refused by the server.
    let no_uv = register_with(&s, "bob", &mut authenticator(false), ORIGIN, |o| {
        let mut raw = serde_json::to_value(&*o).unwrap();
        raw["publicKey"]["authenticatorSelection"]["userVerification"] = "discouraged".into();
        *o = serde_json::from_value(raw).unwrap();
    })
    .await;
    assert_eq!(no_uv, Verdict::Rejected);
    // Wrong origin, and an origin of another relying party.
    assert_eq!(
        register(
            &s,
            "bob",
            &mut authenticator(true),
            "https://evil.vigie.test"
        )
        .await,
        Verdict::Rejected
    );
    let mut bob = authenticator(true);
    assert_eq!(
        register(&s, "bob", &mut bob, ORIGIN).await,
        Verdict::Accepted
    );

    // A good assertion is accepted once; replaying it (the challenge is consumed) is not.
    let good = assertion(&s, "alice", "s1", &mut alice).await;
    assert_eq!(
        s.f.finish_authentication("alice", "s1", &good)
            .await
            .unwrap(),
        Verdict::Accepted
    );
    assert_eq!(
        s.f.finish_authentication("alice", "s1", &good)
            .await
            .unwrap(),
        Verdict::Rejected
    );
    let used = s.f.load("alice").await.unwrap().passkeys[0].last_used;
    assert_eq!(used, Some(s.f.now()));

    // Another session's or another user's challenge is never found.
    let a = assertion(&s, "alice", "s2", &mut alice).await;
    assert_eq!(
        s.f.finish_authentication("alice", "other-session", &a)
            .await
            .unwrap(),
        Verdict::Rejected
    );
    assert_eq!(
        s.f.finish_authentication("bob", "s2", &a).await.unwrap(),
        Verdict::Rejected
    );
    // Bob's challenge answered with Alice's credential.
    let json =
        s.f.start_authentication("bob", "s3")
            .await
            .unwrap()
            .unwrap();
    let mut options: RequestChallengeResponse = serde_json::from_str(&json).unwrap();
    let alice_key = s.f.load("alice").await.unwrap().passkeys[0]
        .passkey
        .cred_id()
        .clone();
    options.public_key.allow_credentials[0].id = alice_key.as_ref().to_vec().into();
    let wrong_user = alice
        .do_authentication(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    assert_eq!(
        s.f.finish_authentication("bob", "s3", &wrong_user)
            .await
            .unwrap(),
        Verdict::Rejected
    );

    // A signature counter going backwards (a cloned authenticator) is refused.
    let mut factors = s.f.load("alice").await.unwrap();
    let mut raw = serde_json::to_value(&factors.passkeys[0].passkey).unwrap();
    raw["cred"]["counter"] = serde_json::json!(1_000_000);
    factors.passkeys[0].passkey = serde_json::from_value(raw).unwrap();
    s.f.save("alice", &factors).await.unwrap();
    let behind = assertion(&s, "alice", "s4", &mut alice).await;
    assert_eq!(
        s.f.finish_authentication("alice", "s4", &behind)
            .await
            .unwrap(),
        Verdict::Rejected
    );

    // Ceremonies expire.
    let late = assertion(&s, "bob", "s5", &mut bob).await;
    s.clock
        .advance(Duration::from_secs(passkeys::CEREMONY_SECONDS + 1));
    assert_eq!(
        s.f.finish_authentication("bob", "s5", &late).await.unwrap(),
        Verdict::Rejected
    );
}

#[tokio::test]
async fn rotated_keys_still_open_and_reseal() {
    let s = setup();
    let old = KeyRing::generate_line("k1");
    let new = KeyRing::generate_line("k2");
    let with = |ring: &str| {
        Factors::new(
            s.f.store.clone(),
            KeyRing::parse(ring).unwrap(),
            s.f.config.clone(),
            s.clock.clone(),
        )
        .unwrap()
    };
    let before = with(&old);
    let secret = totp::new_secret();
    let code = totp::code_at(&secret, totp::Hash::Sha1, before.now());
    before
        .enroll_totp("alice", &secret, &code, Binding::Add)
        .await
        .unwrap();
    let (sealed, _) = s.f.store.load("alice").await.unwrap().unwrap();
    assert!(before.keys.open(&aad("factors", "alice"), &sealed).is_ok());
    assert!(
        before
            .keys
            .open(&aad("factors", "mallory"), &sealed)
            .is_err(),
        "bound to the user"
    );
    assert!(
        before
            .keys
            .open(&aad("totp-pending", "alice"), &sealed)
            .is_err(),
        "and to its purpose"
    );
    // The new key first, the old one kept: the record opens, and is sealed again under k2.
    let rotated = with(&format!("{new}\n{old}"));
    assert_eq!(
        rotated.load("alice").await.unwrap().totp.unwrap().secret,
        secret
    );
    let only_new = with(&new);
    assert!(
        only_new.load("alice").await.is_ok(),
        "re-sealed under the new key"
    );
    assert!(
        matches!(before.load("alice").await, Err(FactorError::Crypto(_))),
        "the old ring alone cannot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_removals_never_leave_an_account_without_a_factor() {
    let s = Arc::new(setup());
    for _ in 0..2 {
        let mut key = authenticator(true);
        assert_eq!(
            register(&s, "erin", &mut key, ORIGIN).await,
            Verdict::Accepted
        );
    }
    let ids: Vec<String> =
        s.f.load("erin")
            .await
            .unwrap()
            .passkeys
            .iter()
            .map(|p| p.id())
            .collect();
    assert_eq!(ids.len(), 2);
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let s = s.clone();
            tokio::spawn(async move { s.f.remove_passkey("erin", &id, false).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes.sort_by_key(|o| *o as u8);
    assert_eq!(
        outcomes,
        vec![Removal::Removed, Removal::LastFactor],
        "{outcomes:?}"
    );
    assert_eq!(s.f.load("erin").await.unwrap().passkeys.len(), 1);
}

/// Factors lost with Redis: a replica whose own file never saw the user enroll still takes
/// them for enrolled once the replicas' shared note lists them (another replica re-established
/// the state before this one checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_the_shared_note_lists_is_no_newcomer_after_a_loss() {
    let s = setup();
    let server = crate::testing::RedisServer::start();
    let redis = server.store(Arc::default());
    let ledger = Arc::new(
        crate::storage::shared_state::Ledger::open(&s.dir.path().join("l.sqlite")).unwrap(),
    );
    let f = Factors::new(
        Arc::new(crate::storage::redis::factors::RedisFactors::new(redis)),
        KeyRing::ephemeral(),
        s.f.config.clone(),
        s.clock.clone(),
    )
    .unwrap()
    .noting_enrollments_in(ledger);
    redis::cmd("SADD")
        .arg("t:enrolled")
        .arg("ann")
        .exec(&mut server.conn())
        .unwrap();
    for user in ["ann", "bob"] {
        assert!(f.load(user).await.unwrap().is_empty(), "no factor record");
    }
    assert!(f.had_factor("ann").unwrap(), "listed by another replica");
    assert!(!f.had_factor("bob").unwrap(), "a newcomer");
}

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
