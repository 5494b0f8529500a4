//! Account locks in the SQLite file: the [`DurableLocks`] of a gateway on `records = "sqlite"`
//! (with Redis, each replica's copy of the locks Redis carries).

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::identity::locks::{unix_now_ms, DurableLocks, LockStore, LockedUsers};
use crate::identity::store::StoreError;

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Locks in the embedded SQLite file.
pub struct SqliteLocks {
    conn: Mutex<Connection>,
    held: Arc<LockedUsers>,
}

impl SqliteLocks {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = crate::storage::sqlite::open(path).map_err(db_err)?;
        let this = Self {
            conn: Mutex::new(conn),
            held: Arc::new(LockedUsers::default()),
        };
        this.held
            .replace(this.all()?.into_iter().map(|(u, _, _)| u).collect());
        Ok(this)
    }
}

impl DurableLocks for SqliteLocks {
    fn all(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let conn = self.conn.lock().expect("db lock");
        let mut stmt = conn
            .prepare("SELECT username, reason, locked_at FROM account_locks")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn learn(&self, user: &str, reason: &str) -> Result<(), StoreError> {
        self.write(user, reason, "INSERT OR IGNORE")
    }

    fn refresh(&self, user: &str) -> Result<(), StoreError> {
        self.conn
            .lock()
            .expect("db lock")
            .execute(
                "UPDATE account_locks SET locked_at = ?2 WHERE username = ?1",
                params![user, unix_now_ms()],
            )
            .map(drop)
            .map_err(db_err)
    }

    fn forget(&self, user: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .lock()
            .expect("db lock")
            .execute(
                "DELETE FROM account_locks WHERE username = ?1",
                params![user],
            )
            .map_err(db_err)?;
        self.held.set(user, false);
        Ok(n > 0)
    }
}

impl SqliteLocks {
    /// The durable write first: a session store admitting this user checks `held` after it.
    fn write(&self, user: &str, reason: &str, insert: &str) -> Result<(), StoreError> {
        self.conn
            .lock()
            .expect("db lock")
            .execute(
                &format!(
                    "{insert} INTO account_locks (username, reason, locked_at) VALUES (?1, ?2, ?3)"
                ),
                params![user, reason, unix_now_ms()],
            )
            .map_err(db_err)?;
        self.held.set(user, true);
        Ok(())
    }
}

#[async_trait]
impl LockStore for SqliteLocks {
    async fn lock(&self, user: &str, reason: &str) -> Result<(), StoreError> {
        self.write(user, reason, "INSERT OR REPLACE")
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        self.forget(user)
    }

    async fn locked(&self, user: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .lock()
            .expect("db lock")
            .query_row(
                "SELECT reason FROM account_locks WHERE username = ?1",
                params![user],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
    }

    fn held(&self) -> &Arc<LockedUsers> {
        &self.held
    }
}

#[cfg(test)]
mod tests;
