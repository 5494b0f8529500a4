//! The audit trail in PostgreSQL: every replica writes to one table, so an investigation reads
//! one trail whichever replica served the user, and a replaced pod loses none of it.

use super::Pg;
use crate::audit::chain::{Anchor, Checkpoint, Link};
use crate::audit::{AuditError, AuditRecords, Cursor, Entry, Page, Query, Row, SealedBreakGlass};

/// The columns of a [`Row`], `fields` as text.
const COLUMNS: &str = "id, at_us, level, event, username, fields::text, chain, seq, mac";

fn row(r: &tokio_postgres::Row) -> Row {
    (
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        r.get(6),
        r.get(7),
        r.get(8),
    )
}

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
        let links = (
            entries
                .iter()
                .map(|e| e.link.as_ref().map(|l| l.chain.clone()))
                .collect::<Vec<_>>(),
            entries
                .iter()
                .map(|e| e.link.as_ref().map(|l| l.seq))
                .collect::<Vec<_>>(),
            entries
                .iter()
                .map(|e| e.link.as_ref().map(|l| l.mac.clone()))
                .collect::<Vec<_>>(),
        );
        let g = glass.to_vec();
        self.0.block(move |mut c| {
            let (e, g, l) = (e.clone(), g.clone(), links.clone());
            async move {
                let tx = c.transaction().await?;
                tx.execute(
                    "INSERT INTO audit (id, at_us, level, event, username, fields, chain, seq, mac)
                     SELECT a, b, c, d, e, f::jsonb, g, h, i
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                                 $7::text[], $8::bigint[], $9::text[])
                          AS t(a, b, c, d, e, f, g, h, i)
                     ON CONFLICT (id) DO NOTHING",
                    &[&e.0, &e.1, &e.2, &e.3, &e.4, &e.5, &l.0, &l.1, &l.2],
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
            "SELECT {COLUMNS} FROM audit {}
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
                Ok(rows.iter().map(row).collect::<Vec<_>>())
            }
        })?;
        rows.into_iter().map(Entry::from_row).collect()
    }

    fn page(&self, after: Option<&Cursor>, limit: usize) -> Result<Page, AuditError> {
        let (chain, seq, id) = after.cloned().unwrap_or((String::new(), -1, String::new()));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // COLLATE "C": the order SQLite and Rust compare in, whatever the database's locale.
        let sql = format!(
            "SELECT {COLUMNS} FROM audit
             WHERE (COALESCE(chain, '') COLLATE \"C\", COALESCE(seq, 0), id COLLATE \"C\")
                 > ($1::text COLLATE \"C\", $2::bigint, $3::text COLLATE \"C\")
             ORDER BY COALESCE(chain, '') COLLATE \"C\", COALESCE(seq, 0), id COLLATE \"C\" LIMIT $4"
        );
        let rows = self.0.block(move |c| {
            let (chain, id, sql) = (chain.clone(), id.clone(), sql.clone());
            async move {
                let rows = c.query(&sql, &[&chain, &seq, &id, &limit]).await?;
                Ok(rows.iter().map(row).collect::<Vec<_>>())
            }
        })?;
        crate::audit::paged(rows)
    }

    fn checkpoint(&self, cp: &Checkpoint) -> Result<(), AuditError> {
        let cp = cp.clone();
        self.0.block(move |c| {
            let cp = cp.clone();
            async move {
                c.execute(
                    "INSERT INTO audit_checkpoints (chain, seq, mac, at_us, signer, signature)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &cp.chain,
                        &cp.seq,
                        &cp.mac,
                        &cp.at_us,
                        &cp.signer,
                        &cp.signature,
                    ],
                )
                .await
                .map(drop)
            }
        })?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        Ok(self.0.block(|c| async move {
            let rows = c
                .query(
                    "SELECT chain, seq, mac, at_us, signer, signature FROM audit_checkpoints
                     ORDER BY chain, seq",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Checkpoint {
                    chain: r.get(0),
                    seq: r.get(1),
                    mac: r.get(2),
                    at_us: r.get(3),
                    signer: r.get(4),
                    signature: r.get(5),
                })
                .collect())
        })?)
    }

    fn anchors(&self) -> Result<Vec<Anchor>, AuditError> {
        Ok(self.0.block(|c| async move {
            let rows = c
                .query(
                    "SELECT chain, seq, mac, tag FROM audit_anchors ORDER BY chain",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Anchor {
                    chain: r.get(0),
                    seq: r.get(1),
                    mac: r.get(2),
                    tag: r.get(3),
                })
                .collect())
        })?)
    }

    fn first_linked_at(&self) -> Result<Option<i64>, AuditError> {
        Ok(self.0.block(|c| async move {
            let r = c
                .query_one(
                    "SELECT min(at_us) FROM audit WHERE chain IS NOT NULL AND seq IS NOT NULL AND mac IS NOT NULL",
                    &[],
                )
                .await?;
            Ok(r.get::<_, Option<i64>>(0))
        })?)
    }

    fn heads_before(&self, before_us: i64) -> Result<Vec<Link>, AuditError> {
        Ok(self.0.block(move |c| async move {
            let rows = c
                .query(
                    "SELECT a.chain, a.seq, a.mac FROM audit a
                     JOIN (SELECT chain, MAX(seq) AS seq FROM audit
                           WHERE chain IS NOT NULL AND at_us < $1 GROUP BY chain) h
                       ON a.chain = h.chain AND a.seq = h.seq",
                    &[&before_us],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Link {
                    chain: r.get(0),
                    seq: r.get(1),
                    mac: r.get(2),
                })
                .collect())
        })?)
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

    fn prune(&self, before_us: i64, anchors: &[Anchor]) -> Result<u64, AuditError> {
        let anchors = anchors.to_vec();
        Ok(self.0.block(move |mut c| {
            let anchors = anchors.clone();
            async move {
                let tx = c.transaction().await?;
                let mut gone = 0;
                for a in &anchors {
                    tx.execute(
                        "INSERT INTO audit_anchors (chain, seq, mac, tag) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (chain) DO UPDATE SET seq = $2, mac = $3, tag = $4",
                        &[&a.chain, &a.seq, &a.mac, &a.tag],
                    )
                    .await?;
                    gone += tx
                        .execute(
                            "DELETE FROM audit WHERE chain = $1 AND seq <= $2",
                            &[&a.chain, &a.seq],
                        )
                        .await?;
                    tx.execute(
                        "DELETE FROM audit_checkpoints WHERE chain = $1 AND seq <= $2",
                        &[&a.chain, &a.seq],
                    )
                    .await?;
                }
                gone += tx
                    .execute(
                        "DELETE FROM audit WHERE chain IS NULL AND at_us < $1",
                        &[&before_us],
                    )
                    .await?;
                gone += tx
                    .execute("DELETE FROM break_glass WHERE at_us < $1", &[&before_us])
                    .await?;
                tx.commit().await?;
                Ok(gone)
            }
        })?)
    }
}
