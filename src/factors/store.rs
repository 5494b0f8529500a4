//! Where enrolled factors and their counters live: one interface; its stores are in
//! `crate::storage` (the SQLite file, Redis, PostgreSQL). Every check-and-set the security rules depend on
//! (TOTP step, recovery code, invitation, WebAuthn challenge) is one atomic operation in the
//! store, so parallel submissions cannot both win (threat model 18, 21, 22).

use async_trait::async_trait;

use crate::identity::store::StoreError;

/// A pending enrollment invitation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Keyed digest of the code ([`super::crypto::KeyRing::digests`]).
    pub digest: String,
    pub expires: u64,
}

#[async_trait]
pub trait FactorStore: Send + Sync {
    /// The user's sealed factor record.
    /// The user's sealed factor record and its version.
    async fn load(&self, user: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError>;
    /// Compare-and-swap: store `sealed` only if the record is still at `version` (0: absent);
    /// whether it was stored. Two writers racing (a sign-in updating a counter while the
    /// user removes that passkey) cannot overwrite each other's change.
    async fn save(&self, user: &str, sealed: Vec<u8>, version: u64) -> Result<bool, StoreError>;
    /// Whether the replicas' shared note lists the user as enrolled (Redis only).
    async fn noted_enrolled(&self, _user: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Forget every factor of a user (a reset), with their recovery codes.
    async fn delete_user(&self, user: &str) -> Result<(), StoreError>;
    /// Accept TOTP step `step` only if it is newer than the last accepted one (`or_same`:
    /// or equal, for the first code of a replacement secret after a reset).
    async fn claim_totp_step(
        &self,
        user: &str,
        step: u64,
        or_same: bool,
    ) -> Result<bool, StoreError>;
    /// Replace the user's recovery code digests.
    async fn set_recovery_codes(&self, user: &str, digests: &[String]) -> Result<(), StoreError>;
    /// Consume the first of `candidates` present; whether one was.
    async fn use_recovery_code(
        &self,
        user: &str,
        candidates: &[String],
    ) -> Result<bool, StoreError>;
    async fn recovery_codes_left(&self, user: &str) -> Result<usize, StoreError>;
    /// Count an attempt under `key` before it is verified, so that parallel guesses are all
    /// counted; returns (count, time of the last) as they were before it. A counter idle for
    /// `forget_after` seconds starts again from zero; `None`: never forgotten.
    async fn reserve_attempt(
        &self,
        key: &str,
        now: u64,
        forget_after: Option<u64>,
    ) -> Result<(u32, u64), StoreError>;
    /// Give back a reserved attempt that was not verified (refused for waiting, or a success
    /// that must not count against the source).
    async fn release_attempt(&self, key: &str) -> Result<(), StoreError>;
    /// (consecutive failures, time of the last) under `key`.
    async fn failures(&self, key: &str) -> Result<(u32, u64), StoreError>;
    async fn clear_failures(&self, key: &str) -> Result<(), StoreError>;
    async fn put_invitation(&self, user: &str, inv: Invitation) -> Result<(), StoreError>;
    /// Consume the user's invitation if its digest is one of `candidates` and it has not
    /// expired at `now`.
    async fn take_invitation(
        &self,
        user: &str,
        candidates: &[String],
        now: u64,
    ) -> Result<bool, StoreError>;
    /// Keep a WebAuthn ceremony's state until `expires`.
    async fn put_challenge(
        &self,
        key: &str,
        state: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError>;
    /// Take it, once: a second take finds nothing.
    async fn take_challenge(&self, key: &str, now: u64) -> Result<Option<Vec<u8>>, StoreError>;
}

/// A fresh record version: random, never 0 (which means "absent"), within i64.
pub(crate) fn new_version() -> u64 {
    (rand::random::<u64>() >> 2) | 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::sqlite::factors::SqliteFactors;

    /// Versions are never 0 ("absent") and fit SQLite's and Lua's i64.
    #[test]
    fn versions_are_never_absent_and_fit_i64() {
        for _ in 0..10_000 {
            let v = new_version();
            assert!(v != 0 && v <= i64::MAX as u64, "{v}");
        }
    }

    /// The contract both backends honour; the Redis backend runs it in the integration tests.
    pub async fn contract(store: &dyn FactorStore, clock_expiry: bool) {
        assert_eq!(store.load("alice").await.unwrap(), None);
        assert!(store.save("alice", vec![1, 2, 3], 0).await.unwrap());
        assert!(
            !store.save("alice", vec![9], 0).await.unwrap(),
            "already made"
        );
        let (_, v1) = store.load("alice").await.unwrap().unwrap();
        assert!(store.save("alice", vec![4], v1).await.unwrap());
        assert!(
            !store.save("alice", vec![5], v1).await.unwrap(),
            "a stale writer loses"
        );
        assert_eq!(
            store.load("alice").await.unwrap().map(|(s, _)| s),
            Some(vec![4])
        );

        assert!(store.claim_totp_step("alice", 100, false).await.unwrap());
        assert!(
            !store.claim_totp_step("alice", 100, false).await.unwrap(),
            "same step"
        );
        assert!(
            !store.claim_totp_step("alice", 99, false).await.unwrap(),
            "older step"
        );
        assert!(store.claim_totp_step("alice", 101, false).await.unwrap());
        assert!(
            store.claim_totp_step("bob", 5, false).await.unwrap(),
            "per user"
        );

        let codes = vec!["k:a".to_string(), "k:b".to_string()];
        store.set_recovery_codes("alice", &codes).await.unwrap();
        assert_eq!(store.recovery_codes_left("alice").await.unwrap(), 2);
        assert!(store
            .use_recovery_code("alice", &["k:a".into()])
            .await
            .unwrap());
        assert!(
            !store
                .use_recovery_code("alice", &["k:a".into()])
                .await
                .unwrap(),
            "single use"
        );
        assert!(
            !store
                .use_recovery_code("bob", &["k:b".into()])
                .await
                .unwrap(),
            "other user's"
        );
        assert_eq!(store.recovery_codes_left("alice").await.unwrap(), 1);

        assert_eq!(store.failures("u:alice").await.unwrap().0, 0);
        assert_eq!(
            store.reserve_attempt("u:alice", 10, None).await.unwrap(),
            (0, 0)
        );
        assert_eq!(
            store.reserve_attempt("u:alice", 12, None).await.unwrap(),
            (1, 10)
        );
        assert_eq!(store.failures("u:alice").await.unwrap(), (2, 12));
        store.release_attempt("u:alice").await.unwrap();
        assert_eq!(store.failures("u:alice").await.unwrap(), (1, 12));
        // A user's count is never forgotten; a source's is, after a quiet spell.
        assert_eq!(
            store
                .reserve_attempt("u:alice", 1_000_000, None)
                .await
                .unwrap(),
            (1, 12)
        );
        store.reserve_attempt("ip:x", 10, Some(900)).await.unwrap();
        assert_eq!(
            store.reserve_attempt("ip:x", 20, Some(900)).await.unwrap(),
            (1, 10)
        );
        assert_eq!(
            store
                .reserve_attempt("ip:x", 2000, Some(900))
                .await
                .unwrap(),
            (0, 20)
        );
        store.clear_failures("u:alice").await.unwrap();
        assert_eq!(store.failures("u:alice").await.unwrap().0, 0);

        let inv = Invitation {
            digest: "k:inv".into(),
            expires: 1000,
        };
        store.put_invitation("alice", inv.clone()).await.unwrap();
        assert!(!store
            .take_invitation("alice", &["k:bad".into()], 10)
            .await
            .unwrap());
        assert!(!store
            .take_invitation("bob", &["k:inv".into()], 10)
            .await
            .unwrap());
        assert!(
            !store
                .take_invitation("alice", &["k:inv".into()], 1000)
                .await
                .unwrap(),
            "expired"
        );
        assert!(store
            .take_invitation("alice", &["k:inv".into()], 999)
            .await
            .unwrap());
        assert!(
            !store
                .take_invitation("alice", &["k:inv".into()], 999)
                .await
                .unwrap(),
            "once"
        );

        // Keys as the factor layer makes them: parts joined with NUL (PostgreSQL text refuses
        // a NUL byte), and `%`, which an escape must keep apart from it.
        let (nul, pct) = ("dr.martin\0auth:s1", "dr.martin%00auth:s1");
        store.put_challenge(nul, vec![7], 200).await.unwrap();
        assert_eq!(store.take_challenge(pct, 100).await.unwrap(), None);
        assert_eq!(store.take_challenge(nul, 100).await.unwrap(), Some(vec![7]));
        store
            .reserve_attempt("recovery\0dr.martin", 10, None)
            .await
            .unwrap();
        assert_eq!(store.failures("recovery\0dr.martin").await.unwrap().0, 1);
        assert_eq!(store.failures("recovery%00dr.martin").await.unwrap().0, 0);
        store.clear_failures("recovery\0dr.martin").await.unwrap();
        assert_eq!(store.failures("recovery\0dr.martin").await.unwrap().0, 0);

        store.put_challenge("reg:s1", vec![9], 200).await.unwrap();
        assert_eq!(store.take_challenge("reg:s2", 100).await.unwrap(), None);
        assert_eq!(
            store.take_challenge("reg:s1", 100).await.unwrap(),
            Some(vec![9])
        );
        assert_eq!(
            store.take_challenge("reg:s1", 100).await.unwrap(),
            None,
            "consumed"
        );
        if clock_expiry {
            store.put_challenge("reg:s1", vec![9], 200).await.unwrap();
            assert_eq!(
                store.take_challenge("reg:s1", 200).await.unwrap(),
                None,
                "expired"
            );
        }

        store.delete_user("alice").await.unwrap();
        assert_eq!(store.load("alice").await.unwrap(), None);
        assert_eq!(store.recovery_codes_left("alice").await.unwrap(), 0);
        assert!(
            !store.claim_totp_step("alice", 101, false).await.unwrap(),
            "steps only move forward, even across a reset"
        );
        assert!(
            store.claim_totp_step("alice", 101, true).await.unwrap(),
            "a replacement secret may use the last step once"
        );
    }

    #[tokio::test]
    async fn sqlite_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteFactors::open(&dir.path().join("f.sqlite")).unwrap();
        contract(&store, true).await;
    }

    /// Fifty concurrent claims of one step: exactly one wins.
    pub async fn contention(store: std::sync::Arc<dyn FactorStore>) {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.claim_totp_step("carol", 7, false).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "50 parallel claims of one step");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_totp_steps_are_claimed_once_under_contention() {
        let dir = tempfile::tempdir().unwrap();
        contention(std::sync::Arc::new(
            SqliteFactors::open(&dir.path().join("f.sqlite")).unwrap(),
        ))
        .await;
    }
}
