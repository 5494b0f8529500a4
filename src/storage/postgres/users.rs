//! Local users (gateway-owned logins) in PostgreSQL: every replica checks passwords against
//! the same accounts, and `vigie user …` changes them for all.

use super::Pg;
use crate::storage::users::{UserRow, UserRows};
use crate::storage::StorageError;

pub struct PgUsers(pub Pg);

/// The value an update sets.
#[derive(Clone)]
enum Set {
    Hash(String),
    Disabled(bool),
}

impl PgUsers {
    /// Update one user's row (`$1` user, `$2` the value, `$3` now); whether it was there.
    fn update(
        &self,
        sql: &'static str,
        user: &str,
        value: Set,
        now: i64,
    ) -> Result<bool, StorageError> {
        let user = user.to_string();
        let n = self.0.block(move |c| {
            let (user, value) = (user.clone(), value.clone());
            async move {
                match value {
                    Set::Hash(h) => c.execute(sql, &[&user, &h, &now]).await,
                    Set::Disabled(d) => c.execute(sql, &[&user, &d, &now]).await,
                }
            }
        })?;
        Ok(n == 1)
    }
}

impl UserRows for PgUsers {
    fn insert(
        &self,
        username: &str,
        hash: &str,
        groups: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let (user, hash, groups) = (username.to_string(), hash.to_string(), groups.to_string());
        let n = self.0.block(move |c| {
            let (user, hash, groups) = (user.clone(), hash.clone(), groups.clone());
            async move {
                c.execute(
                    "INSERT INTO users (username, password_hash, groups, disabled, created, updated)
                     VALUES ($1, $2, $3, false, $4, $4) ON CONFLICT (username) DO NOTHING",
                    &[&user, &hash, &groups, &now],
                )
                .await
            }
        })?;
        Ok(n == 1)
    }

    fn set_hash(&self, username: &str, hash: &str, now: i64) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET password_hash = $2, updated = $3 WHERE username = $1";
        self.update(sql, username, Set::Hash(hash.to_string()), now)
    }

    fn set_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET disabled = $2, updated = $3 WHERE username = $1";
        self.update(sql, username, Set::Disabled(disabled), now)
    }

    fn list(&self) -> Result<Vec<(String, UserRow)>, StorageError> {
        Ok(self.0.block(|c| async move {
            let rows = c
                .query(
                    "SELECT username, password_hash, groups, disabled, created FROM users ORDER BY username",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
                .collect())
        })?)
    }

    fn get(&self, username: &str) -> Result<Option<UserRow>, StorageError> {
        let user = username.to_string();
        Ok(self.0.block(move |c| {
            let user = user.clone();
            async move {
                let row = c
                    .query_opt(
                        "SELECT password_hash, groups, disabled, created FROM users WHERE username = $1",
                        &[&user],
                    )
                    .await?;
                Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
            }
        })?)
    }
}
