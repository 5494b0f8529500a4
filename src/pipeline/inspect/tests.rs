use super::*;

#[test]
fn hsts_only_when_asked_and_hop_headers_dropped() {
    let mut r = ResponseHeader::build(200, None).unwrap();
    r.insert_header("Connection", "x-internal").unwrap();
    r.insert_header("X-Internal", "10.0.0.3").unwrap();
    r.insert_header("Keep-Alive", "timeout=5").unwrap();
    on_response(&mut r, None, "ab");
    assert!(r.headers.get("x-internal").is_none());
    assert!(r.headers.get("keep-alive").is_none());
    assert!(r.headers.get("strict-transport-security").is_none());
    on_response(&mut r, Some(600), "ab");
    assert_eq!(
        r.headers.get("strict-transport-security").unwrap(),
        "max-age=600; includeSubDomains"
    );
}
