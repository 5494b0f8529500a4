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
