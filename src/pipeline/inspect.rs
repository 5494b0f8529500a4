//! Stage 6, inspect response: what the portal answers is cleaned before the browser sees it.

use pingora::http::ResponseHeader;

use super::normalise::strip_response_hop_by_hop;

/// Apply response hygiene: hop-by-hop headers out, HSTS in on TLS listeners, the request id on.
pub fn on_response(resp: &mut ResponseHeader, hsts_max_age: Option<u64>, request_id: &str) {
    strip_response_hop_by_hop(resp);
    if let Some(age) = hsts_max_age.filter(|a| *a > 0) {
        let _ = resp.insert_header(
            "strict-transport-security",
            format!("max-age={age}; includeSubDomains"),
        );
    }
    let _ = resp.insert_header("x-request-id", request_id);
}

#[cfg(test)]
mod tests {
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
}
