//! Alerts in PostgreSQL: every replica writes to one table, so the SOC sees one list whichever
//! replica it asks, and a replaced pod loses none.

use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::Pg;
use crate::alerts::store::{with_triage, Kept, SealedEvent, TriageState};
use crate::alerts::triage::{self, Change, Filter, SqlValue, TriageError, Write};
use crate::alerts::{Alert, AlertRecords, SinkError};

pub struct PgAlerts(pub Pg);

/// The triage columns after `ecs`.
const TRIAGE: &str = "ecs::text, status, resolution, assignee, updated_us";

fn triaged(r: &tokio_postgres::Row) -> (String, TriageState) {
    (
        r.get(0),
        TriageState {
            status: r.get(1),
            resolution: r.get(2),
            assignee: r.get(3),
            updated_us: r.get(4),
        },
    )
}

/// The values of a filter, as PostgreSQL takes them.
fn bind(values: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    values
        .iter()
        .map(|v| match v {
            SqlValue::Text(t) => Box::new(t.clone()) as Box<dyn ToSql + Sync + Send>,
            SqlValue::Int(i) => Box::new(*i),
        })
        .collect()
}

impl AlertRecords for PgAlerts {
    fn insert(&self, alert: &Alert, ecs: &Value, kept: &Kept) -> Result<(), SinkError> {
        let kept = kept.clone();
        let doc = serde_json::to_string(ecs)?;
        let a = (
            alert.id.clone(),
            alert.at_us,
            alert.rule_id.clone(),
            alert.severity.as_str(),
            i32::from(alert.risk_score),
            alert.user.clone(),
            alert.dedup_key.clone(),
            alert.portal.clone(),
            alert
                .source_ip
                .map(|ip| ip.to_canonical().to_string())
                .unwrap_or_default(),
        );
        self.0.block(move |c| {
            let (a, doc, k) = (a.clone(), doc.clone(), kept.clone());
            async move {
                // Once per id: a retry after a lost reply does not make two.
                c.execute(
                    "INSERT INTO alerts (id, at_us, rule_id, severity, risk_score, username, dedup_key, ecs, portal, status, timeline, patients, source)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, 'new', $10, $11, $12)
                     ON CONFLICT (id) DO NOTHING",
                    &[&a.0, &a.1, &a.2, &a.3, &a.4, &a.5, &a.6, &doc, &a.7, &k.timeline, &k.patients, &a.8],
                )
                .await
            }
        })?;
        Ok(())
    }

    fn context(&self, id: &str) -> Result<Option<Kept>, SinkError> {
        let id = id.to_string();
        Ok(self.0.block(move |c| {
            let id = id.clone();
            async move {
                let r = c
                    .query_opt(
                        "SELECT timeline, patients FROM alerts WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                Ok(r.map(|r| Kept {
                    timeline: r.get(0),
                    patients: r.get(1),
                }))
            }
        })?)
    }

    fn list(&self, f: &Filter) -> Result<Vec<Value>, SinkError> {
        let (cond, mut values) = triage::conditions(f, "username", |i| format!("${i}"));
        values.push(SqlValue::Int(i64::try_from(f.limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {TRIAGE} FROM alerts {cond} {} LIMIT ${}",
            triage::order(f),
            values.len()
        );
        let rows = self.0.block(move |c| {
            let (sql, values) = (sql.clone(), values.clone());
            async move {
                let args = bind(&values);
                let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as _).collect();
                let rows = c.query(&sql, &refs).await?;
                Ok(rows.iter().map(triaged).collect::<Vec<_>>())
            }
        })?;
        rows.into_iter()
            .map(|(doc, t)| with_triage(&doc, t))
            .collect()
    }

    fn counts(&self, f: &Filter) -> Result<Vec<(String, u64)>, SinkError> {
        let (cond, values) = triage::conditions(f, "username", |i| format!("${i}"));
        let sql = format!("SELECT status, count(*) FROM alerts {cond} GROUP BY status");
        Ok(self.0.block(move |c| {
            let (sql, values) = (sql.clone(), values.clone());
            async move {
                let args = bind(&values);
                let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as _).collect();
                let rows = c.query(&sql, &refs).await?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
                    .collect())
            }
        })?)
    }

    fn get(&self, id: &str) -> Result<Option<Value>, SinkError> {
        let id = id.to_string();
        let row = self.0.block(move |c| {
            let id = id.clone();
            async move {
                let row = c
                    .query_opt(
                        &format!("SELECT {TRIAGE} FROM alerts WHERE id = $1"),
                        &[&id],
                    )
                    .await?;
                Ok(row.as_ref().map(triaged))
            }
        })?;
        row.map(|(doc, t)| with_triage(&doc, t)).transpose()
    }

    fn change(
        &self,
        id: &str,
        change: &Change,
        analyst: &str,
        at_us: i64,
        note: Option<&[u8]>,
    ) -> Result<(), SinkError> {
        let (id, change, analyst) = (id.to_string(), change.clone(), analyst.to_string());
        let note = note.map(<[u8]>::to_vec);
        // The outer result is the database's; the inner one the triage's.
        let done = self.0.block(move |mut c| {
            let (id, change, analyst, note) = (id.clone(), change.clone(), analyst.clone(), note.clone());
            async move {
                let tx = c.transaction().await?;
                let Some(row) = tx
                    .query_opt(
                        "SELECT status, resolution, assignee FROM alerts WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?
                else {
                    return Ok(Err(TriageError::NotFound));
                };
                let current = triage::Current {
                    status: row.get(0),
                    resolution: row.get(1),
                    assignee: row.get(2),
                };
                let decided = match triage::decide(&current, &change) {
                    Ok(d) => d,
                    Err(e) => return Ok(Err(e)),
                };
                match &decided.write {
                    Write::Status { status, resolution } => {
                        tx.execute(
                            "UPDATE alerts SET status = $1, resolution = $2, updated_us = $3 WHERE id = $4",
                            &[status, resolution, &at_us, &id],
                        )
                        .await?
                    }
                    Write::Assignee(who) => {
                        tx.execute(
                            "UPDATE alerts SET assignee = $1, updated_us = $2 WHERE id = $3",
                            &[who, &at_us, &id],
                        )
                        .await?
                    }
                    Write::Touch => {
                        tx.execute(
                            "UPDATE alerts SET updated_us = $1 WHERE id = $2",
                            &[&at_us, &id],
                        )
                        .await?
                    }
                };
                let (before, after) = (decided.before, decided.after);
                tx.execute(
                    "INSERT INTO alert_events (alert_id, at_us, analyst, kind, before, after, note)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&id, &at_us, &analyst, &change.kind(), &before, &after, &note],
                )
                .await?;
                tx.commit().await?;
                Ok(Ok(()))
            }
        })?;
        done.map_err(SinkError::Triage)
    }

    fn prune(&self, before_us: i64) -> Result<u64, SinkError> {
        Ok(self.0.block(move |mut c| async move {
            let tx = c.transaction().await?;
            tx.execute(
                "DELETE FROM alert_events WHERE alert_id IN (SELECT id FROM alerts WHERE at_us < $1)",
                &[&before_us],
            )
            .await?;
            let n = tx
                .execute("DELETE FROM alerts WHERE at_us < $1", &[&before_us])
                .await?;
            tx.commit().await?;
            Ok(n)
        })?)
    }

    fn history(&self, id: &str) -> Result<Vec<SealedEvent>, SinkError> {
        let id = id.to_string();
        Ok(self.0.block(move |c| {
            let id = id.clone();
            async move {
                let rows = c
                    .query(
                        "SELECT at_us, analyst, kind, before, after, note FROM alert_events
                         WHERE alert_id = $1 ORDER BY at_us, id",
                        &[&id],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| SealedEvent {
                        at_us: r.get(0),
                        analyst: r.get(1),
                        kind: r.get(2),
                        before: r.get(3),
                        after: r.get(4),
                        note: r.get(5),
                    })
                    .collect())
            }
        })?)
    }
}
