//! Alerts in the SQLite file: the [`AlertRecords`] of a gateway on `records = "sqlite"`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use crate::alerts::store::{with_triage, Kept, SealedEvent, TriageState};
use crate::alerts::triage::{self, Change, Filter, SqlValue, TriageError, Write};
use crate::alerts::{Alert, AlertRecords, SinkError};

pub struct SqliteAlerts {
    conn: Mutex<Connection>,
}

impl SqliteAlerts {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        let conn = crate::storage::sqlite::open(path)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent; keep serving.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            SqlValue::Text(t) => t.to_sql(),
            SqlValue::Int(i) => i.to_sql(),
        }
    }
}

/// The triage columns after `ecs`, in [`TRIAGE`]'s order.
const TRIAGE: &str = "ecs, status, resolution, assignee, updated_us";

fn triaged(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, TriageState)> {
    Ok((
        r.get(0)?,
        TriageState {
            status: r.get(1)?,
            resolution: r.get(2)?,
            assignee: r.get(3)?,
            updated_us: r.get(4)?,
        },
    ))
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl AlertRecords for SqliteAlerts {
    fn insert(&self, alert: &Alert, ecs: &Value, kept: &Kept) -> Result<(), SinkError> {
        let doc = serde_json::to_string(ecs)?;
        self.conn().execute(
            "INSERT OR IGNORE INTO alerts (id, at_us, rule_id, severity, risk_score, user, dedup_key, ecs, portal, status, timeline, patients, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'new', ?10, ?11, ?12)",
            params![
                alert.id,
                alert.at_us,
                alert.rule_id,
                alert.severity.as_str(),
                alert.risk_score,
                alert.user,
                alert.dedup_key,
                doc,
                alert.portal,
                kept.timeline,
                kept.patients,
                alert.source_ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default()
            ],
        )?;
        Ok(())
    }

    fn context(&self, id: &str) -> Result<Option<Kept>, SinkError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT timeline, patients FROM alerts WHERE id = ?1",
                [id],
                |r| {
                    Ok(Kept {
                        timeline: r.get(0)?,
                        patients: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn list(&self, f: &Filter) -> Result<Vec<Value>, SinkError> {
        let (cond, mut values) = triage::conditions(f, "user", |i| format!("?{i}"));
        values.push(SqlValue::Int(limit(f.limit)));
        let sql = format!(
            "SELECT {TRIAGE} FROM alerts {cond} {} LIMIT ?{}",
            triage::order(f),
            values.len()
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), triaged)?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, t) = row?;
            out.push(with_triage(&doc, t)?);
        }
        Ok(out)
    }

    fn counts(&self, f: &Filter) -> Result<Vec<(String, u64)>, SinkError> {
        let (cond, values) = triage::conditions(f, "user", |i| format!("?{i}"));
        let sql = format!("SELECT status, count(*) FROM alerts {cond} GROUP BY status");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get(&self, id: &str) -> Result<Option<Value>, SinkError> {
        let conn = self.conn();
        let found = conn
            .query_row(
                &format!("SELECT {TRIAGE} FROM alerts WHERE id = ?1"),
                [id],
                triaged,
            )
            .optional()?;
        found.map(|(doc, t)| with_triage(&doc, t)).transpose()
    }

    fn change(
        &self,
        id: &str,
        change: &Change,
        analyst: &str,
        at_us: i64,
        note: Option<&[u8]>,
    ) -> Result<(), SinkError> {
        let mut conn = self.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        let current: Option<(String, Option<String>, Option<String>)> = tx
            .query_row(
                "SELECT status, resolution, assignee FROM alerts WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((status, resolution, assignee)) = current else {
            return Err(TriageError::NotFound.into());
        };
        let current = triage::Current {
            status,
            resolution,
            assignee,
        };
        let decided = triage::decide(&current, change)?;
        match &decided.write {
            Write::Status { status, resolution } => tx.execute(
                "UPDATE alerts SET status = ?1, resolution = ?2, updated_us = ?3 WHERE id = ?4",
                params![status, resolution, at_us, id],
            )?,
            Write::Assignee(who) => tx.execute(
                "UPDATE alerts SET assignee = ?1, updated_us = ?2 WHERE id = ?3",
                params![who, at_us, id],
            )?,
            Write::Touch => tx.execute(
                "UPDATE alerts SET updated_us = ?1 WHERE id = ?2",
                params![at_us, id],
            )?,
        };
        let (before, after) = (decided.before, decided.after);
        tx.execute(
            "INSERT INTO alert_events (alert_id, at_us, analyst, kind, before, after, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, at_us, analyst, change.kind(), before, after, note],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn prune(&self, before_us: i64) -> Result<u64, SinkError> {
        let mut conn = self.conn();
        let tx = crate::storage::sqlite::write_tx(&mut conn)?;
        tx.execute(
            "DELETE FROM alert_events WHERE alert_id IN (SELECT id FROM alerts WHERE at_us < ?1)",
            [before_us],
        )?;
        let n = tx.execute("DELETE FROM alerts WHERE at_us < ?1", [before_us])?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn history(&self, id: &str) -> Result<Vec<SealedEvent>, SinkError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at_us, analyst, kind, before, after, note FROM alert_events
             WHERE alert_id = ?1 ORDER BY at_us, rowid",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(SealedEvent {
                at_us: r.get(0)?,
                analyst: r.get(1)?,
                kind: r.get(2)?,
                before: r.get(3)?,
                after: r.get(4)?,
                note: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
