//! Account locks in PostgreSQL: one table every replica reads, so a lock made on one is in
//! force on all, and survives any restart. Each replica keeps its in-memory copy
//! ([`LockedUsers`]) from it: loaded at start, changed at once for locks made here, and (with
//! Redis) by the lock messages and the periodic reconciliation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::Object;

use super::Pg;
use crate::identity::locks::{unix_now_ms, DurableLocks, LockStore, LockedUsers};
use crate::identity::store::StoreError;

pub struct PgLocks {
    pg: Pg,
    held: Arc<LockedUsers>,
    /// Locks made while PostgreSQL did not answer: in force here at once, written when it
    /// answers again (user -> reason).
    pending: Mutex<HashMap<String, String>>,
}

type Job<T> = Box<
    dyn Fn(
            Object,
        )
            -> std::pin::Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send>>
        + Send
        + Sync,
>;

/// One statement on `user` with two more text parameters, its count of rows.
fn statement(sql: &'static str, user: &str, reason: Option<&str>) -> Job<u64> {
    let (user, reason) = (user.to_string(), reason.map(str::to_string));
    Box::new(move |c| {
        let (user, reason) = (user.clone(), reason.clone());
        Box::pin(async move {
            match reason {
                Some(reason) => c.execute(sql, &[&user, &reason, &unix_now_ms()]).await,
                None => c.execute(sql, &[&user]).await,
            }
        })
    })
}

const REPLACE: &str = "INSERT INTO account_locks (username, reason, locked_at) VALUES ($1, $2, $3)
     ON CONFLICT (username) DO UPDATE SET reason = EXCLUDED.reason, locked_at = EXCLUDED.locked_at";
const KEEP: &str = "INSERT INTO account_locks (username, reason, locked_at) VALUES ($1, $2, $3)
     ON CONFLICT (username) DO NOTHING";
const DELETE: &str = "DELETE FROM account_locks WHERE username = $1";

/// How often a gateway without Redis reads the locks again: a lock made on another gateway
/// sharing the database is in force here within this.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

impl PgLocks {
    /// Every [`REFRESH`]: write the locks made while PostgreSQL did not answer, and read the
    /// table again into this gateway's copy. `replace`: the copy becomes the table (with the
    /// pending ones), for gateways sharing PostgreSQL but not Redis; otherwise the table's
    /// locks are only added, so a lock stored while Redis is away still reaches every replica
    /// (Redis's messages and checks lift the copy's locks). A read that fails keeps the copy.
    pub fn refreshing(self: &Arc<Self>, replace: bool) -> std::io::Result<()> {
        let me = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("vigie-locks".into())
            .spawn(move || loop {
                std::thread::sleep(REFRESH);
                let Some(me) = me.upgrade() else { return };
                me.write_pending();
                match me.all() {
                    Ok(all) if replace => {
                        let mut users: std::collections::HashSet<String> =
                            all.into_iter().map(|(u, _, _)| u).collect();
                        users.extend(me.pending.lock().expect("pending locks").keys().cloned());
                        me.held.replace(users);
                    }
                    Ok(all) => {
                        for (user, _, _) in all {
                            if !me.held.contains(&user) {
                                me.held.set(&user, true);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the locks could not be read again from PostgreSQL; the last copy stays in force"),
                }
            })
            .map(drop)
    }

    fn write_pending(&self) {
        let pending: Vec<(String, String)> = self
            .pending
            .lock()
            .expect("pending locks")
            .iter()
            .map(|(u, r)| (u.clone(), r.clone()))
            .collect();
        for (user, reason) in pending {
            if self
                .pg
                .block(statement(REPLACE, &user, Some(&reason)))
                .is_ok()
            {
                tracing::warn!(target: "vigie::audit", event = "account_lock_stored", user = %user, "a lock made while PostgreSQL did not answer is stored now");
                self.pending.lock().expect("pending locks").remove(&user);
            }
        }
    }

    pub fn open(pg: Pg) -> Result<Self, StoreError> {
        let this = Self {
            pg,
            held: Arc::new(LockedUsers::default()),
            pending: Mutex::new(HashMap::new()),
        };
        this.held
            .replace(this.all()?.into_iter().map(|(u, _, _)| u).collect());
        Ok(this)
    }
}

#[async_trait]
impl LockStore for PgLocks {
    async fn lock(&self, user: &str, reason: &str) -> Result<(), StoreError> {
        if let Err(e) = self.pg.run(statement(REPLACE, user, Some(reason))).await {
            // Fail closed: in force on this gateway now, stored when PostgreSQL answers.
            self.pending
                .lock()
                .expect("pending locks")
                .insert(user.to_string(), reason.to_string());
            self.held.set(user, true);
            return Err(StoreError::Unavailable(format!(
                "{e}; the lock is in force on this gateway and is stored when PostgreSQL answers again"
            )));
        }
        // The durable write first: a session store admitting this user checks `held` after it.
        self.held.set(user, true);
        Ok(())
    }

    async fn unlock(&self, user: &str) -> Result<bool, StoreError> {
        let n = self.pg.run(statement(DELETE, user, None)).await?;
        let was_pending = self
            .pending
            .lock()
            .expect("pending locks")
            .remove(user)
            .is_some();
        self.held.set(user, false);
        Ok(n > 0 || was_pending)
    }

    async fn locked(&self, user: &str) -> Result<Option<String>, StoreError> {
        let user = user.to_string();
        Ok(self
            .pg
            .run(move |c| {
                let user = user.clone();
                async move {
                    c.query_opt(
                        "SELECT reason FROM account_locks WHERE username = $1",
                        &[&user],
                    )
                    .await
                    .map(|r| r.map(|r| r.get(0)))
                }
            })
            .await?)
    }

    fn held(&self) -> &Arc<LockedUsers> {
        &self.held
    }
}

/// The reconciliation with Redis runs on its own thread and waits for each call.
impl DurableLocks for PgLocks {
    fn all(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(self.pg.block(|c| async move {
            let rows = c
                .query("SELECT username, reason, locked_at FROM account_locks", &[])
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect())
        })?)
    }

    fn learn(&self, user: &str, reason: &str) -> Result<(), StoreError> {
        self.pg.block(statement(KEEP, user, Some(reason)))?;
        self.held.set(user, true);
        Ok(())
    }

    fn refresh(&self, user: &str) -> Result<(), StoreError> {
        let user = user.to_string();
        self.pg.block(move |c| {
            let user = user.clone();
            async move {
                c.execute(
                    "UPDATE account_locks SET locked_at = $2 WHERE username = $1",
                    &[&user, &unix_now_ms()],
                )
                .await
            }
        })?;
        Ok(())
    }

    fn forget(&self, user: &str) -> Result<bool, StoreError> {
        let n = self.pg.block(statement(DELETE, user, None))?;
        self.held.set(user, false);
        Ok(n > 0)
    }
}
