use super::*;

#[test]
fn codes_are_distinct_and_round_trip() {
    let codes = generate();
    assert_eq!(codes.len(), COUNT);
    let mut uniq = codes.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), COUNT);
    for c in &codes {
        assert_eq!(normalise(c).unwrap(), c.replace('-', ""));
        assert_eq!(normalise(&c.to_uppercase().replace('-', " ")), normalise(c));
    }
    for bad in ["", "abc", "0000000000", "abcde-fghj\0", &"a".repeat(40)] {
        assert_eq!(normalise(bad), None, "{bad:?}");
    }
}

/// A typed code may carry dashes and spaces up to 32 characters in all; past that it is not
/// read at all (a bound on the work a typed value costs).
#[test]
fn a_typed_code_is_read_up_to_32_characters() {
    let code = &generate()[0];
    let padded = |len: usize| format!("{code}{}", "-".repeat(len - code.len()));
    assert_eq!(normalise(&padded(32)), Some(code.replace('-', "")));
    assert_eq!(normalise(&padded(33)), None);
}
