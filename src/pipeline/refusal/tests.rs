use super::*;

#[test]
fn reasons_are_distinct_snake_case_labels() {
    let mut seen = std::collections::HashSet::new();
    for r in Reason::PLAIN {
        let l = r.label();
        assert!(
            l.bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()),
            "{l}"
        );
        assert!(seen.insert(l), "{l} twice");
    }
    assert_eq!(
        Reason::Login(Unreadable::TooLarge).label(),
        "login_too_large"
    );
}
