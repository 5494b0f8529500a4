use super::*;

#[test]
fn portal_timeouts_are_504_and_refusals_502() {
    let mut e = Error::new(ErrorType::ReadTimedout);
    e.as_up();
    assert_eq!(classify_failure(&e), (504, Some("timeout")));
    let mut e = Error::new(ErrorType::ConnectRefused);
    e.as_up();
    assert_eq!(classify_failure(&e), (502, Some("connect")));
    let mut e = Error::new(ErrorType::ConnectionClosed);
    e.as_down();
    assert_eq!(classify_failure(&e).0, 0);
    assert_eq!(
        classify_failure(&Error::new(ErrorType::HTTPStatus(413))).0,
        413
    );
}

use crate::pipeline::normalise::{normalise_target, ClientAddress};

fn forwarded(raw: &str) -> RequestHeader {
    let mut up = RequestHeader::build("GET", raw.as_bytes(), None).unwrap();
    let ip = "192.0.2.7".parse().unwrap();
    let request = Request {
        method: http::Method::GET,
        target: normalise_target(raw).unwrap(),
        host: "ehr.example".into(),
        client: ClientAddress {
            ip,
            peer: ip,
            peer_trusted: false,
        },
        tls: false,
    };
    let rules = HeaderRules {
        strip_request: Vec::new(),
        allow_underscores: false,
    };
    prepare_upstream_request(&mut up, &request, &rules, "00000001deadbeef").unwrap();
    up
}

#[test]
fn the_portal_receives_the_canonical_target() {
    for (raw, wire) in [
        ("/a/./b/../c?x=1", "/a/c?x=1"),
        ("/%61dmin/%2e%2e/x", "/x"),
        ("/patients/42?tab=labs", "/patients/42?tab=labs"),
        ("/", "/"),
    ] {
        let up = forwarded(raw);
        assert_eq!(
            String::from_utf8_lossy(up.raw_path()),
            wire,
            "{raw} reached the portal as something else"
        );
    }
}
