use super::*;

#[test]
fn round_trip_and_tampering() {
    let codec = TokenCodec::new(b"k1");
    let id = SessionId::random();
    let token = codec.encode(&id);
    assert_eq!(codec.decode(&token), Some(id));
    assert_eq!(TokenCodec::new(b"k2").decode(&token), None, "another key");
    let mut bytes = token.clone().into_bytes();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        codec.decode(std::str::from_utf8(&bytes).unwrap()),
        None,
        "flipped id"
    );
    let (id_part, tag) = token.split_once('.').unwrap();
    assert_eq!(
        codec.decode(&format!("{id_part}.{}", &tag[..10])),
        None,
        "truncated tag"
    );
    assert_eq!(codec.decode(id_part), None, "no tag");
    for junk in ["", ".", "a.b", &"x".repeat(5000), "é.é"] {
        assert_eq!(codec.decode(junk), None);
    }
    assert!(!format!("{id:?}").contains(id_part));
}

/// Stores and logs name a session by digests of its id, never by the id: 64 and 12 hex
/// digits of its SHA-256, the same for the same id, different for another.
#[test]
fn a_session_is_named_by_digests_of_its_id() {
    let id = SessionId([7; 32]);
    // SHA-256 of 32 bytes of 0x07.
    let name = id.stored_name();
    assert_eq!(
        name,
        "4bb06f8e4e3a7715d201d573d0aa423762e55dabd61a2c02278fa56cc6d294e0"
    );
    assert_eq!(id.fingerprint(), "4bb06f8e4e3a");
    let other = SessionId::random();
    assert_ne!(other.stored_name(), name);
    assert_ne!(other.fingerprint(), id.fingerprint());
    assert_eq!(format!("{id:?}"), "SessionId(4bb06f8e4e3a)");
}
