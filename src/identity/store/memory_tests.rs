//! What only the in-process store does its own way: its caps and counters, its demand for a
//! proof, the bound on its tombstones.

use super::{
    Admission, Admitted, Inner, MemoryStore, SessionStore, StoreError, Updated, MAX_TOMBSTONES,
};
use crate::identity::locks::LockStore;
use crate::identity::session::{record, AuthLevel};
use crate::identity::token::SessionId;
use crate::storage::sqlite::locks::SqliteLocks;

fn store(max_authenticated: usize, max_anonymous: usize) -> MemoryStore {
    let locks = SqliteLocks::open(std::path::Path::new(":memory:")).unwrap();
    MemoryStore::new(max_authenticated, max_anonymous, locks.held().clone())
}

async fn create(
    s: &MemoryStore,
    user: Option<&str>,
    created: u64,
) -> Result<SessionId, StoreError> {
    let level = if user.is_some() {
        AuthLevel::Password
    } else {
        AuthLevel::None
    };
    let r = record(user, level, created);
    let id = r.id;
    match s.create(r, Admission::default()).await? {
        Admitted::Stored { .. } => Ok(id),
        other => panic!("{other:?}"),
    }
}

/// Past `max_authenticated` a sign-in is refused; an end makes room again (the counter
/// follows ends, and pre-login sessions are not counted in it). Past `max_anonymous` the
/// oldest pre-login session makes room, never an older signed-in one.
#[tokio::test]
async fn memory_store_caps_signed_in_and_pre_login_sessions_apart() {
    let s = store(2, 2);
    let amy = create(&s, Some("amy"), 1_000).await.unwrap();
    create(&s, Some("ben"), 1_001).await.unwrap();
    let full = create(&s, Some("cal"), 1_002).await;
    assert!(matches!(full, Err(StoreError::Full)), "{full:?}");
    assert!(s.remove(&amy).await.unwrap().is_some());
    let cal = create(&s, Some("cal"), 1_003).await.unwrap();

    let old = create(&s, None, 2_000).await.unwrap();
    let mid = create(&s, None, 2_050).await.unwrap();
    let new = create(&s, None, 2_090).await.unwrap();
    assert!(
        s.get(&old).await.unwrap().is_none(),
        "the oldest visitor makes room"
    );
    for id in [&mid, &new, &cal] {
        assert!(s.get(id).await.unwrap().is_some());
    }
    // Visitors never count against the signed-in cap: still full with ben and cal.
    assert!(matches!(
        create(&s, Some("dan"), 1_004).await,
        Err(StoreError::Full)
    ));
}

/// A demand for a proof asks only the user's sessions not proven since (a proof made at the
/// demand's instant counts), and moves each to a new version: a request writing back the copy
/// it read before cannot undo the demand.
#[tokio::test]
async fn memory_store_asks_a_proof_of_sessions_not_proven_since() {
    let s = store(10, 10);
    let asked = create(&s, Some("lea"), 1_000).await.unwrap();
    let mut at = record(Some("lea"), AuthLevel::Password, 1_000);
    at.proof_at_us = Some(4_000_000);
    let at_id = at.id;
    s.create(at, Admission::default()).await.unwrap();
    let before = (*s.get(&asked).await.unwrap().unwrap()).clone();
    assert_eq!(s.want_proof("lea", 4_000_000).await.unwrap(), 1);
    let now = s.get(&asked).await.unwrap().unwrap();
    assert!(now.proof_wanted());
    assert_eq!(now.version, before.version + 1);
    let proven = s.get(&at_id).await.unwrap().unwrap();
    assert_eq!(
        proven.proof_wanted_after_us, None,
        "proven at the demand's instant"
    );
    let stale = s.update(before).await.unwrap();
    assert!(matches!(stale, Updated::Changed), "{stale:?}");
    assert!(s.get(&asked).await.unwrap().unwrap().proof_wanted());
}

/// Ended ids are remembered (nothing writes them back) up to a bound, oldest forgotten first:
/// a flood of sign-outs cannot grow the store without end.
#[test]
fn tombstones_are_bounded_oldest_first() {
    let mut inner = Inner::default();
    let ids: Vec<SessionId> = (0..=MAX_TOMBSTONES).map(|_| SessionId::random()).collect();
    for id in &ids[..MAX_TOMBSTONES] {
        inner.remove(id);
    }
    assert_eq!(inner.ended.len(), MAX_TOMBSTONES);
    assert!(inner.ended.contains(&ids[0]), "all kept up to the bound");
    inner.remove(&ids[MAX_TOMBSTONES]);
    assert_eq!(inner.ended.len(), MAX_TOMBSTONES);
    assert!(!inner.ended.contains(&ids[0]), "the oldest forgotten");
    assert!(inner.ended.contains(&ids[1]) && inner.ended.contains(&ids[MAX_TOMBSTONES]));
    assert_eq!(inner.ended_order.len(), MAX_TOMBSTONES);
}
