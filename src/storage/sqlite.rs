//! The embedded backend: one SQLite file, opened one way, with one versioned schema.
//!
//! Every store (users, factors, locks, holds, alerts, the shared-state ledger, embedded
//! sessions) opens its connection here, so they all get the same pragmas, busy timeout and
//! file mode, and the schema is migrated once, in order, under SQLite's write lock (two
//! gateways starting on one file do not race). `PRAGMA user_version` records how far a file
//! has come. The first migration is today's tables as they always were (`IF NOT EXISTS`), so
//! a `vigie.sqlite` written before versioning upgrades in place.

use std::path::Path;
use std::time::Duration;

pub mod alerts;
pub mod audit;
pub mod factors;
pub mod locks;

use rusqlite::Connection;

/// How long a writer waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        version: u32,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "the database is at schema version {found}, newer than this Vigie knows ({known}): \
         run the newer Vigie, or restore a backup made before the upgrade"
    )]
    TooNew { found: u32, known: u32 },
}

/// One schema change: applied once, in order, in one transaction.
struct Migration {
    name: &'static str,
    sql: &'static str,
}

/// The schema, in order. Append only: a released migration never changes.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "the tables before versioning",
        sql: "CREATE TABLE IF NOT EXISTS users (
                  username TEXT PRIMARY KEY,
                  password_hash TEXT NOT NULL,
                  groups TEXT NOT NULL DEFAULT '',
                  disabled INTEGER NOT NULL DEFAULT 0,
                  created INTEGER NOT NULL,
                  updated INTEGER NOT NULL
              );
              CREATE TABLE IF NOT EXISTS account_locks (username TEXT PRIMARY KEY, reason TEXT NOT NULL, locked_at INTEGER NOT NULL);
              CREATE TABLE IF NOT EXISTS factors (username TEXT PRIMARY KEY, sealed BLOB NOT NULL, version INTEGER NOT NULL DEFAULT 0);
              CREATE TABLE IF NOT EXISTS totp_steps (username TEXT PRIMARY KEY, step INTEGER NOT NULL);
              CREATE TABLE IF NOT EXISTS recovery_codes (username TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (username, digest));
              CREATE TABLE IF NOT EXISTS factor_failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at INTEGER NOT NULL);
              CREATE TABLE IF NOT EXISTS invitations (username TEXT PRIMARY KEY, digest TEXT NOT NULL, expires INTEGER NOT NULL);
              CREATE TABLE IF NOT EXISTS webauthn_challenges (key TEXT PRIMARY KEY, state BLOB NOT NULL, expires INTEGER NOT NULL);
              CREATE TABLE IF NOT EXISTS shared_state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
              CREATE TABLE IF NOT EXISTS enrolled_users (username TEXT PRIMARY KEY);
              CREATE TABLE IF NOT EXISTS alerts (
                  id TEXT PRIMARY KEY,
                  at_us INTEGER NOT NULL,
                  rule_id TEXT NOT NULL,
                  severity TEXT NOT NULL,
                  risk_score INTEGER NOT NULL,
                  user TEXT NOT NULL,
                  dedup_key TEXT NOT NULL,
                  status TEXT NOT NULL DEFAULT 'open',
                  ecs TEXT NOT NULL
              );
              CREATE INDEX IF NOT EXISTS alerts_at ON alerts (at_us);",
    },
    Migration {
        name: "holds survive a restart",
        sql: "CREATE TABLE holds (
                  portal TEXT NOT NULL,
                  username TEXT NOT NULL,
                  since_us INTEGER NOT NULL,
                  until_us INTEGER NOT NULL,
                  alert_id TEXT NOT NULL,
                  rule TEXT NOT NULL,
                  score INTEGER NOT NULL,
                  PRIMARY KEY (portal, username)
              );",
    },
    Migration {
        name: "signed-in sessions survive a restart",
        // Keyed by the SHA-256 of the session id; the record (with the id, the vault and
        // any break-glass reason) sealed, so a copy of the file opens no session.
        sql: "CREATE TABLE sessions (
                  hash TEXT PRIMARY KEY,
                  username TEXT NOT NULL,
                  sealed BLOB NOT NULL
              );",
    },
    Migration {
        name: "the audit trail and break-glass records",
        // A break-glass reason sealed with the key ring, bound to its record and user.
        sql: "CREATE TABLE audit (
                  id TEXT PRIMARY KEY,
                  at_us INTEGER NOT NULL,
                  level TEXT NOT NULL,
                  event TEXT NOT NULL,
                  username TEXT,
                  fields TEXT NOT NULL
              );
              CREATE INDEX audit_at ON audit (at_us);
              CREATE INDEX audit_user ON audit (username, at_us);
              CREATE TABLE break_glass (
                  id TEXT PRIMARY KEY,
                  at_us INTEGER NOT NULL,
                  username TEXT NOT NULL,
                  portal TEXT NOT NULL,
                  session TEXT NOT NULL,
                  until INTEGER NOT NULL,
                  reason BLOB NOT NULL
              );
              CREATE INDEX break_glass_at ON break_glass (at_us);",
    },
    Migration {
        name: "the audit trail listed by event",
        sql: "CREATE INDEX audit_event ON audit (event, at_us);
              CREATE INDEX audit_user_event ON audit (username, event, at_us);",
    },
    Migration {
        name: "the audit trail chained, checkpointed and anchored",
        // Entries written before have no chain; `vigie audit verify` counts them apart.
        sql: "ALTER TABLE audit ADD COLUMN chain TEXT;
              ALTER TABLE audit ADD COLUMN seq INTEGER;
              ALTER TABLE audit ADD COLUMN mac TEXT;
              CREATE INDEX audit_chain ON audit (chain, seq);
              CREATE TABLE audit_checkpoints (
                  chain TEXT NOT NULL,
                  seq INTEGER NOT NULL,
                  mac TEXT NOT NULL,
                  at_us INTEGER NOT NULL,
                  signer TEXT NOT NULL,
                  signature TEXT NOT NULL,
                  PRIMARY KEY (chain, seq)
              );
              CREATE TABLE audit_anchors (
                  chain TEXT PRIMARY KEY,
                  seq INTEGER NOT NULL,
                  mac TEXT NOT NULL,
                  tag TEXT NOT NULL
              );",
    },
    Migration {
        name: "alerts triaged: statuses, resolution, assignee, every change recorded",
        sql: "ALTER TABLE alerts ADD COLUMN portal TEXT NOT NULL DEFAULT '';
              ALTER TABLE alerts ADD COLUMN resolution TEXT;
              ALTER TABLE alerts ADD COLUMN assignee TEXT;
              ALTER TABLE alerts ADD COLUMN updated_us INTEGER;
              UPDATE alerts SET status = 'new' WHERE status = 'open';
              UPDATE alerts SET status = 'closed' WHERE status = 'resolved';
              UPDATE alerts SET portal = COALESCE(json_extract(ecs, '$.service.name'), '');
              CREATE INDEX alerts_status ON alerts (status, at_us);
              CREATE INDEX alerts_user ON alerts (user, at_us);
              CREATE TABLE alert_events (
                  alert_id TEXT NOT NULL,
                  at_us INTEGER NOT NULL,
                  analyst TEXT NOT NULL,
                  kind TEXT NOT NULL,
                  before TEXT,
                  after TEXT,
                  note BLOB
              );
              CREATE INDEX alert_events_alert ON alert_events (alert_id, at_us);",
    },
    Migration {
        name: "alerts keep their context: the timeline, the patients sealed",
        sql: "ALTER TABLE alerts ADD COLUMN timeline TEXT;
              ALTER TABLE alerts ADD COLUMN patients BLOB;",
    },
    Migration {
        name: "per-person API tokens",
        // A keyed digest of the secret only (see storage::tokens).
        sql: "CREATE TABLE api_tokens (
                  id TEXT PRIMARY KEY,
                  name TEXT NOT NULL,
                  role TEXT NOT NULL,
                  digest TEXT NOT NULL,
                  created INTEGER NOT NULL,
                  expires INTEGER NOT NULL,
                  revoked INTEGER NOT NULL DEFAULT 0
              );",
    },
    Migration {
        name: "alerts name their workstation (other alerts from the same source)",
        sql: "ALTER TABLE alerts ADD COLUMN source TEXT NOT NULL DEFAULT '';
              UPDATE alerts SET source = COALESCE(json_extract(ecs, '$.source.ip'), '');
              CREATE INDEX alerts_source ON alerts (source, at_us);",
    },
];

/// A value of the file's `shared_state` table (markers the gateway keeps for itself).
pub fn state_value(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT value FROM shared_state WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
}

/// A transaction that may write: it takes the file's write lock at its start, waiting for it
/// (busy timeout). A deferred one that reads first fails at once (SQLITE_BUSY) when another
/// connection wrote meanwhile, and every store (and the audit writer) has its own connection.
pub fn write_tx(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// A store's one connection to the file, shared by its callers.
pub struct Db(std::sync::Mutex<Connection>);

impl Db {
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Ok(Self(std::sync::Mutex::new(open(path)?)))
    }

    /// The connection; a panic while another caller held it leaves SQLite consistent, so
    /// serving goes on.
    pub fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The schema version this build writes.
pub fn schema_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// A connection to the file at `path`, created readable by its owner only, with the schema
/// brought up to date.
pub fn open(path: &Path) -> Result<Connection, OpenError> {
    if path != Path::new(":memory:") {
        create_private(path)?;
        for file in [
            path.to_path_buf(),
            with_suffix(path, "-wal"),
            with_suffix(path, "-shm"),
        ] {
            owner_only(&file);
        }
    }
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never wait for the writer. FULL: a lock, hold or factor written is on disk
    // when the call returns (these are security records, not a cache).
    when_not_busy(|| conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"))?;
    let (from, to) = migrate(&mut conn)?;
    if from != to {
        tracing::info!(database = %path.display(), from, to, "database schema brought up to date");
    }
    Ok(conn)
}

/// Run `f` again while SQLite answers "busy", up to [`BUSY_TIMEOUT`]. Switching a new file
/// to WAL takes an exclusive lock, and SQLite refuses a connection racing another for it at
/// once, without its busy handler (two gateways starting on one new file saw it).
fn when_not_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Bring the file at `path` up to date (what every start does): the version it was at, and
/// the names of the migrations applied.
pub fn migrate_file(path: &Path) -> Result<(u32, Vec<&'static str>), OpenError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let (from, to) = migrate(&mut conn)?;
    let applied = MIGRATIONS[from as usize..to as usize]
        .iter()
        .map(|m| m.name)
        .collect();
    Ok((from, applied))
}

/// The file, made 0600 before SQLite opens it (SQLite gives its WAL files the same mode).
/// Only a new file is opened here: closing a descriptor of a file this process has open in
/// SQLite drops the process's POSIX locks on it, and another process (an IT command, a
/// backup) would then take the database for unused and delete its WAL under the gateway,
/// which loses every later write at the next start.
fn create_private(path: &Path) -> Result<(), OpenError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(OpenError::Create {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    name.into()
}

/// A file others could read (made before Vigie created its files 0600, or copied in) is made
/// the owner's only, and said: it holds password hashes, sealed sessions and locks.
pub fn owner_only(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Only a file: a directory named as the database must not lose its modes.
        let Some(meta) = std::fs::metadata(path).ok().filter(|m| m.is_file()) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {
                    tracing::warn!(file = %path.display(), was = format!("{mode:o}"), "readable by others: made 0600")
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "readable by others, and its mode cannot be changed: make it 0600")
                }
            }
        }
    }
}

/// Apply what the file lacks, under the write lock, each migration with its version; the
/// versions before and after.
fn migrate(conn: &mut Connection) -> Result<(u32, u32), OpenError> {
    let known = schema_version();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == known {
        return Ok((known, known));
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Read again under the lock: another process may have migrated meanwhile.
    let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > known {
        return Err(OpenError::TooNew {
            found: version,
            known,
        });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let v = i as u32 + 1;
        tx.execute_batch(m.sql)
            .and_then(|()| tx.execute_batch(&format!("PRAGMA user_version = {v}")))
            .map_err(|source| OpenError::Migration {
                version: v,
                name: m.name,
                source,
            })?;
    }
    tx.commit()?;
    Ok((version, known))
}

#[cfg(test)]
mod tests;
