//! Every way a session ends reaches the portal's logout, once, with the vault; what never
//! held a signed-in portal session does not.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::identity::session::{AuthLevel, ManualClock};
use crate::identity::store::Admission;

/// Records what the portal's logout was asked to end.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Option<String>, String, Ending)>>);

#[async_trait::async_trait]
impl PortalEnd for Recorder {
    async fn end(&self, f: Farewell) {
        let cookie = f.vault.first().map_or(String::new(), |c| c.value.clone());
        self.0.lock().unwrap().push((f.user, cookie, f.why));
    }
}

impl Recorder {
    /// What was ended so far, once the spawned logouts ran.
    async fn seen(&self) -> Vec<(Option<String>, String, Ending)> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn sessions(clock: Arc<ManualClock>) -> (Sessions, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let s = crate::identity::tests::sessions(clock).ending_portal_sessions_with(recorder.clone());
    (s, recorder)
}

async fn signed_in(s: &Sessions, user: Option<&str>, cookie: &str) -> SessionId {
    let level = match user {
        Some(_) => AuthLevel::SecondFactor,
        None => AuthLevel::None,
    };
    let vault = vec![VaultedCookie {
        name: "portal".into(),
        value: cookie.into(),
    }];
    let rec = s.new_record(
        "ehr",
        user.map(str::to_string),
        level,
        IpAddr::from([127, 0, 0, 1]),
        "ua",
        vault,
    );
    let id = rec.id;
    s.store.create(rec, Admission::default()).await.unwrap();
    id
}

fn one(user: &str, cookie: &str, why: Ending) -> (Option<String>, String, Ending) {
    (Some(user.into()), cookie.into(), why)
}

#[tokio::test]
async fn every_ending_of_a_signed_in_session_logs_the_portal_out_once() {
    let clock = Arc::new(ManualClock::at(1_000));
    let (s, seen) = sessions(clock.clone());

    let id = signed_in(&s, Some("ann"), "c1").await;
    s.end(&id, Ending::SignOut).await.unwrap();
    s.end(&id, Ending::SignOut).await.unwrap();
    assert_eq!(seen.seen().await, vec![one("ann", "c1", Ending::SignOut)]);

    let id = signed_in(&s, Some("ann"), "c2").await;
    s.end_now(&id, Ending::SignOut).await.unwrap();
    assert_eq!(
        std::mem::take(&mut *seen.0.lock().unwrap()),
        vec![one("ann", "c2", Ending::SignOut)],
        "a sign-out waits for the portal's logout"
    );

    let a = signed_in(&s, Some("bob"), "b1").await;
    signed_in(&s, Some("bob"), "b2").await;
    assert!(s
        .end_fingerprint("bob", &a.fingerprint(), Ending::Revoked)
        .await
        .unwrap());
    assert_eq!(seen.seen().await, vec![one("bob", "b1", Ending::Revoked)]);
    assert_eq!(s.lock_user("bob", "test").await.unwrap(), 1);
    assert_eq!(seen.seen().await, vec![one("bob", "b2", Ending::Locked)]);
    s.locks.unlock("bob").await.unwrap();

    // A visitor below the password holds no signed-in portal session...
    let visitor = signed_in(&s, None, "v1").await;
    s.end(&visitor, Ending::Replaced).await.unwrap();
    assert!(seen.seen().await.is_empty());
    // ...unless the portal signed it in on its own.
    let visitor = signed_in(&s, None, "v2").await;
    s.end_forced(&visitor, Ending::SignedInBeforeLogin)
        .await
        .unwrap();
    assert_eq!(
        seen.seen().await,
        vec![(None, "v2".into(), Ending::SignedInBeforeLogin)]
    );
}

#[tokio::test]
async fn timed_out_sessions_end_at_the_portal_whether_or_not_the_user_comes_back() {
    let clock = Arc::new(ManualClock::at(1_000));
    let (s, seen) = sessions(clock.clone());
    let back = signed_in(&s, Some("cid"), "came-back").await;
    signed_in(&s, Some("dee"), "closed-the-tab").await;
    clock.advance(Duration::from_secs(599));
    assert_eq!(s.sweep().await.unwrap(), 0, "not idle yet");
    clock.advance(Duration::from_secs(2));
    // The user who comes back finds the session ended, and so does the portal.
    let cookie = s.set_cookie(&back, false);
    let cookie = cookie.split(';').next().unwrap();
    let found = s.identify([cookie.as_bytes()].into_iter(), false, "ehr");
    assert!(found.await.unwrap().is_none());
    assert_eq!(
        seen.seen().await,
        vec![one("cid", "came-back", Ending::Timeout)]
    );
    // The one who closed the tab is found by the sweep.
    assert_eq!(s.sweep().await.unwrap(), 1);
    assert_eq!(
        seen.seen().await,
        vec![one("dee", "closed-the-tab", Ending::Timeout)]
    );
    assert_eq!(s.sweep().await.unwrap(), 0);
}

/// The sweeper runs in the background on its own: a session whose user closed the tab ends,
/// at the portal too, with no call from anyone; and it stops when the server does.
#[tokio::test]
async fn the_sweeper_ends_abandoned_sessions_on_its_own_until_shutdown() {
    use pingora::services::background::BackgroundService;
    let clock = Arc::new(ManualClock::at(1_000));
    let (s, seen) = sessions(clock.clone());
    let s = Arc::new(s);
    signed_in(&s, Some("dee"), "closed-the-tab").await;
    clock.advance(Duration::from_secs(601));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let sweeper = Sweeper::every(s.clone(), Duration::from_millis(10));
    let running = tokio::spawn(async move { sweeper.start(shutdown).await });
    let mut ended = Vec::new();
    for _ in 0..200 {
        ended = seen.seen().await;
        if !ended.is_empty() {
            break;
        }
    }
    assert_eq!(ended, vec![one("dee", "closed-the-tab", Ending::Timeout)]);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the sweeper stops at shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_refused_login_lets_the_portal_session_go() {
    let (s, seen) = sessions(Arc::new(ManualClock::at(1_000)));
    s.let_go(Farewell {
        portal: "ehr".into(),
        user: Some("eve".into()),
        vault: vec![VaultedCookie {
            name: "portal".into(),
            value: "e1".into(),
        }],
        session: "-".into(),
        why: Ending::LoginRefused,
    });
    assert_eq!(
        seen.seen().await,
        vec![one("eve", "e1", Ending::LoginRefused)]
    );
}
