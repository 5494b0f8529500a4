//! Signed-in sessions of the embedded backend kept in the SQLite file, so a restart (an
//! upgrade, a renewed certificate) does not sign every clinician out.
//!
//! This table only stores what it is given: rows keyed by the SHA-256 of the session id,
//! each an opaque sealed blob ([`crate::identity::persisted`] seals and opens them).

use std::path::Path;

use rusqlite::params;

pub struct SqliteSessions {
    db: super::sqlite::Db,
}

impl SqliteSessions {
    pub fn open(path: &Path) -> Result<Self, super::sqlite::OpenError> {
        super::sqlite::Db::open(path).map(|db| Self { db })
    }

    /// Every row: (hash, sealed).
    pub fn all(&self) -> Result<Vec<(String, Vec<u8>)>, rusqlite::Error> {
        let conn = self.db.conn();
        let mut stmt = conn.prepare("SELECT hash, sealed FROM sessions")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    pub fn put(&self, hash: &str, user: &str, sealed: &[u8]) -> Result<(), rusqlite::Error> {
        self.db.conn().execute(
            "INSERT OR REPLACE INTO sessions (hash, username, sealed) VALUES (?1, ?2, ?3)",
            params![hash, user, sealed],
        )?;
        Ok(())
    }

    /// Forget every session of `user` but the one named `except` ("" for none).
    pub fn delete_user(&self, user: &str, except: &str) -> Result<(), rusqlite::Error> {
        self.db.conn().execute(
            "DELETE FROM sessions WHERE username = ?1 AND hash != ?2",
            params![user, except],
        )?;
        Ok(())
    }

    /// Forget sessions, in one transaction (an ended session must not come back).
    pub fn delete<'a>(
        &self,
        hashes: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), rusqlite::Error> {
        let mut conn = self.db.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        for hash in hashes {
            tx.execute("DELETE FROM sessions WHERE hash = ?1", params![hash])?;
        }
        tx.commit()
    }
}
