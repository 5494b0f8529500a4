#[test]
fn civil_dates() {
    assert_eq!(super::date(0), "1970-01-01");
    assert_eq!(super::date(951_782_400), "2000-02-29");
    assert_eq!(super::date(1_795_564_800), "2026-11-25");
}
