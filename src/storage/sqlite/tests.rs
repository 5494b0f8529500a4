use super::*;

/// A file as Vigie wrote it before the schema was versioned (users and locks, each store
/// creating its own table).
fn file_before_versioning(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE IF NOT EXISTS users (
             username TEXT PRIMARY KEY,
             password_hash TEXT NOT NULL,
             groups TEXT NOT NULL DEFAULT '',
             disabled INTEGER NOT NULL DEFAULT 0,
             created INTEGER NOT NULL,
             updated INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS account_locks (username TEXT PRIMARY KEY, reason TEXT NOT NULL, locked_at INTEGER NOT NULL);
         INSERT INTO users VALUES ('dr.martin', '$argon2id$x', 'cardio', 0, 1, 1);
         INSERT INTO account_locks VALUES ('dr.martin', 'admin', 5);",
    )
    .unwrap();
}

#[test]
fn a_file_from_before_versioning_upgrades_in_place_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    file_before_versioning(&path);
    let conn = open(&path).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema_version());
    let (groups, lock): (String, String) = conn
        .query_row(
            "SELECT groups, reason FROM users JOIN account_locks USING (username)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((groups.as_str(), lock.as_str()), ("cardio", "admin"));
    // The tables the old file lacked are there now.
    for table in ["factors", "alerts", "holds", "shared_state"] {
        let n: u32 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{table}");
    }
}

#[test]
fn a_file_from_a_newer_vigie_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA user_version = {}", schema_version() + 1))
        .unwrap();
    drop(conn);
    let e = open(&path).unwrap_err();
    assert!(matches!(e, OpenError::TooNew { .. }), "{e:?}");
    assert!(e.to_string().contains("newer Vigie"), "{e}");
}

#[test]
fn a_failed_migration_names_itself_and_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    // A file at version 1 that already has a `holds` table: migration 2 cannot create it.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE holds (x); PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let e = open(&path).unwrap_err();
    assert!(
        matches!(e, OpenError::Migration { version: 2, .. }),
        "{e:?}"
    );
    let conn = Connection::open(&path).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1, "rolled back");
}

#[test]
fn gateways_opening_one_new_file_at_once_all_get_the_whole_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    let opened: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || open(&path).map(drop))
        })
        .collect();
    for t in opened {
        t.join().unwrap().unwrap();
    }
    let conn = open(&path).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema_version());
}

#[cfg(unix)]
#[test]
fn the_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[cfg(unix)]
#[test]
fn a_file_others_could_read_is_made_the_owner_s_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    file_before_versioning(&path);
    let wal = with_suffix(&path, "-wal");
    std::fs::write(&wal, b"").unwrap();
    for file in [&path, &wal] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let _open = open(&path).unwrap();
    for file in [&path, &wal] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
}
