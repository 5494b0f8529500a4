//! Account locks: a locked user cannot start a session, and locking ends the sessions they
//! have on every replica. Locks are durable: SQLite in the embedded backend, Redis when
//! replicas share state.

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::store::StoreError;

#[async_trait]
pub trait LockStore: Send + Sync {
    async fn lock(&self, user: &str, reason: &str) -> Result<(), StoreError>;
    /// Whether a lock was lifted.
    async fn unlock(&self, user: &str) -> Result<bool, StoreError>;
    /// The lock's reason, if the user is locked.
    async fn locked(&self, user: &str) -> Result<Option<String>, StoreError>;
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Locks in the embedded SQLite file.
pub struct SqliteLocks {
    conn: Mutex<Connection>,
}

impl SqliteLocks {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS account_locks (username TEXT PRIMARY KEY, reason TEXT NOT NULL, locked_at INTEGER NOT NULL);",
        )
        .map_err(db_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }
}

#[async_trait]
impl LockStore for SqliteLocks {
    async fn lock(&self, user: &str, reason: &str) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.conn
            .lock()
            .expect("db lock")
            .execute("INSERT OR REPLACE INTO account_locks (username, reason, locked_at) VALUES (?1, ?2, ?3)", params![user, reason, now])
            .map_err(db_err)?;
        Ok(())
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .lock()
            .expect("db lock")
            .execute(
                "DELETE FROM account_locks WHERE username = ?1",
                params![user],
            )
            .map_err(db_err)?;
        Ok(n > 0)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn locks_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sqlite");
        SqliteLocks::open(&path)
            .unwrap()
            .lock("alice", "lost badge")
            .await
            .unwrap();
        let again = SqliteLocks::open(&path).unwrap();
        assert_eq!(
            again.locked("alice").await.unwrap().as_deref(),
            Some("lost badge")
        );
        assert_eq!(again.locked("bob").await.unwrap(), None);
        assert!(again.unlock("alice").await.unwrap());
        assert!(!again.unlock("alice").await.unwrap());
    }
}
