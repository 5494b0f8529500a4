//! Second factors in the SQLite file (the same file as users and locks): the
//! [`FactorStore`] of a gateway on `records = "sqlite"` without Redis.

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::factors::store::{new_version, FactorStore, Invitation};
use crate::identity::store::StoreError;

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Factors in the embedded SQLite file.
pub struct SqliteFactors {
    conn: Mutex<Connection>,
}

impl SqliteFactors {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = crate::storage::sqlite::open(path).map_err(db_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(db_err)?;
        f(&mut conn).map_err(db_err)
    }
}

#[async_trait]
impl FactorStore for SqliteFactors {
    async fn load(&self, user: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT sealed, version FROM factors WHERE username = ?1",
                [user],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
        })
    }

    async fn save(&self, user: &str, sealed: Vec<u8>, version: u64) -> Result<bool, StoreError> {
        // A random next version: a record deleted and made again never reuses an old one.
        let next = new_version();
        self.with(|c| {
            let n = if version == 0 {
                c.execute(
                    "INSERT INTO factors (username, sealed, version) VALUES (?1, ?2, ?3)
                     ON CONFLICT (username) DO NOTHING",
                    params![user, sealed, next as i64],
                )?
            } else {
                c.execute(
                    "UPDATE factors SET sealed = ?2, version = ?3 WHERE username = ?1 AND version = ?4",
                    params![user, sealed, next as i64, version as i64],
                )?
            };
            Ok(n == 1)
        })
    }

    async fn delete_user(&self, user: &str) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = crate::storage::sqlite::write_tx(c)?;
            for table in ["factors", "recovery_codes"] {
                tx.execute(&format!("DELETE FROM {table} WHERE username = ?1"), [user])?;
            }
            tx.commit()
        })
    }

    async fn claim_totp_step(
        &self,
        user: &str,
        step: u64,
        or_same: bool,
    ) -> Result<bool, StoreError> {
        // One statement: the row is written only when the step is newer.
        self.with(|c| {
            c.execute(
                "INSERT INTO totp_steps (username, step) VALUES (?1, ?2)
                 ON CONFLICT (username) DO UPDATE SET step = excluded.step
                 WHERE excluded.step > totp_steps.step OR (?3 AND excluded.step = totp_steps.step)",
                params![user, step as i64, or_same],
            )
            .map(|n| n == 1)
        })
    }

    async fn set_recovery_codes(&self, user: &str, digests: &[String]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = crate::storage::sqlite::write_tx(c)?;
            tx.execute("DELETE FROM recovery_codes WHERE username = ?1", [user])?;
            for d in digests {
                tx.execute(
                    "INSERT OR IGNORE INTO recovery_codes (username, digest) VALUES (?1, ?2)",
                    params![user, d],
                )?;
            }
            tx.commit()
        })
    }

    async fn use_recovery_code(
        &self,
        user: &str,
        candidates: &[String],
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            for d in candidates {
                let n = c.execute(
                    "DELETE FROM recovery_codes WHERE username = ?1 AND digest = ?2",
                    params![user, d],
                )?;
                if n == 1 {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    async fn recovery_codes_left(&self, user: &str) -> Result<usize, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM recovery_codes WHERE username = ?1",
                [user],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
        })
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: u64,
        forget_after: Option<u64>,
    ) -> Result<(u32, u64), StoreError> {
        self.with(|c| {
            let tx = crate::storage::sqlite::write_tx(c)?;
            let row: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT count, last_at FROM factor_failures WHERE key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (mut count, last) = row.map_or((0, 0), |(c, l)| (c as u32, l as u64));
            if forget_after.is_some_and(|f| last + f < now) {
                count = 0;
            }
            tx.execute(
                "INSERT OR REPLACE INTO factor_failures (key, count, last_at) VALUES (?1, ?2, ?3)",
                params![key, i64::from(count) + 1, now as i64],
            )?;
            tx.commit()?;
            Ok((count, last))
        })
    }

    async fn release_attempt(&self, key: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE factor_failures SET count = MAX(count - 1, 0) WHERE key = ?1",
                [key],
            )
            .map(|_| ())
        })
    }

    async fn failures(&self, key: &str) -> Result<(u32, u64), StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT count, last_at FROM factor_failures WHERE key = ?1",
                [key],
                |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .map(|o| o.unwrap_or((0, 0)))
        })
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM factor_failures WHERE key = ?1", [key])
                .map(|_| ())
        })
    }

    async fn put_invitation(&self, user: &str, inv: Invitation) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO invitations (username, digest, expires) VALUES (?1, ?2, ?3)",
                params![user, inv.digest, inv.expires as i64],
            )
            .map(|_| ())
        })
    }

    async fn take_invitation(
        &self,
        user: &str,
        candidates: &[String],
        now: u64,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            for d in candidates {
                let n = c.execute(
                    "DELETE FROM invitations WHERE username = ?1 AND digest = ?2 AND expires > ?3",
                    params![user, d, now as i64],
                )?;
                if n == 1 {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    async fn put_challenge(
        &self,
        key: &str,
        state: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM webauthn_challenges WHERE expires < strftime('%s','now') - 3600",
                [],
            )?;
            c.execute(
                "INSERT OR REPLACE INTO webauthn_challenges (key, state, expires) VALUES (?1, ?2, ?3)",
                params![key, state, expires as i64],
            )
            .map(|_| ())
        })
    }

    async fn take_challenge(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            let row: Option<(Vec<u8>, i64)> = c
                .query_row(
                    "DELETE FROM webauthn_challenges WHERE key = ?1 RETURNING state, expires",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(row.and_then(|(s, exp)| (exp as u64 > now).then_some(s)))
        })
    }
}
