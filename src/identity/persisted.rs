//! Embedded sessions that outlive the process: the in-memory store, with every signed-in
//! session written through to the SQLite file, sealed, and read back at start.
//!
//! Memory stays the authority while the process runs (every check happens there, in one
//! step); the file is its copy for the next start. Every change is made to memory and to the
//! file under one lock, so the file never gets a write-back of a session that ended in
//! between (it would come back at the next start); an ended session leaves the file before
//! the call that ended it returns. Pre-login sessions are
//! not kept: losing one costs a visitor a reload of the login page.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;

use super::session::{Lifetimes, SessionRecord};
use super::store::{Admission, Admitted, MemoryStore, Removed, SessionStore, StoreError, Updated};
use super::token::SessionId;
use crate::factors::crypto::KeyRing;
use crate::storage::sessions::SqliteSessions;

pub struct Persisted {
    /// Held across each change's memory step and file step: one change at a time, in the
    /// same order in both.
    writing: tokio::sync::Mutex<()>,
    memory: MemoryStore,
    disk: SqliteSessions,
    /// The factors' key ring: the file holds no usable portal session without it.
    sealer: Arc<KeyRing>,
}

fn hash(id: &SessionId) -> String {
    id.stored_name()
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Bound to its purpose and row, so a sealed session cannot be moved to another row.
fn aad(hash: &str) -> Vec<u8> {
    format!("embedded-session\0{hash}").into_bytes()
}

/// What was read back at start.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub sessions: usize,
    /// Rows that could not be opened (another key ring) or no longer apply (a locked user,
    /// a full store): removed from the file.
    pub dropped: usize,
}

impl Persisted {
    /// The memory store, filled with the sessions the file keeps.
    pub fn open(
        memory: MemoryStore,
        disk: SqliteSessions,
        sealer: Arc<KeyRing>,
    ) -> Result<(Self, Restored), StoreError> {
        let rows = disk.all().map_err(unavailable)?;
        let mut restored = Restored::default();
        let mut gone = Vec::new();
        for (row, sealed) in rows {
            let record = sealer
                .open(&aad(&row), &sealed)
                .ok()
                .and_then(|(plain, _)| {
                    serde_json::from_slice::<(String, SessionRecord)>(&plain).ok()
                })
                .and_then(|(id, mut record)| {
                    let bytes: [u8; 32] = B64.decode(id).ok()?.try_into().ok()?;
                    record.id = SessionId(bytes);
                    (hash(&record.id) == row).then_some(record)
                });
            match record.map(|r| memory.restore(r)) {
                Some(true) => restored.sessions += 1,
                _ => {
                    restored.dropped += 1;
                    gone.push(row);
                }
            }
        }
        disk.delete(gone.iter().map(String::as_str))
            .map_err(unavailable)?;
        Ok((
            Self {
                writing: tokio::sync::Mutex::new(()),
                memory,
                disk,
                sealer,
            },
            restored,
        ))
    }

    /// Keep a signed-in session's latest version in the file. A failure only costs this
    /// session at the next restart: it is logged, the request goes on.
    fn keep(&self, record: &SessionRecord) {
        let Some(user) = record.user.as_deref().filter(|_| record.is_authenticated()) else {
            return;
        };
        let row = hash(&record.id);
        let plain = match serde_json::to_vec(&(B64.encode(record.id.0), record)) {
            Ok(plain) => plain,
            Err(e) => {
                tracing::error!(error = %e, "session not written to the database");
                return;
            }
        };
        let sealed = self.sealer.seal(&aad(&row), &plain);
        if let Err(e) = self.disk.put(&row, user, &sealed) {
            tracing::error!(error = %e, "session not written to the database; it ends at the next restart");
        }
    }

    /// Take ended sessions out of the file. If the file refuses, the caller hears it: the
    /// session has ended here, but would come back at the next restart.
    fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a SessionId>) -> Result<(), StoreError> {
        let rows: Vec<String> = ids.into_iter().map(hash).collect();
        self.disk.delete(rows.iter().map(String::as_str)).map_err(|e| {
            tracing::error!(error = %e, "an ended session is still in the database; it would return at restart");
            unavailable(e)
        })
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("session database: {e}"))
}

#[async_trait]
impl SessionStore for Persisted {
    async fn get(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        self.memory.get(id).await
    }

    async fn create(
        &self,
        record: SessionRecord,
        admission: Admission<'_>,
    ) -> Result<Admitted, StoreError> {
        let id = record.id;
        let _one = self.writing.lock().await;
        let admitted = self.memory.create(record, admission).await?;
        if let Admitted::Stored { evicted } = &admitted {
            let ended = evicted.iter().map(|r| &r.record.id);
            self.forget(ended.chain(admission.replaces))?;
            if let Some(stored) = self.memory.get(&id).await? {
                self.keep(&stored);
            }
        }
        Ok(admitted)
    }

    async fn update(&self, record: SessionRecord) -> Result<Updated, StoreError> {
        let _one = self.writing.lock().await;
        let updated = self.memory.update(record).await?;
        if let Updated::Stored(stored) = &updated {
            self.keep(stored);
        }
        Ok(updated)
    }

    async fn remove(&self, id: &SessionId) -> Result<Option<Arc<SessionRecord>>, StoreError> {
        let _one = self.writing.lock().await;
        let removed = self.memory.remove(id).await?;
        self.forget([id])?;
        Ok(removed)
    }

    async fn remove_user(
        &self,
        user: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<Removed>, StoreError> {
        let _one = self.writing.lock().await;
        let removed = self.memory.remove_user(user, except).await?;
        self.forget(removed.iter().map(|r| &r.record.id))?;
        // And any row of the user's that memory no longer knows (a revocation is the moment
        // to make sure nothing of theirs can come back).
        let kept = except.map(hash).unwrap_or_default();
        self.disk.delete_user(user, &kept).map_err(|e| {
            tracing::error!(error = %e, "a revoked user's sessions are still in the database; they would return at restart");
            unavailable(e)
        })?;
        Ok(removed)
    }

    async fn list_user(&self, user: &str) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        self.memory.list_user(user).await
    }

    async fn want_proof(&self, user: &str, after_us: i64) -> Result<usize, StoreError> {
        let _one = self.writing.lock().await;
        let n = self.memory.want_proof(user, after_us).await?;
        // The file keeps the demand too, so a restart does not lift it.
        for (_, record) in self.memory.list_user(user).await? {
            if record.proof_wanted() {
                self.keep(&record);
            }
        }
        Ok(n)
    }

    async fn list_all(&self, max: usize) -> Result<Vec<(String, Arc<SessionRecord>)>, StoreError> {
        self.memory.list_all(max).await
    }

    async fn remove_fingerprint(
        &self,
        user: &str,
        fingerprint: &str,
    ) -> Result<Option<Removed>, StoreError> {
        let _one = self.writing.lock().await;
        let removed = self.memory.remove_fingerprint(user, fingerprint).await?;
        self.forget(removed.iter().map(|r| &r.record.id))?;
        Ok(removed)
    }

    async fn sweep(
        &self,
        now: u64,
        lifetimes: &Lifetimes,
        max: usize,
    ) -> Result<Vec<Removed>, StoreError> {
        let _one = self.writing.lock().await;
        let removed = self.memory.sweep(now, lifetimes, max).await?;
        self.forget(removed.iter().map(|r| &r.record.id))?;
        Ok(removed)
    }

    async fn census(&self) -> Result<Option<crate::identity::store::Census>, StoreError> {
        self.memory.census().await
    }
}

#[cfg(test)]
mod tests;
