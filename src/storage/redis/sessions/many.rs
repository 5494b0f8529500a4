//! Reading many sessions at once: every user's set (the sweep, the SOC's list of every
//! session) and the SOC's step-up, which marks each session of a user in turn.

use std::sync::Arc;

use redis::AsyncCommands;

use super::{deadline, unavailable, RedisStore};
use crate::identity::session::SessionRecord;
use crate::identity::store::StoreError;
use crate::storage::redis::Conn;

impl RedisStore {
    /// Every user's set of signed-in sessions (one SCAN over the prefix).
    pub(super) async fn user_sets(&self, conn: &mut Conn) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}user:*", self.prefix);
        let mut users: Vec<String> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys) = super::scan_page(conn, cursor, &pattern, 500).await?;
            users.extend(keys);
            cursor = next;
            if cursor == 0 {
                return Ok(users);
            }
        }
    }

    /// The live sessions in one user's set, with their hashes.
    pub(super) async fn of_set(
        &self,
        conn: &mut Conn,
        set: &str,
    ) -> Result<Vec<(String, SessionRecord)>, StoreError> {
        let hashes: Vec<String> = deadline(conn.smembers(set)).await?;
        let mut out = Vec::new();
        for hash in hashes {
            let raw: Option<String> = deadline(conn.get(self.key(&hash))).await?;
            if let Some(record) = raw.and_then(|r| self.opened(&r, &hash).ok()) {
                out.push((hash, record));
            }
        }
        Ok(out)
    }

    /// Ask one session for a new proof, unless it gave one since; `true` if it will ask.
    async fn ask_proof(
        &self,
        conn: &mut Conn,
        hash: &str,
        after_us: i64,
    ) -> Result<bool, StoreError> {
        // A request writing the session meanwhile wins the race: read it again, a few times.
        for _ in 0..5 {
            let raw: Option<String> = deadline(conn.get(self.key(hash))).await?;
            let Some(mut record) = raw.and_then(|r| self.opened(&r, hash).ok()) else {
                return Ok(false);
            };
            if record.proof_at_us.unwrap_or(0) >= after_us {
                return Ok(false);
            }
            record.proof_wanted_after_us = Some(after_us);
            let call = self.write_back(hash, &mut record)?;
            let written: u8 = deadline(call.invoke_async(conn)).await?;
            match written {
                1 => return Ok(true),
                2 => continue,
                _ => return Ok(false),
            }
        }
        Err(unavailable("the session kept changing; ask again"))
    }

    /// [`SessionStore::want_proof`]: each session of the user, then every replica told.
    pub(super) async fn ask_user(&self, user: &str, after_us: i64) -> Result<usize, StoreError> {
        self.ensure_subscriber();
        self.health.verified()?;
        let mut conn = self.conn().await?;
        let hashes: Vec<String> = deadline(conn.smembers(self.user_key(user))).await?;
        let mut asked = 0;
        for hash in hashes {
            if self.ask_proof(&mut conn, &hash, after_us).await? {
                asked += 1;
            }
            // Every replica drops its copy now, rather than within the cache's lifetime.
            self.cache.write().expect("cache lock").remove(&hash);
            let _: Result<(), _> = deadline(conn.publish(self.channel(), &hash)).await;
        }
        Ok(asked)
    }

    /// [`SessionStore::list_all`], reading the users' sets one after the other.
    pub(super) async fn every_session(
        &self,
        max: usize,
    ) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        self.health.verified()?;
        let mut conn = self.conn().await?;
        let mut all = Vec::new();
        for set in self.user_sets(&mut conn).await? {
            for (hash, record) in self.of_set(&mut conn, &set).await? {
                all.push((hash[..12].to_string(), Arc::new(record)));
            }
            // Bounded reading: a big hospital's sessions are listed by user instead.
            if all.len() >= 4 * max {
                break;
            }
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.1.created));
        all.truncate(max);
        Ok(all)
    }
}
