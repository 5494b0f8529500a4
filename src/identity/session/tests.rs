use super::*;

const LIFE: Lifetimes = Lifetimes {
    idle: Duration::from_secs(600),
    absolute: Duration::from_secs(3600),
    anonymous: Duration::from_secs(300),
};

#[test]
fn idle_and_absolute_timeouts() {
    let clock = ManualClock::at(1_000_000);
    let s = record(Some("dr.martin"), AuthLevel::Password, clock.now());
    clock.advance(Duration::from_secs(599));
    assert!(!s.expired(clock.now(), &LIFE));
    clock.advance(Duration::from_secs(1));
    assert!(s.expired(clock.now(), &LIFE), "idle timeout");
    // Activity every 500 s keeps it alive, but only until the absolute limit.
    let mut s = record(Some("dr.martin"), AuthLevel::Password, clock.now());
    for _ in 0..7 {
        clock.advance(Duration::from_secs(500));
        s.last_seen = clock.now();
        assert!(
            !s.expired(clock.now(), &LIFE),
            "active for {} s",
            clock.now() - s.created
        );
    }
    clock.advance(Duration::from_secs(100));
    s.last_seen = clock.now();
    assert_eq!(clock.now() - s.created, 3600);
    assert!(
        s.expired(clock.now(), &LIFE),
        "absolute timeout despite activity"
    );
}

#[test]
fn pre_login_sessions_are_short_lived() {
    let clock = ManualClock::at(50);
    let s = record(None, AuthLevel::None, clock.now());
    assert!(!s.is_authenticated());
    // Alive up to its short lifetime (not the signed-in one), then gone.
    clock.advance(Duration::from_secs(299));
    assert!(!s.expired(clock.now(), &LIFE), "ended before its time");
    clock.advance(Duration::from_secs(1));
    assert!(s.expired(clock.now(), &LIFE));
}

/// Outside tests the time is the system's: unix seconds and microseconds that agree.
#[test]
fn the_system_clock_tells_unix_time() {
    let since = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap();
    let before = since(std::time::SystemTime::now());
    let (us, s) = (SystemClock.now_us(), SystemClock.now());
    let after = since(std::time::SystemTime::now());
    assert!(before.as_micros() as u64 <= us && us <= after.as_micros() as u64);
    assert!(before.as_secs() <= s && s <= after.as_secs());
    assert!(
        s >= us / 1_000_000,
        "seconds behind the microseconds read before them"
    );
}

/// The level's label is what the metrics, the audit log and the portal's assertion (`acr`)
/// say: stable names, in order of strength.
#[test]
fn levels_are_ordered_and_labelled() {
    let levels = [
        (AuthLevel::None, "none"),
        (AuthLevel::Password, "password"),
        (AuthLevel::SecondFactor, "second_factor"),
        (AuthLevel::PhishingResistant, "phishing_resistant"),
    ];
    for pair in levels.windows(2) {
        assert!(pair[0].0 < pair[1].0);
    }
    for (level, label) in levels {
        assert_eq!(level.label(), label);
    }
}

/// Signed in means a user and a level above none; the password's time is set only then.
#[test]
fn a_record_is_signed_in_only_with_a_user_and_a_level() {
    let r = record(Some("dr.martin"), AuthLevel::Password, 70);
    assert!(r.is_authenticated());
    assert_eq!(r.password_at, Some(70));
    let r = record(Some("dr.martin"), AuthLevel::PhishingResistant, 70);
    assert_eq!(r.password_at, Some(70));
    for (user, level) in [
        (Some("dr.martin"), AuthLevel::None),
        (None, AuthLevel::Password),
    ] {
        let r = record(user, level, 70);
        assert!(!r.is_authenticated(), "{user:?} {level:?}");
        assert_eq!(r.password_at, None, "{user:?} {level:?}");
    }
}

/// A privileged pack's own limits replace the configured ones, idle and absolute alike.
#[test]
fn a_privileged_sessions_own_limits_apply() {
    let mut s = record(Some("root"), AuthLevel::SecondFactor, 1_000);
    s.idle_limit = Some(60);
    assert!(!s.expired(1_059, &LIFE));
    assert!(
        s.expired(1_060, &LIFE),
        "the pack's idle limit, not the 600 s"
    );
    s.idle_limit = None;
    s.absolute_limit = Some(120);
    s.last_seen = 1_119;
    assert!(!s.expired(1_119, &LIFE));
    s.last_seen = 1_120;
    assert!(
        s.expired(1_120, &LIFE),
        "the pack's absolute limit, not the hour"
    );
}

/// Break-glass lasts up to, not including, its end; a SOC request for a new proof stands
/// until a proof at or after the request.
#[test]
fn break_glass_and_asked_proofs_end_at_their_instant() {
    let mut s = record(Some("dr.martin"), AuthLevel::SecondFactor, 1_000);
    assert!(!s.break_glass_active(1_000));
    s.break_glass_until = Some(1_300);
    assert!(s.break_glass_active(1_299));
    assert!(!s.break_glass_active(1_300));
    assert!(!s.proof_wanted());
    s.proof_wanted_after_us = Some(5_000_000);
    assert!(s.proof_wanted(), "no proof yet");
    s.proof_at_us = Some(4_999_999);
    assert!(s.proof_wanted(), "a proof from before the request");
    s.proof_at_us = Some(5_000_000);
    assert!(!s.proof_wanted());
}

/// A test clock moves by hand, to the microsecond.
#[test]
fn the_manual_clock_moves_only_when_told() {
    let c = ManualClock::at(10);
    assert_eq!((c.now(), c.now_us()), (10, 10_000_000));
    c.advance(Duration::from_micros(1_500_000));
    assert_eq!((c.now(), c.now_us()), (11, 11_500_000));
    c.set_us(42);
    assert_eq!((c.now(), c.now_us()), (0, 42));
}
