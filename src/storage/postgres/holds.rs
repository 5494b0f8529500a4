//! Holds in PostgreSQL: a gateway on `records = "postgres"` keeps its holds there, so neither
//! a restart nor a replaced machine releases an identity the SOC has not.
//!
//! A hold or a release PostgreSQL does not take (it is away) is kept, in order, and written
//! when it answers again (tried before every later change and every few seconds): the
//! detector has applied it in memory already, and a later change never overtakes it.

use std::sync::{Arc, Mutex};

use super::Pg;
use crate::detect::Hold;
use crate::identity::store::StoreError;
use crate::storage::holds::HoldStore;

#[derive(Clone)]
enum Change {
    Put(String, String, Hold),
    Release(String, String),
}

pub struct PgHolds {
    pg: Pg,
    pending: Mutex<Vec<Change>>,
}

/// How often changes PostgreSQL did not take are tried again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(2);

impl PgHolds {
    pub fn new(pg: Pg) -> Arc<Self> {
        let me = Arc::new(Self {
            pg,
            pending: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&me);
        let started = std::thread::Builder::new()
            .name("vigie-holds".into())
            .spawn(move || loop {
                std::thread::sleep(RETRY);
                let Some(me) = weak.upgrade() else { return };
                let mut pending = me.pending.lock().expect("pending holds");
                if !pending.is_empty() && me.drain(&mut pending).is_ok() {
                    tracing::warn!(
                        "holds and releases kept while PostgreSQL did not answer are stored now"
                    );
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "no retry thread for holds: changes PostgreSQL misses are tried again with the next one");
        }
        me
    }

    /// Write what waits, in order; stops at the first refusal.
    fn drain(&self, pending: &mut Vec<Change>) -> Result<(), StoreError> {
        while let Some(change) = pending.first().cloned() {
            self.write(change)?;
            pending.remove(0);
        }
        Ok(())
    }

    /// A change after those waiting, or kept with them.
    fn change(&self, change: Change) -> Result<(), StoreError> {
        let mut pending = self.pending.lock().expect("pending holds");
        let done = self
            .drain(&mut pending)
            .and_then(|()| self.write(change.clone()));
        if let Err(e) = done {
            pending.push(change);
            return Err(StoreError::Unavailable(format!(
                "{e}; kept, and written when PostgreSQL answers again"
            )));
        }
        Ok(())
    }

    fn write(&self, change: Change) -> Result<(), StoreError> {
        match change {
            Change::Put(portal, user, hold) => self.put_now(portal, user, hold),
            Change::Release(portal, user) => self.release_now(portal, user),
        }
    }
}

impl HoldStore for PgHolds {
    fn running(&self, now_us: i64) -> Result<Vec<(String, String, Hold)>, StoreError> {
        Ok(self.pg.block(move |c| async move {
            // Expired holds are dropped on the way: nobody reads them again.
            c.execute("DELETE FROM holds WHERE until_us <= $1", &[&now_us])
                .await?;
            let rows = c
                .query(
                    "SELECT portal, username, since_us, until_us, alert_id, rule, score FROM holds",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let hold = Hold {
                        since_us: r.get(2),
                        until_us: r.get(3),
                        alert_id: r.get(4),
                        rule: r.get(5),
                        score: r.get::<_, i32>(6).clamp(0, 255) as u8,
                    };
                    (r.get(0), r.get(1), hold)
                })
                .collect())
        })?)
    }

    fn put(&self, portal: &str, user: &str, hold: &Hold) -> Result<(), StoreError> {
        self.change(Change::Put(portal.into(), user.into(), hold.clone()))
    }

    fn release(&self, portal: &str, user: &str) -> Result<(), StoreError> {
        self.change(Change::Release(portal.into(), user.into()))
    }
}

impl PgHolds {
    fn put_now(&self, portal: String, user: String, hold: Hold) -> Result<(), StoreError> {
        self.pg.block(move |c| {
            let (portal, user, hold) = (portal.clone(), user.clone(), hold.clone());
            async move {
                c.execute(
                    "INSERT INTO holds (portal, username, since_us, until_us, alert_id, rule, score)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (portal, username) DO UPDATE SET since_us = EXCLUDED.since_us,
                         until_us = EXCLUDED.until_us, alert_id = EXCLUDED.alert_id,
                         rule = EXCLUDED.rule, score = EXCLUDED.score",
                    &[
                        &portal,
                        &user,
                        &hold.since_us,
                        &hold.until_us,
                        &hold.alert_id,
                        &hold.rule,
                        &i32::from(hold.score),
                    ],
                )
                .await
            }
        })?;
        Ok(())
    }

    fn release_now(&self, portal: String, user: String) -> Result<(), StoreError> {
        self.pg.block(move |c| {
            let (portal, user) = (portal.clone(), user.clone());
            async move {
                c.execute(
                    "DELETE FROM holds WHERE portal = $1 AND username = $2",
                    &[&portal, &user],
                )
                .await
            }
        })?;
        Ok(())
    }
}
