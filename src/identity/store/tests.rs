//! The session store's contract, run against both backends: the in-process one and Redis (a
//! real redis-server, two store instances standing for two replicas).

use std::sync::Arc;
use std::time::Duration;

use crate::identity::locks::LockStore;
use crate::identity::session::{record, AuthLevel, Lifetimes, SessionRecord};
use crate::identity::store::{Admission, Admitted, Cap, MemoryStore, SessionStore, Updated};
use crate::identity::token::SessionId;
use crate::identity::vault::VaultedCookie;
use crate::storage::redis::locks::RedisLocks;
use crate::storage::redis::sessions::RedisStore;
use crate::storage::sqlite::locks::SqliteLocks;
use crate::testing::RedisServer;

fn user(name: &str) -> SessionRecord {
    record(Some(name), AuthLevel::Password, 1_000)
}

async fn stored(s: &dyn SessionStore, r: SessionRecord) -> SessionId {
    let id = r.id;
    let out = s.create(r, Admission::default()).await.unwrap();
    assert!(matches!(out, Admitted::Stored { .. }), "{out:?}");
    id
}

/// What every backend promises. `locks` share the store's view of locked users.
async fn contract(s: &dyn SessionStore, locks: &dyn LockStore) {
    // Versions: a write-back applies only to the version read.
    let id = stored(s, user("ann")).await;
    let read = s.get(&id).await.unwrap().unwrap();
    let Updated::Stored(first) = s.update((*read).clone()).await.unwrap() else {
        panic!("a write-back of the version read is stored");
    };
    assert_eq!(first.version, read.version + 1);
    assert_eq!(
        s.update((*read).clone()).await.unwrap(),
        Updated::Changed,
        "a stale copy does not overwrite the newer one"
    );
    // Removal leaves a tombstone: neither the write-back nor the id come back.
    assert!(s.remove(&id).await.unwrap().is_some());
    assert!(s.remove(&id).await.unwrap().is_none(), "removed once");
    assert_eq!(s.update((*first).clone()).await.unwrap(), Updated::Ended);
    let mut again = (*first).clone();
    again.version = 0;
    assert_eq!(
        s.create(again, Admission::default()).await.unwrap(),
        Admitted::Ended,
        "an ended id is never stored again"
    );
    assert!(s.get(&id).await.unwrap().is_none());

    // A rotation needs the session it replaces, and ends it in the same step.
    let old = stored(s, user("bea")).await;
    let next = user("bea");
    let next_id = next.id;
    let replaces = Admission {
        replaces: Some(&old),
        cap: None,
    };
    assert!(matches!(
        s.create(next, replaces).await.unwrap(),
        Admitted::Stored { .. }
    ));
    assert!(s.get(&old).await.unwrap().is_none());
    let late = user("bea");
    assert_eq!(
        s.create(late, replaces).await.unwrap(),
        Admitted::Ended,
        "a rotation of an ended session is refused"
    );
    // Ending all of a user's sessions but one.
    let third = stored(s, user("bea")).await;
    let ended = s.remove_user("bea", Some(&third)).await.unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].fingerprint, next_id.fingerprint());
    assert_eq!(ended[0].record.user.as_deref(), Some("bea"));
    assert!(s.get(&next_id).await.unwrap().is_none());
    assert!(s.get(&third).await.unwrap().is_some());

    // A locked user gets no new session.
    locks.lock("cid", "test").await.unwrap();
    assert_eq!(
        s.create(user("cid"), Admission::default()).await.unwrap(),
        Admitted::Locked
    );
    assert!(locks.unlock("cid").await.unwrap());
    stored(s, user("cid")).await;

    // The cap: refuse the excess, or end the oldest.
    let cap = |evict_oldest| Admission {
        replaces: None,
        cap: Some(Cap {
            level: AuthLevel::SecondFactor,
            max: 2,
            evict_oldest,
        }),
    };
    let strong = |t| {
        let mut r = record(Some("dan"), AuthLevel::SecondFactor, t);
        r.level = AuthLevel::SecondFactor;
        r
    };
    // A password-level session does not count.
    stored(s, user("dan")).await;
    let oldest = strong(1);
    let oldest_id = oldest.id;
    assert!(matches!(
        s.create(oldest, cap(false)).await.unwrap(),
        Admitted::Stored { .. }
    ));
    assert!(matches!(
        s.create(strong(2), cap(false)).await.unwrap(),
        Admitted::Stored { .. }
    ));
    assert_eq!(
        s.create(strong(3), cap(false)).await.unwrap(),
        Admitted::AtCap
    );
    match s.create(strong(4), cap(true)).await.unwrap() {
        Admitted::Stored { evicted } => {
            let fingerprints: Vec<_> = evicted.iter().map(|r| r.fingerprint.clone()).collect();
            assert_eq!(fingerprints, vec![oldest_id.fingerprint()]);
            assert_eq!(
                evicted[0].record.created, 1,
                "the evicted record, as it was"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(s.get(&oldest_id).await.unwrap().is_none());
    assert_eq!(s.list_user("dan").await.unwrap().len(), 3);
    // One session named by its fingerprint: handed back with its vault.
    let mut held = user("gus");
    held.vault = vec![VaultedCookie {
        name: "portal".into(),
        value: "gus-cookie".into(),
    }];
    let held_id = stored(s, held).await;
    let fp = held_id.fingerprint();
    let ended = s
        .remove_fingerprint("gus", &fp)
        .await
        .unwrap()
        .expect("ended");
    assert_eq!(ended.record.vault[0].value, "gus-cookie");
    assert!(s.remove_fingerprint("gus", &fp).await.unwrap().is_none());

    sweep(s).await;
}

/// The sweep ends the sessions that timed out with no request to end them, once each, and
/// hands their vaults back; live sessions stay.
async fn sweep(s: &dyn SessionStore) {
    let life = Lifetimes {
        idle: Duration::from_secs(600),
        absolute: Duration::from_secs(3600),
        anonymous: Duration::from_secs(60),
    };
    let mut idle = record(Some("fay"), AuthLevel::SecondFactor, 10_000);
    idle.vault = vec![VaultedCookie {
        name: "portal".into(),
        value: "fay-cookie".into(),
    }];
    let idle_id = stored(s, idle).await;
    let live_id = stored(s, record(Some("fay"), AuthLevel::SecondFactor, 10_500)).await;
    let too_old = stored(s, record(Some("hal"), AuthLevel::SecondFactor, 10_000)).await;
    let now = 10_000 + 601;
    assert!(
        s.sweep(10_000 + 599, &life, 100)
            .await
            .unwrap()
            .iter()
            .all(|r| r.fingerprint != idle_id.fingerprint()),
        "not yet idle"
    );
    let swept = s.sweep(now, &life, 100).await.unwrap();
    let fay: Vec<_> = swept
        .iter()
        .filter(|r| r.record.user.as_deref() == Some("fay"))
        .collect();
    assert_eq!(fay.len(), 1, "{swept:?}");
    assert_eq!(fay[0].fingerprint, idle_id.fingerprint());
    assert_eq!(fay[0].record.vault[0].value, "fay-cookie");
    assert!(swept.iter().any(|r| r.fingerprint == too_old.fingerprint()));
    assert!(s.get(&idle_id).await.unwrap().is_none());
    assert!(
        s.get(&live_id).await.unwrap().is_some(),
        "a live session stays"
    );
    assert!(
        s.sweep(now, &life, 100).await.unwrap().is_empty(),
        "each ends once"
    );
}

/// Replica `b` keeps writing sessions back and rotating them while replica `a` ends them
/// all, round after round: none survives, and `fresh` (no cache) finds none.
async fn no_resurrection(
    a: Arc<dyn SessionStore>,
    b: Arc<dyn SessionStore>,
    fresh: &dyn SessionStore,
    a_locks: &dyn LockStore,
    rounds: usize,
) -> Vec<SessionId> {
    let mut finals = Vec::new();
    for round in 0..rounds {
        let name = format!("u{round}");
        let lock = round % 2 == 1;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(stored(a.as_ref(), user(&name)).await);
        }
        let writer = {
            let (b, name) = (b.clone(), name.clone());
            tokio::spawn(async move {
                let mut last = Vec::new();
                for mut id in ids {
                    for step in 0..30 {
                        let Some(r) = b.get(&id).await.unwrap() else {
                            break;
                        };
                        // A request holds its copy while it talks to the portal or checks
                        // a factor: the ending lands meanwhile.
                        tokio::time::sleep(Duration::from_micros(50 * (step % 4))).await;
                        if step % 3 == 2 {
                            let mut next = (*r).clone();
                            next.id = SessionId::random();
                            next.version = 0;
                            let replaces = Admission {
                                replaces: Some(&id),
                                cap: None,
                            };
                            if let Admitted::Stored { .. } =
                                b.create(next.clone(), replaces).await.unwrap()
                            {
                                id = next.id;
                            }
                        } else {
                            let mut touched = (*r).clone();
                            touched.last_seen += 1;
                            let _ = b.update(touched).await.unwrap();
                        }
                        tokio::task::yield_now().await;
                    }
                    last.push(id);
                }
                // A login in flight while the account is being locked.
                let login = user(&name);
                let login_id = login.id;
                let out = b.create(login, Admission::default()).await.unwrap();
                (last, login_id, out)
            })
        };
        // The ending lands at a different point of the writer's work each round.
        tokio::time::sleep(Duration::from_micros(150 * (round % 12) as u64)).await;
        if lock {
            a_locks.lock(&name, "race").await.unwrap();
        }
        a.remove_user(&name, None).await.unwrap();
        let (last, login_id, login) = writer.await.unwrap();
        for id in &last {
            assert!(
                fresh.get(id).await.unwrap().is_none(),
                "round {round}: a session written back or rotated outlived the ending"
            );
        }
        let alive: Vec<_> = fresh.list_user(&name).await.unwrap();
        match login {
            // Without a lock, a login after the ending is a new session, legitimately alive.
            Admitted::Stored { .. } if !lock => {
                assert!(
                    alive.iter().all(|(fp, _)| *fp == login_id.fingerprint()),
                    "round {round}"
                );
            }
            Admitted::Stored { .. } | Admitted::Locked if lock => {
                assert!(alive.is_empty(), "round {round}: a login outlived the lock");
                assert_eq!(
                    b.create(user(&name), Admission::default()).await.unwrap(),
                    Admitted::Locked,
                    "round {round}"
                );
            }
            other => panic!("round {round}: {other:?}"),
        }
        finals.extend(last);
    }
    finals
}

/// Parallel sign-ins against a cap of two that refuses the excess: never more than two.
async fn parallel_cap(s: Arc<dyn SessionStore>) {
    let cap = Admission {
        replaces: None,
        cap: Some(Cap {
            level: AuthLevel::Password,
            max: 2,
            evict_oldest: false,
        }),
    };
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.create(user("eve"), cap).await.unwrap() })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        if let Admitted::Stored { .. } = t.await.unwrap() {
            stored += 1;
        }
    }
    assert_eq!(stored, 2, "exactly the cap was admitted");
    assert_eq!(s.list_user("eve").await.unwrap().len(), 2);
}

/// The SOC's step-up and all-sessions view: asked through one replica, every session of the
/// user wants a proof on the other well within the cache's lifetime (its copy dropped at
/// once); a session proven since is left alone; the listing has every user's, newest first.
async fn soc_views(a: &dyn SessionStore, b: &dyn SessionStore) {
    let asked = stored(a, user("ivy")).await;
    let mut proven = user("ivy");
    proven.proof_at_us = Some(5_000_000);
    let proven = stored(a, proven).await;
    let mut other = user("jon");
    other.created = u64::MAX / 2;
    let other = stored(a, other).await;
    for id in [&asked, &proven, &other] {
        assert!(
            !b.get(id).await.unwrap().unwrap().proof_wanted(),
            "cached on b"
        );
    }
    let read_before = (*b.get(&asked).await.unwrap().unwrap()).clone();
    assert_eq!(a.want_proof("ivy", 4_000_000).await.unwrap(), 1);
    let deadline = std::time::Instant::now() + Duration::from_millis(400);
    while !b.get(&asked).await.unwrap().unwrap().proof_wanted() {
        assert!(
            std::time::Instant::now() < deadline,
            "b still serves its old copy"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!b.get(&proven).await.unwrap().unwrap().proof_wanted());
    assert!(!b.get(&other).await.unwrap().unwrap().proof_wanted());
    // A request that read the session before the demand rotates it: the new id keeps it.
    let mut rotated = read_before;
    rotated.id = SessionId::random();
    rotated.version = 0;
    let replaces = Admission {
        replaces: Some(&asked),
        cap: None,
    };
    let out = b.create(rotated.clone(), replaces).await.unwrap();
    assert!(matches!(out, Admitted::Stored { .. }), "{out:?}");
    let asked = rotated.id;
    assert!(
        a.get(&asked).await.unwrap().unwrap().proof_wanted(),
        "lost in the rotation"
    );
    // A proof newer than the demand meets it.
    let mut met = (*a.get(&asked).await.unwrap().unwrap()).clone();
    met.proof_at_us = Some(4_000_001);
    assert!(matches!(a.update(met).await.unwrap(), Updated::Stored(_)));
    assert!(!a.get(&asked).await.unwrap().unwrap().proof_wanted());
    assert_eq!(a.want_proof("nobody", 4_000_000).await.unwrap(), 0);
    let all = b.list_all(100).await.unwrap();
    let users: Vec<_> = all.iter().map(|(_, r)| r.user.clone().unwrap()).collect();
    assert_eq!(
        users.first().map(String::as_str),
        Some("jon"),
        "newest first"
    );
    assert!(
        users.iter().filter(|u| *u == "ivy").count() == 2,
        "{users:?}"
    );
    assert!(
        all.iter().any(|(fp, _)| *fp == other.fingerprint()),
        "named by fingerprint"
    );
    assert_eq!(b.list_all(1).await.unwrap().len(), 1, "capped");
}

fn memory() -> (Arc<MemoryStore>, Arc<SqliteLocks>) {
    let locks = Arc::new(SqliteLocks::open(std::path::Path::new(":memory:")).unwrap());
    let store = Arc::new(MemoryStore::new(10_000, 100, locks.held().clone()));
    (store, locks)
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    let (store, locks) = memory();
    contract(store.as_ref(), locks.as_ref()).await;
    soc_views(store.as_ref(), store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_resurrects_nothing_and_caps_in_one_step() {
    let (store, locks) = memory();
    no_resurrection(
        store.clone(),
        store.clone(),
        store.as_ref(),
        locks.as_ref(),
        400,
    )
    .await;
    parallel_cap(store).await;
}

/// The embedded store that keeps signed-in sessions in the SQLite file keeps the same
/// promises (and the file follows: see `identity::persisted`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_store_keeps_the_contract_and_resurrects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.sqlite");
    let locks = Arc::new(SqliteLocks::open(&db).unwrap());
    let keys = Arc::new(crate::factors::crypto::KeyRing::ephemeral());
    let open = || {
        let memory = MemoryStore::new(10_000, 100, locks.held().clone());
        let disk = crate::storage::sessions::SqliteSessions::open(&db).unwrap();
        let keys = keys.clone();
        Arc::new(
            crate::identity::persisted::Persisted::open(memory, disk, keys)
                .unwrap()
                .0,
        )
    };
    contract(open().as_ref(), locks.as_ref()).await;
    let store = open();
    soc_views(store.as_ref(), store.as_ref()).await;
    // The demand is in the file: a restart does not lift it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let kay = stored(
        store.as_ref(),
        record(Some("kay"), AuthLevel::Password, now),
    )
    .await;
    assert_eq!(store.want_proof("kay", 9).await.unwrap(), 1);
    let again = open();
    let restored = again.get(&kay).await.unwrap().expect("restored");
    assert!(restored.proof_wanted(), "lifted by a restart");
    no_resurrection(
        store.clone(),
        store.clone(),
        store.as_ref(),
        locks.as_ref(),
        400,
    )
    .await;
    parallel_cap(store).await;
}

/// A replica's view of a shared Redis: its store and its locks (durable copy in `dir`).
fn replica(server: &RedisServer, dir: &std::path::Path) -> (Arc<RedisStore>, RedisLocks) {
    let durable = Arc::new(SqliteLocks::open(&dir.join("v.sqlite")).unwrap());
    let store = server.store(durable.held().clone());
    let locks = RedisLocks::new(store.clone(), durable);
    (store, locks)
}

/// A Redis of its own, marked as set up (a generation), as a first start leaves it.
fn set_up_redis() -> RedisServer {
    let server = RedisServer::start();
    redis::cmd("SET")
        .arg("t:generation")
        .arg(1)
        .exec(&mut server.conn())
        .unwrap();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_keeps_the_contract_resurrects_nothing_and_caps_in_one_step() {
    let server = set_up_redis();
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (a, a_locks) = replica(&server, da.path());
    let (b, _b_locks) = replica(&server, db.path());
    let (fresh, _) = replica(&server, dc.path());
    contract(a.as_ref(), &a_locks).await;
    soc_views(a.as_ref(), b.as_ref()).await;
    let finals = no_resurrection(a.clone(), b.clone(), fresh.as_ref(), &a_locks, 400).await;
    // Replica b's cached copies are gone within a second (the revocation message, or the
    // cache's age), and any read that reaches Redis already finds nothing.
    tokio::time::sleep(crate::storage::redis::sessions::CACHE_TTL + Duration::from_millis(100))
        .await;
    for id in &finals {
        assert!(b.get(id).await.unwrap().is_none());
    }
    parallel_cap(a).await;
}

/// A dump of Redis holds no usable portal session: the vault and the break-glass reason are
/// sealed, read back whole, and a record written before sealing is still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_vaults_and_reasons_sealed() {
    let server = set_up_redis();
    let mut conn = server.conn();
    let dir = tempfile::tempdir().unwrap();
    let (store, _locks) = replica(&server, dir.path());
    let cookie = "portal-cookie-0f3c9a77e1";
    let reason = "arrest in bed 12, Dupont";
    let mut r = user("ivy");
    r.vault = vec![VaultedCookie {
        name: "portal".into(),
        value: cookie.into(),
    }];
    r.break_glass_reason = Some(reason.into());
    let id = stored(store.as_ref(), r).await;
    // Read back on another replica (no cache): whole.
    let (other, _) = replica(&server, tempfile::tempdir().unwrap().path());
    let back = other.get(&id).await.unwrap().expect("stored");
    assert_eq!(back.vault[0].value, cookie);
    assert_eq!(back.break_glass_reason.as_deref(), Some(reason));
    // Neither the keys' values nor the append-only file on disk holds them.
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    for key in keys {
        let value: redis::Value = redis::cmd("DUMP").arg(&key).query(&mut conn).unwrap();
        let text = format!("{value:?}");
        assert!(
            !text.contains(cookie) && !text.contains("Dupont"),
            "{key}: {text}"
        );
    }
    let mut on_disk = Vec::new();
    for entry in walk(server.dir.path()) {
        on_disk.extend(std::fs::read(entry).unwrap_or_default());
    }
    let on_disk = String::from_utf8_lossy(&on_disk);
    assert!(
        on_disk.contains("ivy"),
        "the scan reads the append-only file"
    );
    assert!(!on_disk.contains(cookie) && !on_disk.contains("Dupont"));

    // A record an earlier version wrote, its vault in clear, is still read.
    let mut old = user("jon");
    old.vault = vec![VaultedCookie {
        name: "portal".into(),
        value: "older-cookie".into(),
    }];
    old.version = 1;
    let old_id = old.id;
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(old_id.0)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    redis::cmd("SET")
        .arg(format!("t:session:{hash}"))
        .arg(serde_json::to_string(&old).unwrap())
        .exec(&mut conn)
        .unwrap();
    let read = store.get(&old_id).await.unwrap().expect("an older record");
    assert_eq!(read.vault[0].value, "older-cookie");
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Pre-login sessions are capped on Redis as in memory: past the cap the oldest ends (a flood
/// of visitors cannot fill Redis); one a login took no longer counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_caps_pre_login_sessions_oldest_first() {
    let server = set_up_redis();
    let dir = tempfile::tempdir().unwrap();
    let durable = Arc::new(SqliteLocks::open(&dir.path().join("v.sqlite")).unwrap());
    let store = server.store(durable.held().clone());
    let store = Arc::new(Arc::try_unwrap(store).ok().unwrap().with_anonymous_cap(3));
    let visitor = || record(None, AuthLevel::None, 1_000);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(stored(store.as_ref(), visitor()).await);
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.get(id).await.unwrap().is_some(),
            i >= 2,
            "visitor {i}: the two oldest end"
        );
    }
    // A login takes the newest visitor's session: room for one more, nobody else ends.
    assert!(store.take(&ids[4]).await.unwrap().is_some());
    let next = stored(store.as_ref(), visitor()).await;
    for id in [&ids[2], &ids[3], &next] {
        assert!(store.get(id).await.unwrap().is_some());
    }
    // Signed-in sessions are not counted.
    stored(store.as_ref(), user("uma")).await;
    assert!(store.get(&ids[2]).await.unwrap().is_some());
}
