use super::locks::LockStore;
use super::session::ManualClock;
use super::*;
use std::time::Duration;

/// Sessions on a memory store, with short test lifetimes (the ending and the pipeline's
/// identify tests use them too).
pub(crate) fn sessions(clock: Arc<ManualClock>) -> Sessions {
    let config = SessionConfig {
        cookie_name: "vigie".into(),
        idle_timeout: Duration::from_secs(600),
        absolute_timeout: Duration::from_secs(3600),
        anonymous_timeout: Duration::from_secs(60),
        max_sessions: 10,
        max_anonymous_sessions: 10,
    };
    let locks = Arc::new(
        crate::storage::sqlite::locks::SqliteLocks::open(std::path::Path::new(":memory:")).unwrap(),
    );
    Sessions::new(
        Arc::new(store::MemoryStore::new(10, 10, locks.held().clone())),
        locks,
        b"key",
        config,
        clock,
    )
}

/// A password-level session of alice on portal `ehr`, stored; its id.
pub(crate) async fn alice_signed_in(s: &Sessions) -> SessionId {
    let rec = s.new_record(
        "ehr",
        Some("alice".into()),
        AuthLevel::Password,
        IpAddr::from([127, 0, 0, 1]),
        "ua",
        vec![],
    );
    let id = rec.id;
    s.store.create(rec, Admission::default()).await.unwrap();
    id
}

fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn identify_accepts_exactly_one_valid_cookie() {
    let clock = Arc::new(ManualClock::at(1000));
    let s = sessions(clock.clone());
    let id = alice_signed_in(&s).await;
    let good = cookie_of(&s.set_cookie(&id, false));
    let find = |h: String| {
        let s = &s;
        async move {
            s.identify([h.as_bytes()].into_iter(), false, "ehr")
                .await
                .unwrap()
                .map(|r| r.id)
        }
    };
    assert_eq!(find(good.clone()).await, Some(id));
    assert_eq!(find(format!("lang=fr; {good}")).await, Some(id));
    assert_eq!(
        find(format!("{good}; {good}")).await,
        None,
        "duplicated cookie"
    );
    assert_eq!(find("vigie".to_string()).await, None, "no =");
    assert_eq!(
        find(format!("vigie={}", "A".repeat(5000))).await,
        None,
        "oversized"
    );
    assert_eq!(
        s.identify([good.as_bytes()].into_iter(), false, "other-portal")
            .await
            .unwrap()
            .map(|r| r.id),
        None
    );
    assert_eq!(
        s.identify([&b"vigie=\xff\xfe"[..]].into_iter(), false, "ehr")
            .await
            .unwrap(),
        None,
        "non-UTF-8"
    );
    // The TLS spelling is a different cookie.
    assert_eq!(
        s.identify([good.as_bytes()].into_iter(), true, "ehr")
            .await
            .unwrap(),
        None
    );
    clock.advance(Duration::from_secs(600));
    assert_eq!(find(good).await, None, "idle timeout");
    assert!(
        s.store.get(&id).await.unwrap().is_none(),
        "expired sessions are removed"
    );
}

#[tokio::test]
async fn a_locked_users_session_serves_nothing_even_if_it_escaped_the_ending() {
    let clock = Arc::new(ManualClock::at(1000));
    let s = sessions(clock);
    let id = alice_signed_in(&s).await;
    let cookie = cookie_of(&s.set_cookie(&id, false));
    let find = || s.identify([cookie.as_bytes()].into_iter(), false, "ehr");
    assert!(find().await.unwrap().is_some());
    // The lock reaches this replica's copy, but not (yet) the store: a session a store
    // brought back, or a message that overtook the ending.
    s.locks.held().set("alice", true);
    assert!(find().await.unwrap().is_none(), "a locked user's request");
    assert!(
        s.store.get(&id).await.unwrap().is_none(),
        "and the session ends"
    );
}

#[test]
fn cookies_carry_the_right_attributes() {
    let s = sessions(Arc::new(ManualClock::at(0)));
    let id = SessionId::random();
    let tls = s.set_cookie(&id, true);
    assert!(
        tls.starts_with("__Host-vigie=")
            && tls.ends_with("; Path=/; HttpOnly; SameSite=Lax; Secure"),
        "{tls}"
    );
    assert!(!tls.contains("Domain"));
    let plain = s.set_cookie(&id, false);
    assert!(plain.starts_with("vigie=") && !plain.contains("Secure"));
    assert!(s.clear_cookie(true).contains("Max-Age=0"));
}

#[test]
fn a_break_glass_window_that_runs_out_is_closed_once_and_told_and_the_session_goes_on() {
    use tracing_subscriber::layer::SubscriberExt;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(crate::testing::Capture(seen.clone()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let clock = Arc::new(ManualClock::at(1_700_000_000));
            let s = sessions(clock.clone());
            let id = alice_signed_in(&s).await;
            let stored = s.store.get(&id).await.unwrap().unwrap();
            s.change(&stored, |r| {
                r.break_glass_until = Some(1_700_000_120);
                r.break_glass_reason = Some("arrêt cardiaque, salle 12".into());
                r.break_glass_record = Some("rec-1".into());
            })
            .await
            .unwrap();
            let cookie = format!("vigie={}", s.codec.encode(&id));
            let find = || s.identify([cookie.as_bytes()].into_iter(), false, "ehr");
            clock.advance(Duration::from_secs(60));
            let during = find().await.unwrap().unwrap();
            assert!(during.break_glass_active(clock.now()));
            clock.advance(Duration::from_secs(61));
            let after = find().await.unwrap().expect("the session goes on");
            assert_eq!(after.break_glass_until, None);
            assert_eq!(
                after.break_glass_reason, None,
                "the reason is in the audit record"
            );
            let kept = s.store.get(&id).await.unwrap().unwrap();
            assert_eq!(kept.break_glass_until, None, "closed in the store");
            let version = kept.version;
            find().await.unwrap().unwrap();
            assert_eq!(s.store.get(&id).await.unwrap().unwrap().version, version);
        })
    });
    let seen = seen.lock().unwrap();
    let ends: Vec<_> = seen
        .iter()
        .filter(|e| e.event == "break_glass_ended")
        .collect();
    assert_eq!(ends.len(), 1, "told once");
    assert_eq!(ends[0].user.as_deref(), Some("alice"));
    assert_eq!(ends[0].fields["ended_by"], "window_over");
    assert_eq!(ends[0].fields["until"], 1_700_000_120);
    assert_eq!(ends[0].fields["early"], false);
    assert_eq!(
        ends[0].fields["record"], "rec-1",
        "the review finds its use by it"
    );
}

#[tokio::test]
async fn a_session_ended_in_break_glass_tells_the_end_with_how() {
    let clock = Arc::new(ManualClock::at(1_700_000_000));
    let s = sessions(clock.clone());
    let id = alice_signed_in(&s).await;
    let stored = s.store.get(&id).await.unwrap().unwrap();
    s.change(&stored, |r| r.break_glass_until = Some(1_700_000_600))
        .await
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry().with(crate::testing::Capture(seen.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);
        assert_eq!(s.end_user("alice", None, Ending::Revoked).await.unwrap(), 1);
    }
    let seen = seen.lock().unwrap();
    let end = seen
        .iter()
        .find(|e| e.event == "break_glass_ended")
        .expect("told");
    assert_eq!(end.fields["ended_by"], "revoked");
    assert_eq!(end.fields["early"], true);
}

/// The pipeline, the detector and the console read the time through `Sessions`: it is the
/// injected clock's, to the second and to the microsecond.
#[test]
fn sessions_tell_the_time_of_their_clock() {
    let clock = Arc::new(ManualClock::at(1_700_000_000));
    clock.advance(Duration::from_micros(250));
    let s = sessions(clock.clone());
    assert_eq!(s.now(), 1_700_000_000);
    assert_eq!(s.now_us(), 1_700_000_000_000_250);
    clock.set_us(1_800_000_001_999_999);
    assert_eq!(
        (s.now(), s.now_us()),
        (1_800_000_001, 1_800_000_001_999_999)
    );
}

/// A request never carries the gateway's cookie upstream under either spelling, so both are
/// named; the one handed out follows TLS (`__Host-` only where the browser keeps it).
#[test]
fn both_spellings_of_the_gateway_cookie_are_known() {
    let s = sessions(Arc::new(ManualClock::at(1000)));
    assert_eq!(s.cookie_names(), ["vigie", "__Host-vigie"]);
    assert_eq!(
        (s.cookie_name(false), s.cookie_name(true)),
        ("vigie", "__Host-vigie")
    );
}

/// The browser's user agent is shown to the SOC: no control character (a forged log line or
/// console row) and no more than 256 characters of it are kept.
#[test]
fn a_new_record_keeps_a_printable_bounded_user_agent() {
    let s = sessions(Arc::new(ManualClock::at(1000)));
    let ip = IpAddr::from([127, 0, 0, 1]);
    let forged = "Mozilla/5.0\r\nuser=admin\u{1b}[2J";
    let r = s.new_record("ehr", None, AuthLevel::None, ip, forged, vec![]);
    assert_eq!(r.user_agent, "Mozilla/5.0user=admin[2J");
    let long = "é".repeat(300);
    let r = s.new_record("ehr", None, AuthLevel::None, ip, &long, vec![]);
    assert_eq!(r.user_agent, "é".repeat(256));
    assert_eq!((r.created, r.last_seen), (1000, 1000));
}

fn pack(
    level: AuthLevel,
    max_sessions: Option<usize>,
    on_excess: crate::policy::Excess,
) -> crate::policy::Pack {
    crate::policy::Pack {
        name: "admins".into(),
        groups: vec!["admins".into()],
        level,
        idle_timeout: Some(Duration::from_secs(300)),
        absolute_timeout: Some(Duration::from_secs(1800)),
        max_sessions,
        on_excess,
        budget_scale: 0.5,
        networks: vec![],
        window: None,
        export_within: 0,
    }
}

/// A privileged pack shortens the login's timeouts and marks it privileged (no outage grace);
/// without a pack the record is left as it was.
#[test]
fn a_privileged_pack_shortens_the_sessions_it_admits() {
    use crate::policy::Excess;
    let s = sessions(Arc::new(ManualClock::at(1000)));
    let ip = IpAddr::from([127, 0, 0, 1]);
    let fresh = s.new_record(
        "ehr",
        Some("root".into()),
        AuthLevel::Password,
        ip,
        "ua",
        vec![],
    );
    let mut r = fresh.clone();
    s.admit(&mut r, None);
    assert_eq!(r, fresh);
    let admins = pack(AuthLevel::SecondFactor, Some(2), Excess::Refuse);
    s.admit(&mut r, Some(&admins));
    assert!(r.privileged);
    assert_eq!((r.idle_limit, r.absolute_limit), (Some(300), Some(1800)));
}

/// The cap applies from the pack's level: a password alone neither fills it nor logs the
/// real user out; `on_excess` picks between refusing and ending the oldest.
#[test]
fn a_packs_session_cap_applies_from_its_level() {
    use crate::policy::Excess;
    let clock = 1000;
    let mut r = session::record(Some("root"), AuthLevel::Password, clock);
    let refuse = pack(AuthLevel::SecondFactor, Some(2), Excess::Refuse);
    assert_eq!(
        Sessions::cap_for(&r, Some(&refuse)),
        None,
        "below the pack's level"
    );
    assert_eq!(Sessions::cap_for(&r, None), None);
    r.level = AuthLevel::SecondFactor;
    let cap = |max, level, evict_oldest| {
        Some(Cap {
            level,
            max,
            evict_oldest,
        })
    };
    assert_eq!(
        Sessions::cap_for(&r, Some(&refuse)),
        cap(2, AuthLevel::SecondFactor, false)
    );
    r.level = AuthLevel::PhishingResistant;
    let evict = pack(AuthLevel::SecondFactor, Some(3), Excess::RevokeOldest);
    assert_eq!(
        Sessions::cap_for(&r, Some(&evict)),
        cap(3, AuthLevel::SecondFactor, true)
    );
    let uncapped = pack(AuthLevel::Password, None, Excess::Refuse);
    assert_eq!(Sessions::cap_for(&r, Some(&uncapped)), None);
}

/// This replica's copy of the locked users follows the locks made here, and a resync replaces
/// it whole: a lock lifted on another replica while a message was lost is forgotten too.
#[test]
fn the_copy_of_locked_users_follows_locks_and_resyncs() {
    let held = locks::LockedUsers::default();
    held.set("mallory", true);
    held.set("eve", true);
    held.set("mallory", false);
    assert!(!held.contains("mallory") && held.contains("eve"));
    held.replace(["bob".to_string()].into());
    assert!(held.contains("bob"));
    assert!(
        !held.contains("eve"),
        "a resync kept a lock lifted elsewhere"
    );
}

/// A lock and an unlock are ordered by when each store got them, in unix milliseconds (two
/// in one second must not tie).
#[test]
fn lock_times_are_unix_milliseconds() {
    let ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = ms();
    let t = locks::unix_now_ms();
    assert!(before <= t && t <= ms());
}

/// Sessions by level: counted in the level's order, kept in Redis as text that reads back
/// the same (anything else reads as no count), and shown as the `vigie_sessions_active`
/// gauges.
#[test]
fn the_census_counts_by_level_and_reads_back_what_it_wrote() {
    use store::Census;
    let mut c = Census::default();
    for level in [
        AuthLevel::SecondFactor,
        AuthLevel::None,
        AuthLevel::SecondFactor,
    ] {
        c.add(level);
    }
    c.add(AuthLevel::PhishingResistant);
    assert_eq!(c, Census([1, 0, 2, 1]));
    assert_eq!(c.to_text(), "1,0,2,1");
    assert_eq!(Census::from_text("1,0,2,1"), Some(c));
    for bad in ["", "1,0,2", "1,0,2,1,5", "1,x,2,1", "1,-1,2,1"] {
        assert_eq!(Census::from_text(bad), None, "{bad}");
    }
    c.publish();
    let gauge = |level: &str| {
        crate::metrics::METRICS
            .sessions
            .with_label_values(&[level])
            .get()
    };
    let shown = ["none", "password", "second_factor", "phishing_resistant"].map(gauge);
    assert_eq!(shown, [1, 0, 2, 1]);
}
