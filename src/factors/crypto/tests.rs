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

/// Key ids: 1 to 32 letters, digits, `-` or `_`.
#[test]
fn key_ids_are_short_plain_names() {
    let key = |id: &str| {
        let line = KeyRing::generate_line("x");
        format!("{id}:{}", line.split_once(':').unwrap().1)
    };
    for good in ["k-1", "k_1", &"a".repeat(32)] {
        assert!(KeyRing::parse(&key(good)).is_ok(), "{good}");
    }
    for bad in ["", &"a".repeat(33), "k.1", "k 1"] {
        assert!(KeyRing::parse(&key(bad)).is_err(), "{bad:?}");
    }
}

/// A reload may add keys or put another first, never change or drop one; the ring shows its
/// ids, never its keys.
#[test]
fn a_reload_may_add_keys_but_never_change_or_drop_one() {
    let k1 = KeyRing::generate_line("k1");
    let k2 = KeyRing::generate_line("k2");
    let ring = |lines: &[&str]| KeyRing::parse(&lines.join("\n")).unwrap();
    let running = ring(&[&k1]);
    assert_eq!(running.accepts(&ring(&[&k1])), Ok(false), "the same ring");
    assert_eq!(running.accepts(&ring(&[&k2, &k1])), Ok(true), "a key added");
    let both = ring(&[&k1, &k2]);
    assert_eq!(both.accepts(&ring(&[&k2, &k1])), Ok(true), "another first");
    assert_eq!(both.accepts(&ring(&[&k1, &k2])), Ok(false));
    let changed = running.accepts(&ring(&[&KeyRing::generate_line("k1")]));
    assert!(changed.unwrap_err().contains("`k1` changed"));
    let dropped = both.accepts(&ring(&[&k1]));
    assert!(dropped.unwrap_err().contains("`k2` was removed"));
    running.adopt(&ring(&[&k2, &k1]));
    assert_eq!(running.current_id(), "k2", "adopted");
    let shown = format!("{running:?}");
    assert_eq!(shown, r#"KeyRing(["k2", "k1"])"#);
    assert!(!shown.contains(k1.split_once(':').unwrap().1));
}
