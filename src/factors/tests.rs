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

mod lifecycle;
mod separation;

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
