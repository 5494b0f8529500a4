//! The audit trail in the SQLite file: the [`AuditRecords`] of a gateway on `records = "sqlite"`.

use std::path::Path;

use rusqlite::params;

use crate::audit::chain::{Anchor, Checkpoint, Link};
use crate::audit::{
    AuditError, AuditRecords, Cursor, Entry, Page, Query, Row, SealedBreakGlass, COLUMNS,
};
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
        "SELECT {COLUMNS} FROM audit {}
         ORDER BY at_us DESC, id DESC LIMIT ?{}",
        crate::audit::filters(user, event, |i| format!("?{i}")),
        usize::from(user) + usize::from(event) + 1
    )
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A text column read whatever type an edit gave it (a value cast to a BLOB keeps its
/// bytes): one retyped row must not stop the review, nor `vigie audit verify` (the MAC judges
/// the content).
fn text(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let need = |i: usize| text(r, i).map(Option::unwrap_or_default);
    Ok((
        need(0)?,
        r.get(1)?,
        need(2)?,
        need(3)?,
        text(r, 4)?,
        need(5)?,
        text(r, 6)?,
        r.get(7)?,
        text(r, 8)?,
    ))
}

fn entries(rows: impl Iterator<Item = rusqlite::Result<Row>>) -> Result<Vec<Entry>, AuditError> {
    let mut out = Vec::new();
    for r in rows {
        out.push(Entry::from_row(r?)?);
    }
    Ok(out)
}

impl AuditRecords for SqliteAudit {
    fn insert(&self, entries: &[Entry], glass: &[SealedBreakGlass]) -> Result<(), AuditError> {
        let mut conn = self.writer.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        {
            let mut add = tx.prepare_cached(
                "INSERT OR IGNORE INTO audit (id, at_us, level, event, username, fields, chain, seq, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for e in entries {
                let fields = serde_json::to_string(&e.fields)?;
                let l = e.link.as_ref();
                add.execute(params![
                    e.id,
                    e.at_us,
                    e.level,
                    e.event,
                    e.user,
                    fields,
                    l.map(|l| &l.chain),
                    l.map(|l| l.seq),
                    l.map(|l| &l.mac)
                ])?;
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
        let rows = stmt.query_map(args.as_slice(), row)?;
        entries(rows)
    }

    fn page(&self, after: Option<&Cursor>, n: usize) -> Result<Page, AuditError> {
        let conn = self.reader.conn();
        let (chain, seq, id) = after.cloned().unwrap_or((String::new(), -1, String::new()));
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit
             WHERE (COALESCE(chain, ''), COALESCE(seq, 0), id) > (?1, ?2, ?3)
             ORDER BY COALESCE(chain, ''), COALESCE(seq, 0), id LIMIT ?4"
        ))?;
        let rows: Vec<Row> = stmt
            .query_map(params![chain, seq, id, limit(n)], row)?
            .collect::<Result<_, _>>()?;
        // The file keeps `fields` as the writer serialised it (sorted keys, compact): text
        // that parses the same but reads otherwise (a duplicated key, which SQLite's own JSON
        // functions read first) was edited, and its MAC is made to fail so verify says so.
        let raw: Vec<String> = rows.iter().map(|r| r.5.clone()).collect();
        let mut page = crate::audit::paged(rows)?;
        for ((_, e), raw) in page.iter_mut().zip(raw) {
            let canonical = serde_json::to_string(&e.fields).is_ok_and(|c| c == raw);
            if let (false, Some(link)) = (canonical, e.link.as_mut()) {
                link.mac.push_str("#not-as-written");
            }
        }
        Ok(page)
    }

    fn checkpoint(&self, cp: &Checkpoint) -> Result<(), AuditError> {
        let conn = self.writer.conn();
        conn.execute(
            "INSERT OR IGNORE INTO audit_checkpoints (chain, seq, mac, at_us, signer, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![cp.chain, cp.seq, cp.mac, cp.at_us, cp.signer, cp.signature],
        )?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let conn = self.reader.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT chain, seq, mac, at_us, signer, signature FROM audit_checkpoints
             ORDER BY chain, seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Checkpoint {
                chain: r.get(0)?,
                seq: r.get(1)?,
                mac: r.get(2)?,
                at_us: r.get(3)?,
                signer: r.get(4)?,
                signature: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn anchors(&self) -> Result<Vec<Anchor>, AuditError> {
        let conn = self.reader.conn();
        let mut stmt =
            conn.prepare_cached("SELECT chain, seq, mac, tag FROM audit_anchors ORDER BY chain")?;
        let rows = stmt.query_map([], |r| {
            Ok(Anchor {
                chain: r.get(0)?,
                seq: r.get(1)?,
                mac: r.get(2)?,
                tag: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn first_linked_at(&self) -> Result<Option<i64>, AuditError> {
        Ok(self.reader.conn().query_row(
            "SELECT min(at_us) FROM audit WHERE chain IS NOT NULL AND seq IS NOT NULL AND mac IS NOT NULL",
            [],
            |r| r.get(0),
        )?)
    }

    fn heads_before(&self, before_us: i64) -> Result<Vec<Link>, AuditError> {
        let conn = self.reader.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a.chain, a.seq, a.mac FROM audit a
             JOIN (SELECT chain, MAX(seq) AS seq FROM audit
                   WHERE chain IS NOT NULL AND at_us < ?1 GROUP BY chain) h
               ON a.chain = h.chain AND a.seq = h.seq",
        )?;
        let rows = stmt.query_map([before_us], |r| {
            Ok(Link {
                chain: r.get(0)?,
                seq: r.get(1)?,
                mac: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
            let need = |i: usize| text(r, i).map(Option::unwrap_or_default);
            Ok(SealedBreakGlass {
                id: need(0)?,
                at_us: r.get(1)?,
                user: need(2)?,
                portal: need(3)?,
                session: need(4)?,
                until: r.get(5)?,
                reason: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn prune(&self, before_us: i64, anchors: &[Anchor]) -> Result<u64, AuditError> {
        let mut conn = self.writer.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        let mut gone = 0;
        for a in anchors {
            tx.execute(
                "INSERT OR REPLACE INTO audit_anchors (chain, seq, mac, tag) VALUES (?1, ?2, ?3, ?4)",
                params![a.chain, a.seq, a.mac, a.tag],
            )?;
            gone += tx.execute(
                "DELETE FROM audit WHERE chain = ?1 AND seq <= ?2",
                params![a.chain, a.seq],
            )?;
            tx.execute(
                "DELETE FROM audit_checkpoints WHERE chain = ?1 AND seq <= ?2",
                params![a.chain, a.seq],
            )?;
        }
        gone += tx.execute(
            "DELETE FROM audit WHERE chain IS NULL AND at_us < ?1",
            [before_us],
        )?;
        gone += tx.execute("DELETE FROM break_glass WHERE at_us < ?1", [before_us])?;
        tx.commit()?;
        Ok(gone as u64)
    }
}
