//! Per-person API tokens in PostgreSQL: one list for every replica (see
//! [`crate::storage::tokens`]).

use super::Pg;
use crate::storage::tokens::{TokenRow, TokenRows};
use crate::storage::StorageError;

pub struct PgTokens(pub Pg);

fn row(r: &tokio_postgres::Row) -> TokenRow {
    TokenRow {
        id: r.get(0),
        name: r.get(1),
        role: r.get(2),
        digest: r.get(3),
        created: r.get(4),
        expires: r.get(5),
        revoked: r.get(6),
    }
}

const COLUMNS: &str = "id, name, role, digest, created, expires, revoked";

impl TokenRows for PgTokens {
    fn insert(&self, t: &TokenRow) -> Result<(), StorageError> {
        let t = t.clone();
        self.0.block(move |c| {
            let t = t.clone();
            async move {
                c.execute(
                    "INSERT INTO api_tokens (id, name, role, digest, created, expires, revoked)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &t.id, &t.name, &t.role, &t.digest, &t.created, &t.expires, &t.revoked,
                    ],
                )
                .await
                .map(drop)
            }
        })?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<TokenRow>, StorageError> {
        let id = id.to_string();
        Ok(self.0.block(move |c| {
            let id = id.clone();
            async move {
                let r = c
                    .query_opt(
                        &format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"),
                        &[&id],
                    )
                    .await?;
                Ok(r.as_ref().map(row))
            }
        })?)
    }

    fn list(&self) -> Result<Vec<TokenRow>, StorageError> {
        Ok(self.0.block(|c| async move {
            let rows = c
                .query(
                    &format!("SELECT {COLUMNS} FROM api_tokens ORDER BY created"),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })?)
    }

    fn revoke(&self, id: &str) -> Result<bool, StorageError> {
        let id = id.to_string();
        let n = self.0.block(move |c| {
            let id = id.clone();
            async move {
                c.execute(
                    "UPDATE api_tokens SET revoked = true, digest = 'revoked' WHERE id = $1",
                    &[&id],
                )
                .await
            }
        })?;
        Ok(n == 1)
    }
}
