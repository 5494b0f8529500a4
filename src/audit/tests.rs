//! The audit trail: what the layer keeps of an event, the writer's backlog, and the contract
//! every store keeps (run here on the SQLite file, and on PostgreSQL in its own tests).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

use super::writer::Writer;
use super::*;
use crate::storage::sqlite::audit::SqliteAudit;

/// Records what [`layer::entry`] makes of each event, instead of queueing it.
use crate::testing::Capture;

#[test]
fn an_event_is_kept_with_its_fields_and_its_user_and_name_lifted_out() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
    let user = "dr.martin".to_string();
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(target: "vigie::audit", event = "second_factor", outcome = "failure", user = %user, consecutive = 3u64, fresh = true, "refused");
        tracing::info!(target: "vigie::audit", event = "session_expired", user = "-", session = "ab12");
    });
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let e = &seen[0];
    assert_eq!(
        (e.level.as_str(), e.event.as_str()),
        ("warn", "second_factor")
    );
    assert_eq!(e.user.as_deref(), Some("dr.martin"));
    assert_eq!(
        serde_json::Value::Object(e.fields.clone()),
        json!({ "outcome": "failure", "consecutive": 3, "fresh": true, "message": "refused" })
    );
    assert_eq!(seen[1].user, None, "`-` is no user");
    assert_ne!(seen[0].id, seen[1].id);
}

fn entry(at_us: i64, event: &str, user: Option<&str>) -> Entry {
    Entry {
        id: new_id(),
        at_us,
        level: "info".into(),
        event: event.into(),
        user: user.map(str::to_string),
        fields: json!({ "client": "10.1.2.3" }).as_object().unwrap().clone(),
        link: None,
    }
}

/// The entries without their links (what was handed to the writer).
fn unlinked(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .map(|e| Entry { link: None, ..e })
        .collect()
}

const REASON: &str = "Arrêt cardiaque salle 12, dossier de M. Dupont requis";

fn glass(at_us: i64, user: &str) -> BreakGlass {
    BreakGlass {
        id: new_id(),
        at_us,
        user: user.into(),
        portal: "ehr".into(),
        session: "f00d".into(),
        until: 1_900_000_000,
        reason: REASON.into(),
    }
}

/// What every [`AuditRecords`] keeps: all or nothing, once per id, newest first, filters,
/// break-glass reasons sealed and bound to their record, pruning. `raw` reads the store's
/// bytes back (a file, a dump) to show the reason is not in them.
pub(crate) fn contract(store: Arc<dyn AuditRecords>, raw: &dyn Fn() -> Vec<u8>) {
    let keys = Arc::new(KeyRing::ephemeral());
    let signer = Arc::new(signing::Signer::ephemeral());
    let mut w = Writer::new(store.clone(), keys.clone(), None)
        .signing(signer.clone(), Duration::ZERO)
        .chain("replica-a/1");
    let a = entry(1_000, "login", Some("dr.martin"));
    let b = entry(2_000, "second_factor", Some("dr.martin"));
    let c = entry(3_000, "login", Some("inf.durand"));
    for e in [&a, &b, &c] {
        w.take(Record::Entry(e.clone()));
    }
    // Written before the chain's first entry (as by an older version): no entry to check.
    w.take(Record::BreakGlass(glass(900, "dr.martin")));
    assert!(w.flush(Instant::now()));
    // A retry after a lost reply makes no second row.
    store.insert(std::slice::from_ref(&a), &[]).unwrap();
    let trusted = [signer.public().to_string()];
    let verified = verify(store.as_ref(), &keys, &trusted, vec![]).unwrap();
    assert!(verified.intact(), "{:?}", verified.problems);
    assert_eq!(
        (verified.chains[0].last, verified.chains[0].checkpoint),
        (3, None)
    );
    w.checkpoint(Instant::now());
    let cps = store.checkpoints().unwrap();
    assert_eq!(
        cps.iter()
            .map(|c| (c.chain.as_str(), c.seq))
            .collect::<Vec<_>>(),
        [("replica-a/1", 3)]
    );
    let verified = verify(store.as_ref(), &keys, &trusted, vec![]).unwrap();
    assert!(verified.intact(), "{:?}", verified.problems);
    assert_eq!(verified.chains[0].checkpoint, Some(3));
    // Signed by a key verify does not know: not counted, and said.
    let untrusted = verify(store.as_ref(), &keys, &[], vec![]).unwrap();
    assert!(untrusted.intact() && untrusted.chains[0].checkpoint.is_none());
    assert!(
        untrusted
            .warnings
            .iter()
            .any(|w| w.contains("a key verify does not know")),
        "{:?}",
        untrusted.warnings
    );

    let q = |user: Option<&str>, event: Option<&str>, limit| Query {
        user: user.map(str::to_string),
        event: event.map(str::to_string),
        limit,
    };
    let recent = |user, event, limit| unlinked(store.recent(&q(user, event, limit)).unwrap());
    assert_eq!(
        recent(None, None, 10),
        vec![c.clone(), b.clone(), a.clone()]
    );
    assert_eq!(
        recent(Some("dr.martin"), None, 10),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(recent(None, Some("login"), 10), vec![c.clone(), a.clone()]);
    assert_eq!(recent(None, None, 1), vec![c.clone()]);

    let log = AuditLog::new(store.clone(), keys.clone());
    let reviews = log.break_glass(Some("dr.martin"), 10).unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0].reason.as_deref(), Some(REASON));
    assert_eq!(
        (reviews[0].portal.as_str(), reviews[0].until),
        ("ehr", 1_900_000_000)
    );
    assert!(log.break_glass(Some("inf.durand"), 10).unwrap().is_empty());
    let bytes = raw();
    assert!(bytes.len() > 100 && String::from_utf8_lossy(&bytes).contains("inf.durand"));
    for needle in ["cardiaque", "Dupont"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the reason is readable at rest"
        );
    }
    // Sealed to its record: the same sealed reason under another user does not open, nor
    // under another ring.
    let mut moved = store.break_glass(None, 10).unwrap().remove(0);
    moved.id = new_id();
    moved.user = "inf.durand".into();
    moved.at_us = 4_000;
    let moved_id = moved.id.clone();
    store.insert(&[], &[moved]).unwrap();
    let reviews = log.break_glass(Some("inf.durand"), 10).unwrap();
    assert_eq!(reviews.len(), 1);
    assert_eq!(
        reviews[0].reason, None,
        "a reason moved to another record opens"
    );
    let other = AuditLog::new(store.clone(), Arc::new(KeyRing::ephemeral()));
    assert_eq!(
        other.break_glass(Some("dr.martin"), 10).unwrap()[0].reason,
        None
    );

    assert_eq!(
        w.prune_before(2_600).unwrap(),
        3,
        "two entries and one break-glass record"
    );
    assert_eq!(recent(None, None, 10), vec![c]);
    assert_eq!(store.break_glass(None, 10).unwrap().len(), 1);
    // The chain now starts at its anchor, its checkpoint still vouching; the record moved in
    // above (no entry vouches for it) is the one break.
    let verified = verify(store.as_ref(), &keys, &trusted, vec![]).unwrap();
    assert!(
        matches!(&verified.problems[..], [chain::Problem::BreakGlass { id, .. }] if *id == moved_id),
        "{:?}",
        verified.problems
    );
    assert_eq!(
        (verified.chains[0].first, verified.chains[0].checkpoint),
        (3, Some(3))
    );
    assert_eq!(store.anchors().unwrap()[0].seq, 2);
}

#[test]
fn the_sqlite_file_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    let store = Arc::new(SqliteAudit::open(&path).unwrap());
    let read = || {
        let mut all = std::fs::read(&path).unwrap();
        all.extend(std::fs::read(path.with_extension("sqlite-wal")).unwrap_or_default());
        all
    };
    contract(store, &read);
}

/// A store that refuses its first `fails` writes, then keeps what it is given.
#[derive(Default)]
struct Flaky {
    fails: Mutex<u32>,
    kept: Mutex<Vec<Entry>>,
    glass: Mutex<Vec<SealedBreakGlass>>,
}

impl AuditRecords for Flaky {
    fn insert(&self, entries: &[Entry], glass: &[SealedBreakGlass]) -> Result<(), AuditError> {
        let mut fails = self.fails.lock().unwrap();
        if *fails > 0 {
            *fails -= 1;
            return Err(AuditError::Json(
                serde_json::from_str::<u8>("x").unwrap_err(),
            ));
        }
        self.kept.lock().unwrap().extend_from_slice(entries);
        self.glass.lock().unwrap().extend_from_slice(glass);
        Ok(())
    }
    fn recent(&self, _: &Query) -> Result<Vec<Entry>, AuditError> {
        Ok(self.kept.lock().unwrap().clone())
    }
    fn break_glass(&self, _: Option<&str>, _: usize) -> Result<Vec<SealedBreakGlass>, AuditError> {
        Ok(self.glass.lock().unwrap().clone())
    }
    fn page(&self, _: Option<&Cursor>, _: usize) -> Result<Page, AuditError> {
        Ok(vec![])
    }
    fn checkpoint(&self, _: &chain::Checkpoint) -> Result<(), AuditError> {
        Ok(())
    }
    fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, AuditError> {
        Ok(vec![])
    }
    fn anchors(&self) -> Result<Vec<chain::Anchor>, AuditError> {
        Ok(vec![])
    }
    fn first_linked_at(&self) -> Result<Option<i64>, AuditError> {
        Ok(None)
    }
    fn heads_before(&self, _: i64) -> Result<Vec<chain::Link>, AuditError> {
        Ok(vec![])
    }
    fn prune(&self, _: i64, _: &[chain::Anchor]) -> Result<u64, AuditError> {
        Ok(0)
    }
}

#[test]
fn entries_the_store_refuses_are_kept_and_written_in_order_once_it_answers() {
    let store = Arc::new(Flaky {
        fails: Mutex::new(2),
        ..Default::default()
    });
    let mut w = Writer::new(store.clone(), Arc::new(KeyRing::ephemeral()), None);
    let all: Vec<Entry> = (0..1_200)
        .map(|i| entry(i, "login", Some("dr.martin")))
        .collect();
    for e in &all[..700] {
        w.take(Record::Entry(e.clone()));
    }
    w.take(Record::BreakGlass(glass(5, "dr.martin")));
    let t0 = Instant::now();
    assert!(!w.flush(t0), "refused");
    for e in &all[700..] {
        w.take(Record::Entry(e.clone()));
    }
    assert!(!w.flush(t0), "not tried again before the retry delay");
    assert_eq!(*store.fails.lock().unwrap(), 1);
    assert!(!w.flush(t0 + Duration::from_secs(3)), "refused once more");
    assert!(w.flush(t0 + Duration::from_secs(6)));
    assert_eq!(w.pending(), 0);
    let kept = store.kept.lock().unwrap().clone();
    assert_eq!(unlinked(kept.clone()), all, "every entry, once, in order");
    // Linked once, in order: the refused writes did not use up numbers.
    let seqs: Vec<i64> = kept.iter().map(|e| e.link.as_ref().unwrap().seq).collect();
    assert_eq!(seqs, (1..=1_200).collect::<Vec<_>>());
    assert_eq!(store.glass.lock().unwrap().len(), 1);
}

#[test]
fn a_repeated_event_is_kept_once_per_quiet_time_and_a_last_burst_is_written_when_it_ends() {
    use super::fold::{due_at, fold_at, Refused};
    let t0 = Instant::now();
    let ip: Option<std::net::IpAddr> = Some("10.0.0.9".parse().unwrap());
    let (flood, martin) = (
        Refused::Login("flood".into()),
        Refused::Login("dr.martin".into()),
    );
    assert_eq!(fold_at(&flood, ip, t0), Some(0));
    for i in 1..=500 {
        assert_eq!(fold_at(&flood, ip, t0 + Duration::from_millis(i)), None);
    }
    assert_eq!(fold_at(&martin, ip, t0), Some(0), "per name");
    assert_eq!(
        fold_at(&Refused::AdminToken, ip, t0),
        Some(0),
        "per kind of refusal"
    );
    assert!(
        due_at(t0 + Duration::from_secs(5)).is_empty(),
        "not before its time"
    );
    // The burst's count is written when its quiet time ends, with no refusal after it.
    let due = due_at(t0 + QUIET);
    assert!(due.contains(&(flood.clone(), ip, 500)), "{due:?}");
    assert!(
        !due.iter().any(|(w, _, _)| *w == martin),
        "nothing folded: nothing due"
    );
    assert_eq!(
        fold_at(&flood, ip, t0 + QUIET + Duration::from_secs(1)),
        None
    );
    assert!(due_at(t0 + QUIET * 2).contains(&(flood, ip, 1)));
}

#[test]
fn a_listing_by_user_or_event_reads_its_index_not_the_whole_trail() {
    let dir = tempfile::tempdir().unwrap();
    let conn = crate::storage::sqlite::open(&dir.path().join("vigie.sqlite")).unwrap();
    let plan = |user: bool, event: bool| -> String {
        let q = Query {
            user: user.then(|| "dr.martin".into()),
            event: event.then(|| "login".into()),
            limit: 10,
        };
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            crate::storage::sqlite::audit::listing(&q)
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        let n = stmt.parameter_count();
        let args: Vec<rusqlite::types::Value> = (0..n).map(|_| "x".to_string().into()).collect();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    assert!(
        plan(true, false).contains("audit_user"),
        "{}",
        plan(true, false)
    );
    assert!(
        plan(false, true).contains("audit_event"),
        "{}",
        plan(false, true)
    );
    // Both: the index on both, not every row of the event.
    assert!(
        plan(true, true).contains("audit_user_event"),
        "{}",
        plan(true, true)
    );
}

#[test]
fn a_break_glass_record_waits_outside_the_queue() {
    break_glass(glass(7, "dr.glass"));
    let waiting = take_glass();
    assert!(waiting.iter().any(|b| b.user == "dr.glass"), "{waiting:?}");
}

#[test]
fn operational_alerts_that_name_their_event_join_the_trail_and_the_detector_s_lines_do_not() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::error!(target: "vigie::alert", severity = "high", event = "audit_store_down", kept = 3u64, "the audit store refused a write");
        tracing::warn!(target: "vigie::alert", id = "a1", rule = "VIGIE-EXF-003", "Sequential patient enumeration");
        tracing::info!(target: "vigie::audit", event = "login", user = "dr.martin");
        tracing::info!(target: "vigie::access", event = "request");
    });
    let seen = seen.lock().unwrap();
    let targets = [
        "vigie::alert",
        "vigie::alert",
        "vigie::audit",
        "vigie::access",
    ];
    let kept: Vec<bool> = seen
        .iter()
        .zip(targets)
        .map(|(e, t)| layer::kept(t, e))
        .collect();
    assert_eq!(kept, [true, false, true, false]);
}

/// A break-glass activation as the pipeline writes it: its chained entry names the record.
fn glass_entry(b: &BreakGlass) -> Entry {
    let mut e = entry(b.at_us, "break_glass", Some(&b.user));
    e.fields =
        json!({ "portal": b.portal, "session": b.session, "until": b.until, "record": b.id })
            .as_object()
            .unwrap()
            .clone();
    e
}

#[test]
fn a_break_glass_record_removed_edited_or_inserted_is_a_break() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    let store: Arc<dyn AuditRecords> = Arc::new(SqliteAudit::open(&path).unwrap());
    let keys = Arc::new(KeyRing::ephemeral());
    let mut w = Writer::new(store.clone(), keys.clone(), None);
    let (a, b) = (glass(10_000, "dr.martin"), glass(20_000, "dr.garde"));
    for g in [&a, &b] {
        w.take(Record::Entry(glass_entry(g)));
        w.take(Record::BreakGlass(g.clone()));
    }
    assert!(w.flush(Instant::now()));
    let check = || verify(store.as_ref(), &keys, &[], vec![]).unwrap();
    assert!(check().intact(), "{:?}", check().problems);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let why = |report: chain::Report| -> Vec<String> {
        report.problems.iter().map(|p| p.to_string()).collect()
    };
    conn.execute(
        "UPDATE break_glass SET until = until + 3600 WHERE id = ?1",
        [&a.id],
    )
    .unwrap();
    assert!(why(check())[0].contains("differs from its chained entry"));
    conn.execute(
        "UPDATE break_glass SET until = until - 3600 WHERE id = ?1",
        [&a.id],
    )
    .unwrap();
    // Moved a day earlier: not what its entry says either.
    let day = "UPDATE break_glass SET at_us = at_us + ?2 WHERE id = ?1";
    conn.execute(day, rusqlite::params![&a.id, -86_400_000_000i64])
        .unwrap();
    assert!(why(check())[0].contains("differs from its chained entry"));
    conn.execute(day, rusqlite::params![&a.id, 86_400_000_000i64])
        .unwrap();
    conn.execute("DELETE FROM break_glass WHERE id = ?1", [&b.id])
        .unwrap();
    let found = why(check());
    assert!(
        found.len() == 1 && found[0].contains("the record is not: it was removed"),
        "{found:?}"
    );
    // A record of someone else's, copied in under a new id: no entry vouches for it.
    conn.execute(
        "INSERT INTO break_glass SELECT 'ffff' || id, at_us, username, portal, session, until, reason FROM break_glass WHERE id = ?1",
        [&a.id],
    )
    .unwrap();
    assert!(why(check())
        .iter()
        .any(|w| w.contains("no chained entry vouches for it")));
}

#[test]
fn the_walk_moves_on_past_a_row_whose_link_was_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    let store: Arc<dyn AuditRecords> = Arc::new(SqliteAudit::open(&path).unwrap());
    let mut w = Writer::new(store.clone(), Arc::new(KeyRing::ephemeral()), None);
    for i in 0..4 {
        w.take(Record::Entry(entry(1_000 + i, "login", Some("dr.martin"))));
    }
    assert!(w.flush(Instant::now()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE audit SET mac = NULL WHERE seq = 4", [])
        .unwrap();
    conn.execute("UPDATE audit SET seq = NULL WHERE seq = 2", [])
        .unwrap();
    // One row per page: each row once, and the end is reached.
    let mut after = None;
    let mut seen = Vec::new();
    let mut ended = false;
    for _ in 0..10 {
        let page = store.page(after.as_ref(), 1).unwrap();
        let Some((cursor, e)) = page.into_iter().next() else {
            ended = true;
            break;
        };
        seen.push(e.id);
        after = Some(cursor);
    }
    assert!(ended, "the walk went round: {seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (4, 4), "{seen:?}");
}

#[test]
fn a_typed_name_is_kept_only_with_a_name_s_shape() {
    assert_eq!(typed_name("dr.martin"), "dr.martin");
    assert_eq!(typed_name("martin-demo secret Pa55!"), "-");
    assert_eq!(typed_name("a\u{1b}[2J"), "-");
    assert_eq!(typed_name(&"x".repeat(65)), "-");
    assert_eq!(typed_name(""), "-");
}
