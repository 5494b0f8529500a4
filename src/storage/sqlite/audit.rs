//! The audit trail in the SQLite file: the [`AuditRecords`] of a gateway on `records = "sqlite"`.

use std::path::Path;

use rusqlite::params;

use crate::audit::{AuditError, AuditRecords, Entry, Query, SealedBreakGlass};
use crate::storage::sqlite::Db;

/// A connection for the writer and one for the admin API's reads: a long read does not hold
/// the writer up (the file is in WAL mode, readers and the writer do not wait for each other).
pub struct SqliteAudit {
    writer: Db,
    reader: Db,
}

impl SqliteAudit {
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        Ok(Self {
            writer: Db::open(path)?,
            reader: Db::open(path)?,
        })
    }
}

/// The statement that lists `q`'s entries: its filters' values, then the limit.
pub fn listing(q: &Query) -> String {
    let (user, event) = (q.user.is_some(), q.event.is_some());
    format!(
        "SELECT id, at_us, level, event, username, fields FROM audit {}
         ORDER BY at_us DESC, id DESC LIMIT ?{}",
        crate::audit::filters(user, event, |i| format!("?{i}")),
        usize::from(user) + usize::from(event) + 1
    )
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AuditRecords for SqliteAudit {
    fn insert(&self, entries: &[Entry], glass: &[SealedBreakGlass]) -> Result<(), AuditError> {
        let mut conn = self.writer.conn();
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
        let conn = self.reader.conn();
        let given: Vec<&dyn rusqlite::ToSql> = [&q.user, &q.event]
            .into_iter()
            .filter(|v| v.is_some())
            .map(|v| v as &dyn rusqlite::ToSql)
            .collect();
        let n = limit(q.limit);
        let mut args = given.clone();
        args.push(&n);
        let mut stmt = conn.prepare_cached(&listing(q))?;
        let rows = stmt.query_map(args.as_slice(), |r| {
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
            out.push(Entry::from_row(row?)?);
        }
        Ok(out)
    }

    fn break_glass(
        &self,
        user: Option<&str>,
        n: usize,
    ) -> Result<Vec<SealedBreakGlass>, AuditError> {
        let conn = self.reader.conn();
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
        let mut conn = self.writer.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        let a = tx.execute("DELETE FROM audit WHERE at_us < ?1", [before_us])?;
        let b = tx.execute("DELETE FROM break_glass WHERE at_us < ?1", [before_us])?;
        tx.commit()?;
        Ok((a + b) as u64)
    }
}
