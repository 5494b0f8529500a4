//! The PostgreSQL stores against the machine's PostgreSQL, each test in a database of its own.

use std::str::FromStr;
use std::sync::Arc;

use super::*;
use crate::detect::Hold;
use crate::factors::store::FactorStore;
use crate::identity::locks::{DurableLocks, LockStore};
use crate::storage::holds::HoldStore;
use crate::testing::postgres::PgDatabase;

fn settings(db: &PgDatabase) -> PgSettings {
    PgSettings {
        config: tokio_postgres::Config::from_str(&db.url()).unwrap(),
        ca: None,
        shown: db.url(),
    }
}

fn connect(db: &PgDatabase) -> Pg {
    Pg::connect(&settings(db)).unwrap().0
}

#[test]
fn replicas_starting_together_migrate_once() {
    let db = PgDatabase::create();
    let s = settings(&db);
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || Pg::connect(&s).map(|(_, applied)| applied.len()))
        })
        .collect();
    let applied: Vec<usize> = starts
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    assert_eq!(
        applied.iter().sum::<usize>(),
        schema_version() as usize,
        "{applied:?}"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM vigie_schema"),
        schema_version().to_string()
    );
    // And once more at a later start: nothing to do.
    assert!(Pg::connect(&s).unwrap().1.is_empty());
}

#[test]
fn a_database_from_a_newer_vigie_is_refused() {
    let db = PgDatabase::create();
    connect(&db);
    db.sql("INSERT INTO vigie_schema (version, name) VALUES (999, 'from the future')");
    match Pg::connect(&settings(&db)) {
        Err(PgError::TooNew { found: 999, .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[test]
fn an_unreachable_server_fails_the_start_with_where() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://vigie@127.0.0.1:{port}/vigie");
    let s = PgSettings {
        config: tokio_postgres::Config::from_str(&url).unwrap(),
        ca: None,
        shown: url.clone(),
    };
    let err = Pg::connect(&s)
        .err()
        .expect("nothing listens there")
        .to_string();
    assert!(err.contains(&url), "{err}");
}

#[tokio::test]
async fn factors_keep_the_contract() {
    let db = PgDatabase::create();
    let store = factors::PgFactors(connect(&db));
    crate::factors::store::tests::contract(&store, true).await;
}

#[tokio::test]
async fn parallel_claims_of_one_code_let_one_through() {
    let db = PgDatabase::create();
    let store = Arc::new(factors::PgFactors(connect(&db)));
    store
        .set_recovery_codes("alice", &["k:a".into(), "k:b".into()])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let code = s.use_recovery_code("alice", &["k:a".into()]).await.unwrap();
            let step = s.claim_totp_step("alice", 42, false).await.unwrap();
            (code, step)
        }));
    }
    let mut codes = 0;
    let mut steps = 0;
    for t in tasks {
        let (c, s) = t.await.unwrap();
        codes += usize::from(c);
        steps += usize::from(s);
    }
    assert_eq!((codes, steps), (1, 1));
    assert_eq!(store.recovery_codes_left("alice").await.unwrap(), 1);
}

#[tokio::test]
async fn a_lock_made_on_one_replica_is_known_to_another() {
    let db = PgDatabase::create();
    let a = locks::PgLocks::open(connect(&db)).unwrap();
    a.lock("dr.house", "stolen password").await.unwrap();
    assert!(a.held().contains("dr.house"));
    // Another replica, started now: it loads the lock, and reads it.
    let b = locks::PgLocks::open(connect(&db)).unwrap();
    assert!(b.held().contains("dr.house"));
    assert_eq!(
        b.locked("dr.house").await.unwrap().as_deref(),
        Some("stolen password")
    );
    assert_eq!(b.all().unwrap().len(), 1);
    // A lock learnt from Redis keeps the reason already known.
    b.learn("dr.house", "other").unwrap();
    assert_eq!(
        a.locked("dr.house").await.unwrap().as_deref(),
        Some("stolen password")
    );
    assert!(b.unlock("dr.house").await.unwrap());
    assert_eq!(a.locked("dr.house").await.unwrap(), None);
    assert!(!a.forget("dr.house").unwrap());
}

#[test]
fn holds_outlive_the_store_and_expire() {
    let db = PgDatabase::create();
    let hold = |until_us| Hold {
        since_us: 1_000,
        until_us,
        alert_id: "A1".into(),
        rule: "bulk export".into(),
        score: 97,
    };
    {
        let h = holds::PgHolds::new(connect(&db));
        h.put("ehr", "dr.house", &hold(5_000)).unwrap();
        h.put("ehr", "dr.house", &hold(9_000)).unwrap();
        h.put("ehr", "nurse", &hold(2_000)).unwrap();
        h.put("lab", "dr.house", &hold(9_000)).unwrap();
        h.release("lab", "dr.house").unwrap();
    }
    let again = holds::PgHolds::new(connect(&db));
    let running = again.running(3_000).unwrap();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(
        (running[0].0.as_str(), running[0].1.as_str()),
        ("ehr", "dr.house")
    );
    assert_eq!(running[0].2.until_us, 9_000);
    assert_eq!(running[0].2.score, 97);
    assert_eq!(
        db.sql("SELECT count(*) FROM holds"),
        "1",
        "the expired one is gone"
    );
}

#[test]
fn alerts_keep_the_contract_and_one_list_for_every_replica() {
    let db = PgDatabase::create();
    let keys = Arc::new(crate::factors::crypto::KeyRing::ephemeral());
    let a = crate::alerts::AlertStore::new(Arc::new(alerts::PgAlerts(connect(&db))))
        .sealing_with(keys.clone());
    crate::alerts::tests::store_contract(&a);
    let b =
        crate::alerts::AlertStore::new(Arc::new(alerts::PgAlerts(connect(&db)))).sealing_with(keys);
    assert_eq!(b.recent(100).unwrap(), a.recent(100).unwrap());
    // One history, the notes open on every replica (one key ring).
    let id = a.recent(100).unwrap()[1]["event"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(b.history(&id).unwrap(), a.history(&id).unwrap());
    assert!(b.history(&id).unwrap()[0].note.is_some());
    // Notes are sealed at rest: not in a dump.
    assert!(!String::from_utf8_lossy(&db.dump()).contains("liste de service"));
}

#[tokio::test]
async fn a_connection_cut_under_the_pool_is_replaced_and_the_call_made_again() {
    let db = PgDatabase::create();
    let pg = connect(&db);
    let store = factors::PgFactors(pg.clone());
    assert!(store.save("alice", vec![1], 0).await.unwrap());
    // Several connections in the pool, as under load: a failover leaves them all dead, and
    // the retry must not take the next dead one (CI once met exactly that).
    let busy =
        (0..4).map(|_| pg.run(|c| async move { c.execute("SELECT pg_sleep(0.1)", &[]).await }));
    for r in futures_util::future::join_all(busy).await {
        r.unwrap();
    }
    // The server ends every connection of the pool (a failover, a restart).
    let ended = db.sql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name
    ));
    assert_ne!(ended, "0", "the pool had a connection to end");
    // The next call finds its connection broken, takes a fresh one, and answers.
    assert_eq!(
        store.load("alice").await.unwrap().map(|(s, _)| s),
        Some(vec![1])
    );
}

#[test]
fn local_users_keep_the_contract_and_no_password_in_a_dump() {
    let db = PgDatabase::create();
    let pg = connect(&db);
    crate::storage::users::tests::contract(|| {
        crate::storage::users::UserStore::new(Box::new(users::PgUsers(pg.clone())))
    });
    let dump = db.dump();
    assert!(String::from_utf8_lossy(&dump).contains("alice"));
    assert!(
        !dump.windows(9).any(|w| w == b"passphras"),
        "plain password in the dump"
    );
}

#[test]
fn a_sqlite_file_is_copied_once_and_its_codes_never_over_newer_ones() {
    let db = PgDatabase::create();
    let pg = connect(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vigie.sqlite");
    {
        let conn = crate::storage::sqlite::open(&file).unwrap();
        conn.execute_batch(
            "INSERT INTO account_locks VALUES ('mallory', 'stolen badge', 1);
             INSERT INTO factors VALUES ('alice', x'0102', 7), ('bob', x'0304', 9);
             INSERT INTO totp_steps VALUES ('alice', 100), ('bob', 50);
             INSERT INTO recovery_codes VALUES ('alice', 'k:old-a'), ('bob', 'k:old-b');
             INSERT INTO users (username, password_hash, groups, disabled, created, updated)
                 VALUES ('carol', '$argon2id$x', 'nurses', 1, 5, 6);
             INSERT INTO audit (id, at_us, level, event, username, fields) VALUES ('a1', 10, 'warn', 'login', 'alice', '{\"outcome\":\"failure\"}'),
                                      ('a2', 11, 'info', 'session_expired', NULL, '{}');
             INSERT INTO break_glass VALUES ('g1', 12, 'alice', 'ehr', 'f00d', 99, x'0a0b');",
        )
        .unwrap();
    }
    // Bob already moved (his codes were made again in PostgreSQL), and used a later step.
    db.sql(
        "INSERT INTO factors VALUES ('bob', '\\x09', 3);
         INSERT INTO recovery_codes VALUES ('bob', 'k:new-b');
         INSERT INTO totp_steps VALUES ('bob', 40)",
    );
    let copied = import::from_sqlite(&pg, &file).unwrap().expect("copied");
    let n = |t: &str| copied.iter().find(|(k, _)| *k == t).map(|(_, n)| *n);
    assert_eq!(n("account_locks"), Some(1));
    assert_eq!(n("factors"), Some(1), "Bob's record in PostgreSQL wins");
    assert_eq!(n("users"), Some(1));
    assert_eq!(
        db.sql("SELECT digest FROM recovery_codes ORDER BY digest"),
        "k:new-b\nk:old-a",
        "Bob's old codes stay out"
    );
    assert_eq!(
        db.sql("SELECT username || '=' || step FROM totp_steps ORDER BY username"),
        "alice=100\nbob=50",
        "the later step wins"
    );
    assert_eq!(db.sql("SELECT disabled FROM users"), "t");
    assert_eq!((n("audit"), n("break_glass")), (Some(2), Some(1)));
    assert_eq!(
        db.sql("SELECT id || ' ' || coalesce(username, '-') || ' ' || (fields->>'outcome') FROM audit WHERE id = 'a1'"),
        "a1 alice failure"
    );
    assert_eq!(
        db.sql("SELECT encode(reason, 'hex') FROM break_glass"),
        "0a0b"
    );
    // Once: the file is marked.
    assert!(import::from_sqlite(&pg, &file).unwrap().is_none());
}

#[tokio::test]
async fn attempts_counted_while_others_clear_the_count_never_fail() {
    let db = PgDatabase::create();
    let store = Arc::new(factors::PgFactors(connect(&db)));
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => s.clear_failures("u:alice").await.map(drop),
                _ => s.reserve_attempt("u:alice", 100 + i, None).await.map(drop),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("a count racing a clear");
    }
}

#[tokio::test]
async fn a_lock_made_while_postgres_is_away_holds_here_and_is_stored_once_it_is_back() {
    let db = PgDatabase::create();
    let locks = Arc::new(locks::PgLocks::open(connect(&db)).unwrap());
    locks.refreshing(true).unwrap();
    db.gone();
    let err = locks.lock("mallory", "stolen badge").await.unwrap_err();
    assert!(
        err.to_string().contains("in force on this gateway"),
        "{err}"
    );
    assert!(locks.held().contains("mallory"), "fail closed");
    // Back (empty, as a restore would leave it): the schema made again, the lock written.
    db.back();
    connect(&db);
    let started = std::time::Instant::now();
    while db.sql("SELECT reason FROM account_locks WHERE username = 'mallory'") != "stolen badge" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the pending lock was never stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(locks.held().contains("mallory"));
    assert!(locks.unlock("mallory").await.unwrap());
    assert!(!locks.held().contains("mallory"));
}

#[test]
fn holds_and_releases_made_while_postgres_is_away_are_stored_in_order_once_it_is_back() {
    let db = PgDatabase::create();
    let holds = holds::PgHolds::new(connect(&db));
    let hold = Hold {
        since_us: 1_000,
        until_us: i64::MAX,
        alert_id: "A7".into(),
        rule: "bulk export".into(),
        score: 90,
    };
    db.gone();
    assert!(holds.put("lab", "clerk", &hold).is_err());
    assert!(holds.put("ehr", "dr.house", &hold).is_err());
    assert!(holds.put("ehr", "nurse", &hold).is_err());
    // Released by the SOC meanwhile: the release must not be overtaken by the hold.
    assert!(holds.release("ehr", "nurse").is_err());
    db.back();
    connect(&db);
    // A release made as soon as it is back, before the retry: the hold kept must not be
    // written after it.
    holds.put("lab", "clerk", &hold).unwrap();
    holds.release("lab", "clerk").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let started = std::time::Instant::now();
    while db.sql("SELECT count(*) FROM holds") != "1" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the kept changes were never stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(db.sql("SELECT username FROM holds"), "dr.house");
}

#[test]
fn alerts_the_store_refuses_are_kept_and_stored_once_it_answers() {
    use crate::alerts::Sink;
    let db = PgDatabase::create();
    let store = crate::alerts::AlertStore::new(Arc::new(alerts::PgAlerts(connect(&db))));
    let mut sink = crate::alerts::StoreSink::new(store.clone());
    let first = crate::alerts::tests::sample("VIGIE-EXF-003");
    let second = crate::alerts::tests::sample("VIGIE-EXF-002");
    db.gone();
    assert!(sink.deliver(&first, &first.to_ecs()).is_err());
    assert!(sink.deliver(&second, &second.to_ecs()).is_err());
    db.back();
    connect(&db);
    sink.retry();
    let ids: Vec<String> = store
        .recent(10)
        .unwrap()
        .iter()
        .map(|a| a["event"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&first.id) && ids.contains(&second.id));
}

#[test]
fn the_audit_trail_keeps_the_contract_and_no_break_glass_reason_in_a_dump() {
    let db = PgDatabase::create();
    let store = Arc::new(audit::PgAudit(connect(&db)));
    crate::audit::tests::contract(store, &|| db.dump());
}

#[test]
fn a_records_database_going_back_in_time_is_noticed_at_start_and_while_running() {
    let db = PgDatabase::create();
    let pg = connect(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vigie.sqlite");
    assert!(
        import::from_sqlite(&pg, &file).unwrap().is_none(),
        "a new gateway"
    );
    let backup = db.dump();
    assert!(
        import::from_sqlite(&pg, &file).unwrap().is_none(),
        "a later start"
    );
    let conn = crate::storage::sqlite::open(&file).unwrap();
    let mut alerted = false;
    epoch::tick(&pg, &conn, &mut alerted).unwrap();
    assert!(!alerted, "time goes forward");
    // Restored from the backup under the running gateway: noticed at its next round...
    db.restore(&backup);
    let pg = connect(&db);
    epoch::tick(&pg, &conn, &mut alerted).unwrap();
    assert!(alerted, "the running gateway alerts");
    // ...and its next start stops, however long it ran since and whatever other replicas did.
    let other = dir.path().join("other.sqlite");
    for _ in 0..5 {
        epoch::tick(&pg, &conn, &mut alerted).unwrap();
        import::from_sqlite(&pg, &other).unwrap();
    }
    let e = import::from_sqlite(&pg, &file).unwrap_err().to_string();
    assert!(
        e.contains("went back in time") && e.contains("--new-records"),
        "{e}"
    );
    import::take_as_new(&pg, &file).unwrap();
    assert!(
        import::from_sqlite(&pg, &file).unwrap().is_none(),
        "taken on purpose"
    );
}
