//! Alerts in the SQLite file: the [`AlertRecords`] of a gateway on `records = "sqlite"`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection};
use serde_json::Value;

use crate::alerts::store::with_status;
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

impl AlertRecords for SqliteAlerts {
    fn insert(&self, alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        let doc = serde_json::to_string(ecs)?;
        self.conn().execute(
            "INSERT INTO alerts (id, at_us, rule_id, severity, risk_score, user, dedup_key, ecs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                alert.id,
                alert.at_us,
                alert.rule_id,
                alert.severity.as_str(),
                alert.risk_score,
                alert.user,
                alert.dedup_key,
                doc
            ],
        )?;
        Ok(())
    }

    fn recent(&self, limit: usize) -> Result<Vec<Value>, SinkError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT ecs, status FROM alerts ORDER BY at_us DESC, rowid DESC LIMIT ?1",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (doc, status) = row?;
            out.push(with_status(&doc, status)?);
        }
        Ok(out)
    }

    fn set_status(&self, id: &str, status: &str) -> Result<bool, SinkError> {
        let n = self.conn().execute(
            "UPDATE alerts SET status = ?1 WHERE id = ?2",
            params![status, id],
        )?;
        Ok(n > 0)
    }
}
