//! This replica's durable note, in its SQLite file: the last generation and epoch of Redis's
//! data it saw, and who has enrolled a factor (with the users noted here and not yet told
//! to Redis, so every replica's file learns them).

use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::identity::store::StoreError;

pub struct Ledger {
    conn: Mutex<Connection>,
    /// Enrolled users noted here since the last push to Redis.
    pending: Mutex<Vec<String>>,
    /// Until when (unix seconds) every enrollment needs an invitation: after a loss, until
    /// every replica has told Redis the users its file knows as enrolled.
    quarantine_until: std::sync::atomic::AtomicU64,
}

/// How long enrollments need an invitation after a loss: several checks of every replica.
pub const ENROLL_QUARANTINE_SECS: u64 = 10;

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Ledger {
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let conn = crate::storage::sqlite::open(path).map_err(db_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            pending: Mutex::new(Vec::new()),
            quarantine_until: Default::default(),
        })
    }

    /// (generation, epoch); (0, "") before the first check.
    pub fn mark(&self) -> Result<(i64, String), StoreError> {
        let conn = self.conn.lock().expect("ledger");
        let read = |name: &str| {
            conn.query_row(
                "SELECT value FROM shared_state WHERE name = ?1",
                params![name],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(db_err)
        };
        let generation = read("generation")?
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        Ok((generation, read("epoch")?.unwrap_or_default()))
    }

    pub fn set_mark(&self, generation: i64, epoch: &str) -> Result<(), StoreError> {
        let conn = self.conn.lock().expect("ledger");
        for (name, value) in [
            ("generation", generation.to_string()),
            ("epoch", epoch.into()),
        ] {
            conn.execute(
                "INSERT INTO shared_state (name, value) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map_err(db_err)?;
        }
        Ok(())
    }

    /// Remember that a user has enrolled a factor: should the factors vanish with Redis, a
    /// new one then needs an invitation, as a reset does. Told to Redis at the next check.
    pub fn mark_enrolled(&self, user: &str) -> Result<(), StoreError> {
        if self.add_enrolled(&[user.to_string()])? > 0 {
            self.pending.lock().expect("pending").push(user.to_string());
        }
        Ok(())
    }

    /// Note users as enrolled (learnt from Redis); how many were new here.
    pub fn add_enrolled(&self, users: &[String]) -> Result<usize, StoreError> {
        let mut conn = self.conn.lock().expect("ledger");
        let tx = crate::storage::sqlite::write_tx(&mut conn).map_err(db_err)?;
        let mut added = 0;
        for user in users {
            added += tx
                .execute(
                    "INSERT OR IGNORE INTO enrolled_users (username) VALUES (?1)",
                    params![user],
                )
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(added)
    }

    /// A loss was re-established (here or elsewhere) at `now`.
    pub fn quarantine(&self, now: u64) {
        self.quarantine_until.store(
            now + ENROLL_QUARANTINE_SECS,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Whether `user` may have had a factor: noted here, or every user for a while after a
    /// loss (another replica's file may not have told Redis yet).
    pub fn may_have_enrolled(&self, user: &str, now: u64) -> Result<bool, StoreError> {
        let quarantined = now
            < self
                .quarantine_until
                .load(std::sync::atomic::Ordering::Relaxed);
        Ok(quarantined || self.was_enrolled(user)?)
    }

    pub fn was_enrolled(&self, user: &str) -> Result<bool, StoreError> {
        self.conn
            .lock()
            .expect("ledger")
            .query_row(
                "SELECT 1 FROM enrolled_users WHERE username = ?1",
                params![user],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(db_err)
    }

    pub fn enrolled_count(&self) -> Result<usize, StoreError> {
        self.conn
            .lock()
            .expect("ledger")
            .query_row("SELECT COUNT(*) FROM enrolled_users", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(db_err)
    }

    pub fn all_enrolled(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn.lock().expect("ledger");
        let mut stmt = conn
            .prepare("SELECT username FROM enrolled_users")
            .map_err(db_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// The users noted since the last call (given back with [`Self::requeue`] if they could
    /// not be told).
    pub fn take_pending(&self) -> Vec<String> {
        std::mem::take(&mut *self.pending.lock().expect("pending"))
    }

    pub fn requeue(&self, users: Vec<String>) {
        self.pending.lock().expect("pending").extend(users);
    }
}
