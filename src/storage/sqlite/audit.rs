//! The audit trail in the SQLite file: the [`AuditRecords`] of a gateway on `records = "sqlite"`.

use std::path::Path;

use rusqlite::params;

use crate::audit::{AuditError, AuditRecords, Entry, Query, SealedBreakGlass};
use crate::storage::sqlite::Db;

pub struct SqliteAudit(Db);

impl SqliteAudit {
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        Ok(Self(Db::open(path)?))
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AuditRecords for SqliteAudit {
    fn insert(&self, entries: &[Entry], glass: &[SealedBreakGlass]) -> Result<(), AuditError> {
        let mut conn = self.0.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        {
            let mut add = tx.prepare_cached(
                "INSERT OR IGNORE INTO audit (id, at_us, level, event, username, fields)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in entries {
                let fields = serde_json::to_string(&e.fields)?;
                add.execute(params![e.id, e.at_us, e.level, e.event, e.user, fields])?;
            }
            let mut add = tx.prepare_cached(
                "INSERT OR IGNORE INTO break_glass (id, at_us, username, portal, session, until, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for b in glass {
                add.execute(params![
                    b.id, b.at_us, b.user, b.portal, b.session, b.until, b.reason
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn recent(&self, q: &Query) -> Result<Vec<Entry>, AuditError> {
        let conn = self.0.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, at_us, level, event, username, fields FROM audit
             WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR event = ?2)
             ORDER BY at_us DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![q.user, q.event, limit(q.limit)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at_us, level, event, user, fields) = row?;
            out.push(Entry {
                id,
                at_us,
                level,
                event,
                user,
                fields: serde_json::from_str(&fields)?,
            });
        }
        Ok(out)
    }

    fn break_glass(
        &self,
        user: Option<&str>,
        n: usize,
    ) -> Result<Vec<SealedBreakGlass>, AuditError> {
        let conn = self.0.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, at_us, username, portal, session, until, reason FROM break_glass
             WHERE (?1 IS NULL OR username = ?1) ORDER BY at_us DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![user, limit(n)], |r| {
            Ok(SealedBreakGlass {
                id: r.get(0)?,
                at_us: r.get(1)?,
                user: r.get(2)?,
                portal: r.get(3)?,
                session: r.get(4)?,
                until: r.get(5)?,
                reason: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn prune(&self, before_us: i64) -> Result<u64, AuditError> {
        let mut conn = self.0.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        let a = tx.execute("DELETE FROM audit WHERE at_us < ?1", [before_us])?;
        let b = tx.execute("DELETE FROM break_glass WHERE at_us < ?1", [before_us])?;
        tx.commit()?;
        Ok((a + b) as u64)
    }
}
