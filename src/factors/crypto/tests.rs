use super::*;

#[test]
fn seal_open_and_rotate() {
    let old = KeyRing::generate_line("k1");
    let ring1 = KeyRing::parse(&old).unwrap();
    let sealed = ring1.seal(b"alice", b"JBSWY3DPEHPK3PXP");
    assert!(!sealed.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
    assert_eq!(
        ring1.open(b"alice", &sealed).unwrap(),
        (b"JBSWY3DPEHPK3PXP".to_vec(), false)
    );
    assert_eq!(
        ring1.open(b"bob", &sealed),
        Err(CryptoError::Tampered),
        "bound to its user"
    );
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(ring1.open(b"alice", &flipped), Err(CryptoError::Tampered));
    // Rotation: a new first key seals; the old one still opens, and says so.
    let ring2 =
        KeyRing::parse(&format!("{}\n# old\n{old}\n", KeyRing::generate_line("k2"))).unwrap();
    assert_eq!(ring2.current_id(), "k2");
    assert!(ring2.open(b"alice", &sealed).unwrap().1);
    let resealed = ring2.seal(b"alice", b"x");
    assert_eq!(
        ring1.open(b"alice", &resealed),
        Err(CryptoError::UnknownKey("k2".into()))
    );
    assert_eq!(ring1.open(b"alice", &[1, 200]), Err(CryptoError::Malformed));
    // Digests made under the old key are still recognised.
    let d_old = &ring1.digests("recovery", b"code")[0];
    assert!(ring2.digests("recovery", b"code").contains(d_old));
}

#[test]
fn bad_key_files_are_refused_without_echoing_them() {
    for bad in [
        "",
        "# only a comment",
        "nocolon",
        "k1:not base64!",
        "k1:AAAA",
        "bad id:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let err = KeyRing::parse(bad).unwrap_err();
        assert!(!err.contains("AAAA"), "{err}");
    }
    let line = KeyRing::generate_line("k1");
    assert!(
        KeyRing::parse(&format!("{line}\n{line}")).is_err(),
        "duplicate id"
    );
}
