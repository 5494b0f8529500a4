//! Keeping Redis and each replica's file in step, at every check: the account locks and the
//! users who have enrolled. Both are unions: what either side knows survives the other
//! losing it. Only an unlock recorded in Redis after this file got the lock lifts it here.

use std::collections::HashMap;

use redis::aio::ConnectionLike;

use super::SharedState;
use crate::identity::store::StoreError;
use crate::storage::redis::sessions::deadline;

impl SharedState {
    /// Redis is trusted: its locks join this file's, and this file's locks that Redis lacks
    /// go back to Redis (lost with it) unless Redis recorded their unlock since. The replica's
    /// copy in memory ends up with the union.
    pub(super) async fn sync_locks<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
    ) -> Result<(), StoreError> {
        let mut shared: HashMap<String, String> = deadline(
            redis::cmd("HGETALL")
                .arg(self.key("locks"))
                .query_async(conn),
        )
        .await?;
        let unlocked: HashMap<String, i64> = deadline(
            redis::cmd("HGETALL")
                .arg(self.key("unlocked"))
                .query_async(conn),
        )
        .await?;
        let file = self.locks.all()?;
        let in_file: std::collections::HashSet<&str> =
            file.iter().map(|(u, _, _)| u.as_str()).collect();
        // Locks made elsewhere join the file (the copy in memory may know them already, from
        // the message: the file must too).
        for (user, reason) in &shared {
            if !in_file.contains(user.as_str()) {
                self.locks.learn(user, reason)?;
            }
        }
        for (user, reason, at) in file {
            if shared.contains_key(&user) {
                // Unlocked and locked again since this file got it (it missed the unlock): the
                // file's lock is as new as the relock.
                if unlocked.get(&user).is_some_and(|lifted| *lifted >= at) {
                    self.locks.refresh(&user)?;
                }
                continue;
            }
            if unlocked.get(&user).is_some_and(|lifted| *lifted >= at) {
                self.locks.forget(&user)?;
                continue;
            }
            deadline(
                redis::cmd("HSET")
                    .arg(self.key("locks"))
                    .arg(&user)
                    .arg(&reason)
                    .query_async::<()>(conn),
            )
            .await?;
            tracing::warn!(target: "vigie::alert", severity = "high", event = "lock_restored", user = %user, "a lock this replica holds was missing from Redis: written back");
            shared.insert(user, reason);
        }
        self.locks.held().replace(shared.into_keys().collect());
        Ok(())
    }

    /// Tell Redis the users enrolled here since the last check (all of them when `all`: after
    /// a loss, or a re-establishment elsewhere), and learn those enrolled elsewhere. Should the
    /// counts still differ, the two sides exchange what the other lacks.
    pub(super) async fn sync_enrolled<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        all: bool,
    ) -> Result<(), StoreError> {
        let told = if all {
            self.ledger.take_pending();
            self.ledger.all_enrolled()?
        } else {
            self.ledger.take_pending()
        };
        if let Err(e) = self.add_enrolled(conn, &told).await {
            self.ledger.requeue(told);
            return Err(e);
        }
        let shared: usize = deadline(
            redis::cmd("SCARD")
                .arg(self.key("enrolled"))
                .query_async(conn),
        )
        .await?;
        if shared == self.ledger.enrolled_count()? {
            return Ok(());
        }
        let theirs: Vec<String> = deadline(
            redis::cmd("SMEMBERS")
                .arg(self.key("enrolled"))
                .query_async(conn),
        )
        .await?;
        self.ledger.add_enrolled(&theirs)?;
        let theirs: std::collections::HashSet<String> = theirs.into_iter().collect();
        let ours: Vec<String> = self
            .ledger
            .all_enrolled()?
            .into_iter()
            .filter(|u| !theirs.contains(u))
            .collect();
        self.add_enrolled(conn, &ours).await
    }

    async fn add_enrolled<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        users: &[String],
    ) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        deadline(
            redis::cmd("SADD")
                .arg(self.key("enrolled"))
                .arg(users)
                .query_async::<()>(conn),
        )
        .await
    }
}
