//! Holds in PostgreSQL: a gateway on `records = "postgres"` keeps its holds there, so neither
//! a restart nor a replaced machine releases an identity the SOC has not.

use super::Pg;
use crate::detect::Hold;
use crate::identity::store::StoreError;
use crate::storage::holds::HoldStore;

pub struct PgHolds(pub Pg);

impl HoldStore for PgHolds {
    fn running(&self, now_us: i64) -> Result<Vec<(String, String, Hold)>, StoreError> {
        Ok(self.0.block(move |c| async move {
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
        let (portal, user, hold) = (portal.to_string(), user.to_string(), hold.clone());
        self.0.block(move |c| {
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

    fn release(&self, portal: &str, user: &str) -> Result<(), StoreError> {
        let (portal, user) = (portal.to_string(), user.to_string());
        self.0.block(move |c| {
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
