use super::*;

fn hold(since_us: i64, until_us: i64) -> Hold {
    Hold {
        since_us,
        until_us,
        alert_id: "VIGIE-EXF-1".into(),
        rule: "distinct patients".into(),
        score: 91,
    }
}

#[test]
fn a_hold_outlives_the_connection_until_released_or_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    let store = SqliteHolds::open(&path).unwrap();
    store.put("ehr", "dr.martin", &hold(10, 1_000)).unwrap();
    store.put("ehr", "nurse.ana", &hold(10, 50)).unwrap();
    store.put("lab", "dr.martin", &hold(10, 1_000)).unwrap();
    drop(store);

    let again = SqliteHolds::open(&path).unwrap();
    let mut running = again.running(100).unwrap();
    running.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        running,
        vec![
            ("ehr".into(), "dr.martin".into(), hold(10, 1_000)),
            ("lab".into(), "dr.martin".into(), hold(10, 1_000)),
        ],
        "the expired hold is gone, the others are whole"
    );
    again.release("ehr", "dr.martin").unwrap();
    let running = again.running(100).unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].0, "lab", "a release is per portal");
}
