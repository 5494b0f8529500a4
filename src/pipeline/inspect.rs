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
mod tests;
