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
