//! Holds (identities suspended for the SOC) kept on disk, so a restart does not release them.
//!
//! The detector keeps its holds in memory and writes each change here; at start it reads
//! back those still running. With replicas, Redis carries the holds instead (it must persist
//! its data: see [`super::shared_state`]). The SQLite file here, or PostgreSQL
//! ([`super::postgres::holds`]).

use std::path::Path;

use rusqlite::params;

use crate::detect::Hold;
use crate::identity::store::StoreError;

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Where holds are kept across restarts.
pub trait HoldStore: Send + Sync {
    /// The holds still running at `now_us`: (portal, user, hold).
    fn running(&self, now_us: i64) -> Result<Vec<(String, String, Hold)>, StoreError>;
    fn put(&self, portal: &str, user: &str, hold: &Hold) -> Result<(), StoreError>;
    fn release(&self, portal: &str, user: &str) -> Result<(), StoreError>;
}

/// Holds in the embedded SQLite file.
pub struct SqliteHolds {
    db: super::sqlite::Db,
}

impl SqliteHolds {
    pub fn open(path: &Path) -> Result<Self, super::sqlite::OpenError> {
        super::sqlite::Db::open(path).map(|db| Self { db })
    }
}

impl HoldStore for SqliteHolds {
    fn running(&self, now_us: i64) -> Result<Vec<(String, String, Hold)>, StoreError> {
        let conn = self.db.conn();
        // Expired holds are dropped on the way: nobody reads them again.
        conn.execute("DELETE FROM holds WHERE until_us <= ?1", params![now_us])
            .map_err(db_err)?;
        let mut stmt = conn
            .prepare(
                "SELECT portal, username, since_us, until_us, alert_id, rule, score FROM holds",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    Hold {
                        since_us: r.get(2)?,
                        until_us: r.get(3)?,
                        alert_id: r.get(4)?,
                        rule: r.get(5)?,
                        score: r.get(6)?,
                    },
                ))
            })
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    fn put(&self, portal: &str, user: &str, hold: &Hold) -> Result<(), StoreError> {
        self.db.conn().execute(
            "INSERT OR REPLACE INTO holds (portal, username, since_us, until_us, alert_id, rule, score)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                portal,
                user,
                hold.since_us,
                hold.until_us,
                hold.alert_id,
                hold.rule,
                hold.score
            ],
        )
        .map_err(db_err)?;
        Ok(())
    }

    fn release(&self, portal: &str, user: &str) -> Result<(), StoreError> {
        self.db
            .conn()
            .execute(
                "DELETE FROM holds WHERE portal = ?1 AND username = ?2",
                params![portal, user],
            )
            .map_err(db_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
