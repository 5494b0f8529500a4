//! Alerts in PostgreSQL: every replica writes to one table, so the SOC sees one list whichever
//! replica it asks, and a replaced pod loses none.

use serde_json::Value;

use super::Pg;
use crate::alerts::store::with_status;
use crate::alerts::{Alert, AlertRecords, SinkError};

pub struct PgAlerts(pub Pg);

impl AlertRecords for PgAlerts {
    fn insert(&self, alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        let doc = serde_json::to_string(ecs)?;
        let a = (
            alert.id.clone(),
            alert.at_us,
            alert.rule_id.clone(),
            alert.severity.as_str(),
            i32::from(alert.risk_score),
            alert.user.clone(),
            alert.dedup_key.clone(),
        );
        self.0.block(move |c| {
            let (a, doc) = (a.clone(), doc.clone());
            async move {
                // Once per id: a retry after a lost reply does not make two.
                c.execute(
                    "INSERT INTO alerts (id, at_us, rule_id, severity, risk_score, username, dedup_key, ecs)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb)
                     ON CONFLICT (id) DO NOTHING",
                    &[&a.0, &a.1, &a.2, &a.3, &a.4, &a.5, &a.6, &doc],
                )
                .await
            }
        })?;
        Ok(())
    }

    fn recent(&self, limit: usize) -> Result<Vec<Value>, SinkError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.0.block(move |c| async move {
            let rows = c
                .query(
                    "SELECT ecs::text, status FROM alerts ORDER BY at_us DESC, id DESC LIMIT $1",
                    &[&limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect::<Vec<_>>())
        })?;
        rows.into_iter()
            .map(|(doc, status)| with_status(&doc, status))
            .collect()
    }

    fn set_status(&self, id: &str, status: &str) -> Result<bool, SinkError> {
        let (id, status) = (id.to_string(), status.to_string());
        let n = self.0.block(move |c| {
            let (id, status) = (id.clone(), status.clone());
            async move {
                c.execute(
                    "UPDATE alerts SET status = $1 WHERE id = $2",
                    &[&status, &id],
                )
                .await
            }
        })?;
        Ok(n > 0)
    }
}
