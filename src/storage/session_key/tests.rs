use super::*;

#[test]
fn the_key_is_made_once_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_for(&dir.path().join("vigie.sqlite"));
    assert!(path.ends_with("vigie.sqlite.session-key"));
    let first = load_or_create(&path).unwrap();
    assert_eq!(first.len(), LEN);
    assert_eq!(load_or_create(&path).unwrap(), first);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let other = load_or_create(&path_for(&dir.path().join("other.sqlite"))).unwrap();
    assert_ne!(other, first, "a key per database");
}

#[test]
fn a_truncated_key_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(&path, b"short").unwrap();
    let e = load_or_create(&path).unwrap_err();
    assert!(e.to_string().contains("remove it"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_key_others_could_read_is_made_the_owner_s_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(&path, [7u8; LEN]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(load_or_create(&path).unwrap(), vec![7u8; LEN]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
