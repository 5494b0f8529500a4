use super::*;

#[test]
fn users_survive_reopening_and_passwords_are_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.sqlite");
    contract(|| UserStore::open(&path).unwrap());
    let raw = std::fs::read(&path).unwrap();
    assert!(
        !raw.windows(9).any(|w| w == b"passphras"),
        "plain password in the database file"
    );
}

/// What every user store does; `open` opens the same store again (the PostgreSQL one runs
/// it too).
pub(crate) fn contract(open: impl Fn() -> UserStore) {
    {
        let store = open();
        store
            .add("alice", "correct horse battery", &["clinicians".into()])
            .unwrap();
        assert!(matches!(
            store.add("alice", "another long password", &[]),
            Err(StorageError::UserExists(_))
        ));
        assert!(matches!(
            store.add("bad name", "another long password", &[]),
            Err(StorageError::BadUserName(_))
        ));
        assert!(matches!(
            store.add("bob", "short", &[]),
            Err(StorageError::WeakPassword)
        ));
    }
    let store = open();
    let alice = store
        .verify("alice", "correct horse battery")
        .unwrap()
        .unwrap();
    assert_eq!(alice.groups, vec!["clinicians"]);
    assert!(store.verify("alice", "wrong password!!").unwrap().is_none());
    assert!(store
        .verify("nobody", "correct horse battery")
        .unwrap()
        .is_none());
    store.set_disabled("alice", true).unwrap();
    assert!(
        store
            .verify("alice", "correct horse battery")
            .unwrap()
            .is_none(),
        "disabled"
    );
    store.set_disabled("alice", false).unwrap();
    store
        .set_password("alice", "a brand new passphrase")
        .unwrap();
    assert!(store
        .verify("alice", "a brand new passphrase")
        .unwrap()
        .is_some());
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(matches!(
        store.set_password("nobody", "a brand new passphrase"),
        Err(StorageError::NoSuchUser(_))
    ));
}
