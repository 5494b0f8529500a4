//! The audit trail in PostgreSQL: every replica writes to one table, so an investigation reads
//! one trail whichever replica served the user, and a replaced pod loses none of it.

use super::Pg;
use crate::audit::{AuditError, AuditRecords, Entry, Query, SealedBreakGlass};

pub struct PgAudit(pub Pg);

impl AuditRecords for PgAudit {
    fn insert(&self, entries: &[Entry], glass: &[SealedBreakGlass]) -> Result<(), AuditError> {
        let mut fields = Vec::with_capacity(entries.len());
        for e in entries {
            fields.push(serde_json::to_string(&e.fields)?);
        }
        let e = (
            entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
            entries.iter().map(|e| e.at_us).collect::<Vec<_>>(),
            entries.iter().map(|e| e.level.clone()).collect::<Vec<_>>(),
            entries.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
            entries.iter().map(|e| e.user.clone()).collect::<Vec<_>>(),
            fields,
        );
        let g = glass.to_vec();
        self.0.block(move |mut c| {
            let (e, g) = (e.clone(), g.clone());
            async move {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO audit (id, at_us, level, event, username, fields)
                     SELECT a, b, c, d, e, f::jsonb
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
                          AS t(a, b, c, d, e, f)
                     ON CONFLICT (id) DO NOTHING",
                    &[&e.0, &e.1, &e.2, &e.3, &e.4, &e.5],
                )
                .await?;
                for b in &g {
                    tx.execute(
                        "INSERT INTO break_glass (id, at_us, username, portal, session, until, reason)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                        &[&b.id, &b.at_us, &b.user, &b.portal, &b.session, &b.until, &b.reason],
                    )
                    .await?;
                }
                tx.commit().await
            }
        })?;
        Ok(())
    }

    fn recent(&self, q: &Query) -> Result<Vec<Entry>, AuditError> {
        let given: Vec<String> = [&q.user, &q.event].into_iter().flatten().cloned().collect();
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT id, at_us, level, event, username, fields::text FROM audit {}
             ORDER BY at_us DESC, id DESC LIMIT ${}",
            crate::audit::filters(q.user.is_some(), q.event.is_some(), |i| format!("${i}")),
            given.len() + 1
        );
        let rows = self.0.block(move |c| {
            let (given, sql) = (given.clone(), sql.clone());
            async move {
                let mut args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    given.iter().map(|g| g as _).collect();
                args.push(&limit);
                let rows = c.query(&sql, &args).await?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (
                            r.get::<_, String>(0),
                            r.get::<_, i64>(1),
                            r.get::<_, String>(2),
                            r.get::<_, String>(3),
                            r.get::<_, Option<String>>(4),
                            r.get::<_, String>(5),
                        )
                    })
                    .collect::<Vec<_>>())
            }
        })?;
        rows.into_iter().map(Entry::from_row).collect()
    }

    fn break_glass(
        &self,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SealedBreakGlass>, AuditError> {
        let user = user.map(str::to_string);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self.0.block(move |c| {
            let user = user.clone();
            async move {
                let rows = c
                    .query(
                        "SELECT id, at_us, username, portal, session, until, reason FROM break_glass
                         WHERE ($1::text IS NULL OR username = $1) ORDER BY at_us DESC, id DESC LIMIT $2",
                        &[&user, &limit],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| SealedBreakGlass {
                        id: r.get(0),
                        at_us: r.get(1),
                        user: r.get(2),
                        portal: r.get(3),
                        session: r.get(4),
                        until: r.get(5),
                        reason: r.get(6),
                    })
                    .collect())
            }
        })?)
    }

    fn prune(&self, before_us: i64) -> Result<u64, AuditError> {
        Ok(self.0.block(move |mut c| async move {
            let tx = c.transaction().await?;
            let a = tx
                .execute("DELETE FROM audit WHERE at_us < $1", &[&before_us])
                .await?;
            let b = tx
                .execute("DELETE FROM break_glass WHERE at_us < $1", &[&before_us])
                .await?;
            tx.commit().await?;
            Ok(a + b)
        })?)
    }
}
