use super::*;

#[test]
fn host_port_is_stripped_and_junk_refused() {
    assert_eq!(
        strip_port("portal.local:8080").as_deref(),
        Some("portal.local")
    );
    assert_eq!(strip_port("[::1]:8080").as_deref(), Some("[::1]"));
    assert_eq!(strip_port("portal").as_deref(), Some("portal"));
    assert_eq!(strip_port("evil/host"), None);
    assert_eq!(strip_port("a b"), None);
}

#[test]
fn absolute_form_must_agree_with_host() {
    let mut r = pingora::http::RequestHeader::build("GET", b"http://a/x", None).unwrap();
    r.insert_header("Host", "b").unwrap();
    assert_eq!(
        host_of(&r, Some("a")).unwrap_err().reason,
        Reason::HostMismatch
    );
    r.insert_header("Host", "A").unwrap();
    assert_eq!(host_of(&r, Some("a")).unwrap(), "a");
}
