use super::*;

#[tokio::test]
async fn locks_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.sqlite");
    SqliteLocks::open(&path)
        .unwrap()
        .lock("alice", "lost badge")
        .await
        .unwrap();
    let again = SqliteLocks::open(&path).unwrap();
    assert!(again.held().contains("alice"), "loaded at start");
    assert_eq!(
        again.locked("alice").await.unwrap().as_deref(),
        Some("lost badge")
    );
    assert_eq!(again.locked("bob").await.unwrap(), None);
    assert!(again.unlock("alice").await.unwrap());
    assert!(!again.unlock("alice").await.unwrap());
}
