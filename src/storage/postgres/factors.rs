//! Second factors in PostgreSQL: the sealed records (sealed before they leave the gateway,
//! so a dump holds nothing usable), the TOTP replay state, recovery codes, attempt counters,
//! invitations and WebAuthn ceremonies. Every check-and-set is one statement, or one
//! transaction with the row locked, so parallel submissions on any replicas cannot both win.
//! A claim retried after a lost reply that had landed answers "already used": the strict side.

use async_trait::async_trait;
use deadpool_postgres::Object;

use super::Pg;
use crate::factors::store::{new_version, FactorStore, Invitation};
use crate::identity::store::StoreError;

pub struct PgFactors(pub Pg);

/// Text parameters owned by a job, cloned into each attempt.
fn owned(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

impl PgFactors {
    /// One statement on text parameters (and `extra` ones), its count of rows.
    async fn execute(
        &self,
        sql: &'static str,
        texts: &[&str],
        extra: Vec<i64>,
    ) -> Result<u64, StoreError> {
        let texts = owned(texts);
        Ok(self
            .0
            .run(move |c: Object| {
                let (texts, extra) = (texts.clone(), extra.clone());
                async move {
                    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        texts.iter().map(|t| t as _).collect();
                    params.extend(
                        extra
                            .iter()
                            .map(|n| n as &(dyn tokio_postgres::types::ToSql + Sync)),
                    );
                    c.execute(sql, &params).await
                }
            })
            .await?)
    }

    /// One statement returning at most one row, on one text parameter; `read` makes the
    /// answer of it.
    async fn one<T: Send + 'static>(
        &self,
        sql: &'static str,
        key: &str,
        read: fn(Option<tokio_postgres::Row>) -> T,
    ) -> Result<T, StoreError> {
        let key = key.to_string();
        Ok(self
            .0
            .run(move |c| {
                let key = key.clone();
                async move { c.query_opt(sql, &[&key]).await.map(read) }
            })
            .await?)
    }
}

#[async_trait]
impl FactorStore for PgFactors {
    async fn load(&self, user: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        self.one(
            "SELECT sealed, version FROM factors WHERE username = $1",
            user,
            |row| row.map(|r| (r.get(0), r.get::<_, i64>(1) as u64)),
        )
        .await
    }

    async fn save(&self, user: &str, sealed: Vec<u8>, version: u64) -> Result<bool, StoreError> {
        // A random next version: a record deleted and made again never reuses an old one.
        let next = new_version() as i64;
        let user = user.to_string();
        let n = self
            .0
            .run(move |c| {
                let (user, sealed) = (user.clone(), sealed.clone());
                async move {
                    if version == 0 {
                        c.execute(
                            "INSERT INTO factors (username, sealed, version) VALUES ($1, $2, $3)
                             ON CONFLICT (username) DO NOTHING",
                            &[&user, &sealed, &next],
                        )
                        .await
                    } else {
                        c.execute(
                            "UPDATE factors SET sealed = $2, version = $3 WHERE username = $1 AND version = $4",
                            &[&user, &sealed, &next, &(version as i64)],
                        )
                        .await
                    }
                }
            })
            .await?;
        Ok(n == 1)
    }

    async fn delete_user(&self, user: &str) -> Result<(), StoreError> {
        let user = user.to_string();
        self.0
            .run(move |mut c| {
                let user = user.clone();
                async move {
                    let tx = c.transaction().await?;
                    tx.execute("DELETE FROM factors WHERE username = $1", &[&user])
                        .await?;
                    tx.execute("DELETE FROM recovery_codes WHERE username = $1", &[&user])
                        .await?;
                    tx.commit().await
                }
            })
            .await?;
        Ok(())
    }

    async fn claim_totp_step(
        &self,
        user: &str,
        step: u64,
        or_same: bool,
    ) -> Result<bool, StoreError> {
        // One statement: the row is written only when the step is newer.
        let sql = match or_same {
            true => {
                "INSERT INTO totp_steps (username, step) VALUES ($1, $2)
                     ON CONFLICT (username) DO UPDATE SET step = EXCLUDED.step
                     WHERE EXCLUDED.step >= totp_steps.step"
            }
            false => {
                "INSERT INTO totp_steps (username, step) VALUES ($1, $2)
                      ON CONFLICT (username) DO UPDATE SET step = EXCLUDED.step
                      WHERE EXCLUDED.step > totp_steps.step"
            }
        };
        Ok(self.execute(sql, &[user], vec![step as i64]).await? == 1)
    }

    async fn set_recovery_codes(&self, user: &str, digests: &[String]) -> Result<(), StoreError> {
        let (user, digests) = (user.to_string(), digests.to_vec());
        self.0
            .run(move |mut c| {
                let (user, digests) = (user.clone(), digests.clone());
                async move {
                    let tx = c.transaction().await?;
                    tx.execute("DELETE FROM recovery_codes WHERE username = $1", &[&user])
                        .await?;
                    tx.execute(
                        "INSERT INTO recovery_codes (username, digest)
                         SELECT $1, d FROM unnest($2::text[]) AS d ON CONFLICT DO NOTHING",
                        &[&user, &digests],
                    )
                    .await?;
                    tx.commit().await
                }
            })
            .await?;
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        user: &str,
        candidates: &[String],
    ) -> Result<bool, StoreError> {
        let (user, candidates) = (user.to_string(), candidates.to_vec());
        let n = self
            .0
            .run(move |c| {
                let (user, candidates) = (user.clone(), candidates.clone());
                async move {
                    // One row at most; of two submissions of one code, the second finds it gone.
                    c.execute(
                        "DELETE FROM recovery_codes WHERE (username, digest) IN (
                             SELECT username, digest FROM recovery_codes
                             WHERE username = $1 AND digest = ANY($2) LIMIT 1)",
                        &[&user, &candidates],
                    )
                    .await
                }
            })
            .await?;
        Ok(n == 1)
    }

    async fn recovery_codes_left(&self, user: &str) -> Result<usize, StoreError> {
        self.one(
            "SELECT COUNT(*) FROM recovery_codes WHERE username = $1",
            user,
            |row| row.map_or(0, |r| r.get::<_, i64>(0) as usize),
        )
        .await
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: u64,
        forget_after: Option<u64>,
    ) -> Result<(u32, u64), StoreError> {
        let key = text_key(key);
        Ok(self
            .0
            .run(move |mut c| {
                let key = key.clone();
                async move {
                    let tx = c.transaction().await?;
                    // The row made if missing and locked, in one statement: parallel guesses
                    // queue here, each counted, and a clear racing it cannot leave none.
                    let row = tx
                        .query_one(
                            "INSERT INTO factor_failures (key, count, last_at) VALUES ($1, 0, 0)
                             ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key
                             RETURNING count, last_at",
                            &[&key],
                        )
                        .await?;
                    let (mut count, last) = (
                        row.get::<_, i32>(0).max(0) as u32,
                        row.get::<_, i64>(1).max(0) as u64,
                    );
                    if forget_after.is_some_and(|f| last + f < now) {
                        count = 0;
                    }
                    tx.execute(
                        "UPDATE factor_failures SET count = $2, last_at = $3 WHERE key = $1",
                        &[&key, &(count.saturating_add(1) as i32), &(now as i64)],
                    )
                    .await?;
                    tx.commit().await?;
                    Ok((count, last))
                }
            })
            .await?)
    }

    async fn release_attempt(&self, key: &str) -> Result<(), StoreError> {
        let key = &text_key(key);
        self.execute(
            "UPDATE factor_failures SET count = GREATEST(count - 1, 0) WHERE key = $1",
            &[key],
            vec![],
        )
        .await
        .map(drop)
    }

    async fn failures(&self, key: &str) -> Result<(u32, u64), StoreError> {
        let key = &text_key(key);
        self.one(
            "SELECT count, last_at FROM factor_failures WHERE key = $1",
            key,
            |row| {
                row.map_or((0, 0), |r| {
                    (
                        r.get::<_, i32>(0).max(0) as u32,
                        r.get::<_, i64>(1).max(0) as u64,
                    )
                })
            },
        )
        .await
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        let key = &text_key(key);
        self.execute("DELETE FROM factor_failures WHERE key = $1", &[key], vec![])
            .await
            .map(drop)
    }

    async fn put_invitation(&self, user: &str, inv: Invitation) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO invitations (username, digest, expires) VALUES ($1, $2, $3)
             ON CONFLICT (username) DO UPDATE SET digest = EXCLUDED.digest, expires = EXCLUDED.expires",
            &[user, &inv.digest],
            vec![inv.expires as i64],
        )
        .await
        .map(drop)
    }

    async fn take_invitation(
        &self,
        user: &str,
        candidates: &[String],
        now: u64,
    ) -> Result<bool, StoreError> {
        let (user, candidates) = (user.to_string(), candidates.to_vec());
        let n = self
            .0
            .run(move |c| {
                let (user, candidates) = (user.clone(), candidates.clone());
                async move {
                    c.execute(
                        "DELETE FROM invitations WHERE username = $1 AND digest = ANY($2) AND expires > $3",
                        &[&user, &candidates, &(now as i64)],
                    )
                    .await
                }
            })
            .await?;
        Ok(n == 1)
    }

    async fn put_challenge(
        &self,
        key: &str,
        state: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        let key = text_key(key);
        self.0
            .run(move |c| {
                let (key, state) = (key.clone(), state.clone());
                async move {
                    c.execute(
                        "DELETE FROM webauthn_challenges
                         WHERE expires < EXTRACT(EPOCH FROM now())::bigint - 3600",
                        &[],
                    )
                    .await?;
                    c.execute(
                        "INSERT INTO webauthn_challenges (key, state, expires) VALUES ($1, $2, $3)
                         ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, expires = EXCLUDED.expires",
                        &[&key, &state, &(expires as i64)],
                    )
                    .await
                }
            })
            .await?;
        Ok(())
    }

    async fn take_challenge(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let key = &text_key(key);
        let row = self
            .one(
                "DELETE FROM webauthn_challenges WHERE key = $1 RETURNING state, expires",
                key,
                |row| row.map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1))),
            )
            .await?;
        Ok(row.and_then(|(s, exp)| (exp as u64 > now).then_some(s)))
    }
}

/// A counter's or a ceremony's key as a TEXT value: the factor layer joins its parts with NUL,
/// which PostgreSQL text refuses (22021). Escaped one to one (`%` then NUL), so two keys never
/// meet.
fn text_key(key: &str) -> String {
    key.replace('%', "%25").replace('\0', "%00")
}
