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
