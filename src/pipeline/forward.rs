//! Stage 5, forward: the request the portal receives and how portal failures are reported.

use pingora::http::RequestHeader;
use pingora::{Error, ErrorSource, ErrorType, Result};

use super::normalise::{set_forwarding_headers, strip_request_headers, Request};
use crate::config::HeaderRules;

/// Headers that would let a client change the method a portal acts on behind policy's back.
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Rewrite the upstream request: canonical target, clean headers, gateway-set forwarding headers.
pub fn prepare_upstream_request(
    up: &mut RequestHeader,
    request: &Request,
    rules: &HeaderRules,
    request_id: &str,
) -> Result<()> {
    let canonical = request.target.to_uri();
    // Most targets are already canonical: the bytes on the wire then stay as they are, and
    // the URI is not parsed a second time.
    if up.raw_path() != canonical.as_bytes() {
        let uri = canonical.parse::<http::Uri>().map_err(|e| {
            Error::because(ErrorType::InternalError, "canonical target is not a URI", e)
        })?;
        up.set_uri(uri);
    }
    strip_request_headers(up, &rules.strip_request, rules.allow_underscores);
    for name in METHOD_OVERRIDES {
        up.remove_header(*name);
    }
    set_forwarding_headers(up, &request.client, request.tls, &request.host);
    up.insert_header("x-request-id", request_id)?;
    Ok(())
}

/// Status to answer and the metric kind for a failed proxy attempt. Status 0 means the client
/// is gone and nothing can be written.
pub fn classify_failure(e: &Error) -> (u16, Option<&'static str>) {
    use ErrorType::*;
    match (e.esource(), e.etype()) {
        (_, HTTPStatus(code)) => (*code, None),
        (
            ErrorSource::Upstream,
            ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout,
        ) => (504, Some("timeout")),
        (
            ErrorSource::Upstream,
            ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure | InvalidCert
            | HandshakeError,
        ) => (502, Some("connect")),
        (ErrorSource::Upstream, _) => (502, Some("other")),
        (ErrorSource::Downstream, ReadTimedout) => (408, None),
        (ErrorSource::Downstream, WriteError | ReadError | ConnectionClosed | WriteTimedout) => {
            (0, None)
        }
        (ErrorSource::Downstream, _) => (400, None),
        _ => (500, None),
    }
}

#[cfg(test)]
mod tests {
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
}
