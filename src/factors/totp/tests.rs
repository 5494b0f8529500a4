use super::*;

// RFC 6238 appendix B secret (ASCII "12345678901234567890").
const RFC: &[u8] = b"12345678901234567890";

#[test]
fn rfc_6238_vectors() {
    // Appendix B lists 8-digit codes; the last six digits are the 6-digit codes.
    assert_eq!(code_at(RFC, Hash::Sha1, 59), "287082");
    assert_eq!(code_at(RFC, Hash::Sha1, 1_111_111_109), "081804");
    assert_eq!(code_at(RFC, Hash::Sha1, 1_234_567_890), "005924");
    // SHA-256 and SHA-512 use the appendix's 32- and 64-byte seeds.
    let seed256 = b"12345678901234567890123456789012";
    assert_eq!(code_at(seed256, Hash::Sha256, 59), "119246");
    assert_eq!(code_at(seed256, Hash::Sha256, 1_111_111_109), "084774");
    let seed512 = b"1234567890123456789012345678901234567890123456789012345678901234";
    assert_eq!(code_at(seed512, Hash::Sha512, 59), "693936");
    assert_eq!(code_at(seed512, Hash::Sha512, 1_111_111_109), "091201");
}

#[test]
fn one_step_of_tolerance_and_no_more() {
    let s = new_secret();
    let now = 1_700_000_015;
    let step = now / STEP_SECONDS;
    for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
        let t = ((step as i64 + offset) as u64) * STEP_SECONDS;
        let code = code_at(&s, Hash::Sha1, t);
        let got = matching_step(&s, Hash::Sha1, &code, now);
        if ok {
            assert_eq!(got, Some(t / STEP_SECONDS), "offset {offset}");
        } else {
            // A far step's code may collide with a near one by chance (1 in 10^6).
            assert_ne!(got, Some(t / STEP_SECONDS), "offset {offset}");
        }
    }
}

#[test]
fn only_six_ascii_digits_are_codes() {
    assert_eq!(parse_code("012345").as_deref(), Some("012345"));
    // The two forms authenticator apps display, one ASCII separator between the halves.
    assert_eq!(parse_code("012 345").as_deref(), Some("012345"));
    assert_eq!(parse_code("012-345").as_deref(), Some("012345"));
    for bad in [
        "12345",
        "1234567",
        "12 3456",
        "1234 56",
        "123  456",
        "123\t456",
        "123\u{a0}456",
        "123_456",
        "123--456",
        "-123456",
        "123456-",
        "123 45",
        "123 4567",
        "12a 456",
        "123 45a",
        "12 34 56",
        "123 456 ",
        " 123456",
        "１２３４５６",
        "12345\0",
        "+12345",
        "-12345",
        "[123456]",
        "",
    ] {
        assert_eq!(parse_code(bad), None, "{bad:?}");
    }
    let s = new_secret();
    let code = code_at(&s, Hash::Sha1, 1000);
    assert_eq!(
        matching_step(&s, Hash::Sha1, &format!("{code} "), 1000),
        None
    );
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    assert_eq!(
        matching_step(&s, Hash::Sha1, &spaced, 1000),
        Some(1000 / 30)
    );
}

#[test]
fn enrollment_material() {
    let s = new_secret();
    let url = otpauth_url(&s, Hash::Sha1, "Vigie CHU", "dr:martin");
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains("secret=") && url.contains("issuer=Vigie"));
    assert!(qr_svg(&url).starts_with("<?xml") || qr_svg(&url).starts_with("<svg"));
    assert_eq!(secret_for_typing(&s).replace(' ', "").len(), 32);
}

/// The algorithm a configuration names, in any case, and the label an authenticator app is
/// given (the otpauth URL's `algorithm=`): each the other's inverse; anything else refused.
#[test]
fn hash_names_round_trip() {
    for (name, hash) in [
        ("sha1", Hash::Sha1),
        ("Sha256", Hash::Sha256),
        ("SHA512", Hash::Sha512),
    ] {
        let parsed = Hash::parse(name).unwrap();
        assert_eq!(parsed.label(), name.to_ascii_uppercase());
        assert_eq!(
            Hash::parse(hash.label()).map(Hash::label),
            Some(hash.label())
        );
    }
    assert_eq!(Hash::parse("MD5").map(Hash::label), None);
}
