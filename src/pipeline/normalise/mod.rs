//! Stage 1, normalise: refuse what could be read two ways, then describe the request once,
//! canonically, for every later stage: target, host, client address, scheme.

mod framing;
pub mod headers;
mod target;

pub use framing::{check_head, FramingError, HeadLimits};
pub use headers::{
    client_address, set_forwarding_headers, strip_request_headers, strip_response_hop_by_hop,
    ClientAddress,
};
pub use target::{normalise as normalise_target, Target, TargetError};

use std::net::IpAddr;

use http::Method;
use ipnet::IpNet;
use pingora::proxy::Session;

use super::respond::Rejection;
use crate::config::Limits;

/// The request as every later stage reads it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub target: Target,
    /// Lower-case host name without port.
    pub host: String,
    pub client: ClientAddress,
    pub tls: bool,
}

/// Inspect the raw head and build the canonical [`Request`].
pub fn run(session: &Session, limits: &Limits, trusted: &[IpNet]) -> Result<Request, Rejection> {
    let head_limits = HeadLimits {
        max_url_bytes: limits.max_url_bytes,
        max_header_bytes: limits.max_header_bytes,
        max_header_count: limits.max_header_count,
    };
    if let Some(h1) = session.as_downstream().as_http1() {
        check_head(&h1.get_headers_raw_bytes(), head_limits)
            .map_err(|e| Rejection::framing(e.status(), e.label()))?;
    }
    let req = session.req_header();
    // Only the methods a portal serves: TRACE and CONNECT never, and no spelling (`get`,
    // `PROPFIND`) that policy rules could fail to recognise (ATTACKS.md 25).
    if !matches!(
        req.method.as_str(),
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
    ) {
        return Err(Rejection::new(405, "method_not_allowed"));
    }
    let raw_target =
        std::str::from_utf8(req.raw_path()).map_err(|_| Rejection::new(400, "target_not_utf8"))?;
    let target = normalise_target(raw_target).map_err(|e| Rejection::new(400, target_label(e)))?;
    let host = host_of(req, target.authority.as_deref())?;
    let peer: IpAddr = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let client = client_address(peer, headers::forwarded_for(&req.headers), trusted);
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    Ok(Request {
        method: req.method.clone(),
        target,
        host,
        client,
        tls,
    })
}

fn target_label(e: TargetError) -> &'static str {
    match e {
        TargetError::Empty | TargetError::NotOriginForm => "bad_target",
        TargetError::UserInfo => "userinfo_in_target",
        TargetError::Fragment => "fragment_in_target",
        TargetError::Backslash | TargetError::EncodedSeparator => "ambiguous_separator",
        TargetError::ControlByte => "control_byte",
        TargetError::BadPercent | TargetError::DoubleEncoding => "ambiguous_encoding",
        TargetError::InvalidUtf8 => "invalid_utf8",
    }
}

/// One Host, agreeing with an absolute-form authority if there is one.
fn host_of(
    req: &pingora::http::RequestHeader,
    authority: Option<&str>,
) -> Result<String, Rejection> {
    let mut hosts = req.headers.get_all("host").iter();
    let header = hosts
        .next()
        .map(|v| v.to_str().map(str::to_ascii_lowercase));
    if hosts.next().is_some() {
        return Err(Rejection::framing(400, "duplicate_host"));
    }
    let header = match header {
        Some(Ok(h)) => Some(h),
        Some(Err(_)) => return Err(Rejection::new(400, "bad_host")),
        None => None,
    };
    let chosen = match (authority, header.as_deref()) {
        (Some(a), Some(h)) if a != h => return Err(Rejection::framing(400, "host_mismatch")),
        (Some(a), _) => a.to_string(),
        (None, Some(h)) => h.to_string(),
        (None, None) if req.version == http::Version::HTTP_11 => {
            return Err(Rejection::new(400, "missing_host"))
        }
        (None, None) => String::new(),
    };
    strip_port(&chosen).ok_or_else(|| Rejection::new(400, "bad_host"))
}

fn strip_port(host: &str) -> Option<String> {
    let name = if let Some(rest) = host.strip_prefix('[') {
        let end = rest.find(']')?;
        &host[..end + 2]
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b));
    ok.then(|| name.to_string())
}

#[cfg(test)]
mod tests {
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
        assert_eq!(host_of(&r, Some("a")).unwrap_err().reason, "host_mismatch");
        r.insert_header("Host", "A").unwrap();
        assert_eq!(host_of(&r, Some("a")).unwrap(), "a");
    }
}
