use super::*;
use crate::identity::locks::LockStore;
use crate::identity::session::{record, AuthLevel};
use crate::identity::vault::VaultedCookie;
use crate::storage::sqlite::locks::SqliteLocks;

/// What a start reports when the file's only session could not come back.
const ONE_DROPPED: Restored = Restored {
    sessions: 0,
    dropped: 1,
};

const PORTAL_COOKIE: &str = "MEDIBOARD-SESSION-value-that-must-stay-sealed";

struct Files {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    locks: Arc<SqliteLocks>,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigie.sqlite");
    let locks = Arc::new(SqliteLocks::open(&db).unwrap());
    Files {
        _dir: dir,
        db,
        locks,
    }
}

/// One run of the gateway: the store as a start would open it.
fn start(f: &Files, keys: &Arc<KeyRing>) -> (Persisted, Restored) {
    let memory = MemoryStore::new(100, 100, f.locks.held().clone());
    let disk = SqliteSessions::open(&f.db).unwrap();
    Persisted::open(memory, disk, keys.clone()).unwrap()
}

fn signed_in(user: &str) -> SessionRecord {
    let mut r = record(Some(user), AuthLevel::SecondFactor, 1_000);
    r.vault = vec![VaultedCookie {
        name: "PHPSESSID".into(),
        value: PORTAL_COOKIE.into(),
    }];
    r.break_glass_reason = Some("arrêt cardiaque, box 4".into());
    r
}

async fn create(s: &Persisted, r: SessionRecord) -> SessionId {
    let id = r.id;
    let out = s.create(r, Admission::default()).await.unwrap();
    assert!(matches!(out, Admitted::Stored { .. }), "{out:?}");
    id
}

#[tokio::test]
async fn signed_in_sessions_come_back_after_a_restart_as_they_were_last_written() {
    let f = files();
    let keys = Arc::new(KeyRing::ephemeral());
    let (run, _) = start(&f, &keys);
    let kept = create(&run, signed_in("dr.martin")).await;
    let ended = create(&run, signed_in("inf.durand")).await;
    let visitor = create(&run, record(None, AuthLevel::None, 1_000)).await;
    // A later write (a portal cookie rotated) is what comes back.
    let mut changed = (*run.get(&kept).await.unwrap().unwrap()).clone();
    changed.vault[0].value = format!("{PORTAL_COOKIE}-rotated");
    assert!(matches!(
        run.update(changed).await.unwrap(),
        Updated::Stored(_)
    ));
    assert!(run.remove(&ended).await.unwrap().is_some());
    drop(run);

    let (run, restored) = start(&f, &keys);
    assert_eq!(
        restored,
        Restored {
            sessions: 1,
            dropped: 0
        }
    );
    let back = run
        .get(&kept)
        .await
        .unwrap()
        .expect("the signed-in session");
    assert_eq!(back.user.as_deref(), Some("dr.martin"));
    assert_eq!(back.vault[0].value, format!("{PORTAL_COOKIE}-rotated"));
    assert_eq!(
        back.break_glass_reason.as_deref(),
        Some("arrêt cardiaque, box 4")
    );
    assert!(
        run.get(&ended).await.unwrap().is_none(),
        "an ended session stays ended"
    );
    assert!(
        run.get(&visitor).await.unwrap().is_none(),
        "pre-login sessions are not kept"
    );
    // And it goes on being kept: a write-back of the version read still applies.
    assert!(matches!(
        run.update((*back).clone()).await.unwrap(),
        Updated::Stored(_)
    ));
}

#[tokio::test]
async fn every_way_a_session_ends_takes_it_out_of_the_file() {
    let f = files();
    let keys = Arc::new(KeyRing::ephemeral());
    let (run, _) = start(&f, &keys);
    let a = create(&run, signed_in("ann")).await;
    let b = create(&run, signed_in("ann")).await;
    let c = create(&run, signed_in("bob")).await;
    let mut old = signed_in("cid");
    old.created = 0;
    old.last_seen = 0;
    create(&run, old).await;
    let replaced = create(&run, signed_in("dan")).await;
    let mut next = signed_in("dan");
    next.level = AuthLevel::SecondFactor;
    let out = run
        .create(
            next,
            Admission {
                replaces: Some(&replaced),
                cap: None,
            },
        )
        .await
        .unwrap();
    assert!(matches!(out, Admitted::Stored { .. }));

    assert_eq!(run.remove_user("ann", Some(&a)).await.unwrap().len(), 1);
    let fingerprint = c.fingerprint();
    assert!(run
        .remove_fingerprint("bob", &fingerprint)
        .await
        .unwrap()
        .is_some());
    let lifetimes = Lifetimes {
        idle: std::time::Duration::from_secs(60),
        absolute: std::time::Duration::from_secs(3600),
        anonymous: std::time::Duration::from_secs(60),
    };
    assert_eq!(run.sweep(1_000, &lifetimes, 10).await.unwrap().len(), 1);
    drop(run);

    let (run, restored) = start(&f, &keys);
    assert_eq!(restored.sessions, 2, "ann's kept one and dan's new one");
    assert!(run.get(&a).await.unwrap().is_some());
    for gone in [b, c, replaced] {
        assert!(run.get(&gone).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn the_file_holds_no_portal_cookie_reason_or_id_and_opens_with_no_other_key() {
    let f = files();
    let keys = Arc::new(KeyRing::ephemeral());
    let (run, _) = start(&f, &keys);
    let id = create(&run, signed_in("dr.martin")).await;
    drop(run);
    let mut bytes = std::fs::read(&f.db).unwrap();
    for wal in ["-wal", "-shm"] {
        let mut p = f.db.clone().into_os_string();
        p.push(wal);
        bytes.extend(std::fs::read(p).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(&id.stored_name()), "the row is there");
    for secret in [
        PORTAL_COOKIE.to_string(),
        "arrêt cardiaque".to_string(),
        B64.encode(id.0),
    ] {
        assert!(!text.contains(&secret), "{secret} in the file");
    }
    // Another key ring (a lost key file): the sessions are dropped, not half-read.
    let (run, restored) = start(&f, &Arc::new(KeyRing::ephemeral()));
    assert_eq!(restored, ONE_DROPPED);
    assert!(run.get(&id).await.unwrap().is_none());
    let (_, again) = start(&f, &keys);
    assert_eq!(again, Restored::default(), "the dropped row left the file");
}

/// The sessions by level the metrics show are the memory store's count, passed on.
#[tokio::test]
async fn the_census_is_the_sessions_in_memory() {
    let f = files();
    let (run, _) = start(&f, &Arc::new(KeyRing::ephemeral()));
    create(&run, signed_in("dr.martin")).await;
    create(&run, signed_in("dr.ng")).await;
    let census = run.census().await.unwrap();
    assert_eq!(census, Some(crate::identity::store::Census([0, 0, 2, 0])));
}

/// A sealed session opens only in its own row: copied over another session's row (someone
/// with write access to the file), it is dropped there, and the session it overwrote with it.
#[tokio::test]
async fn a_sealed_session_moved_to_another_row_does_not_open() {
    let f = files();
    let keys = Arc::new(KeyRing::ephemeral());
    let (run, _) = start(&f, &keys);
    let kept = create(&run, signed_in("dr.martin")).await;
    let overwritten = create(&run, signed_in("dr.martin")).await;
    let rows = run.disk.all().unwrap();
    let sealed = &rows.iter().find(|(row, _)| *row == hash(&kept)).unwrap().1;
    run.disk
        .put(&hash(&overwritten), "dr.martin", sealed)
        .unwrap();
    drop(run);
    let (run, restored) = start(&f, &keys);
    let one_each = Restored {
        sessions: 1,
        dropped: 1,
    };
    assert_eq!(restored, one_each);
    assert!(run.get(&kept).await.unwrap().is_some());
    assert!(run.get(&overwritten).await.unwrap().is_none());
}

#[tokio::test]
async fn a_user_locked_while_the_gateway_was_down_is_not_restored() {
    let f = files();
    let keys = Arc::new(KeyRing::ephemeral());
    let (run, _) = start(&f, &keys);
    let id = create(&run, signed_in("dr.martin")).await;
    drop(run);
    f.locks.lock("dr.martin", "offboarded").await.unwrap();
    let (run, restored) = start(&f, &keys);
    assert_eq!(restored, ONE_DROPPED);
    assert!(run.get(&id).await.unwrap().is_none());
}

/// A write-back racing the end of its session (a page in flight while the user signs out or
/// IT revokes them) must not leave the session in the file for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_racing_an_end_leaves_nothing_for_the_next_start() {
    let f = files();
    let keys = Arc::new(KeyRing::ephemeral());
    let run = Arc::new(start(&f, &keys).0);
    for _ in 0..10 {
        // Sessions written back over and over (pages in flight), ended one by one meanwhile.
        let mut ids = Vec::new();
        let mut writers = Vec::new();
        for _ in 0..20 {
            let id = create(&run, signed_in("dr.martin")).await;
            ids.push(id);
            let run = run.clone();
            writers.push(tokio::spawn(async move {
                while let Some(read) = run.get(&id).await.unwrap() {
                    let _ = run.update((*read).clone()).await.unwrap();
                }
            }));
        }
        for id in &ids {
            tokio::task::yield_now().await;
            run.remove(id).await.unwrap();
        }
        for w in writers {
            w.await.unwrap();
        }
    }
    drop(run);
    let (_, restored) = start(&f, &keys);
    assert_eq!(restored, Restored::default(), "ended sessions came back");
}

#[tokio::test]
async fn a_revocation_clears_rows_memory_no_longer_knows() {
    let f = files();
    let keys = Arc::new(KeyRing::ephemeral());
    let (run, _) = start(&f, &keys);
    let kept = create(&run, signed_in("dr.martin")).await;
    // A row left by an earlier run that memory does not hold (written before this fix).
    let stray = signed_in("dr.martin");
    let row = hash(&stray.id);
    let plain = serde_json::to_vec(&(B64.encode(stray.id.0), &stray)).unwrap();
    run.disk
        .put(&row, "dr.martin", &keys.seal(&aad(&row), &plain))
        .unwrap();
    run.remove_user("dr.martin", Some(&kept)).await.unwrap();
    drop(run);
    let (run, restored) = start(&f, &keys);
    assert_eq!(restored.sessions, 1);
    assert!(run.get(&kept).await.unwrap().is_some());
    assert!(run.get(&stray.id).await.unwrap().is_none());
}
