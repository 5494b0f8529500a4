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
mod tests;
