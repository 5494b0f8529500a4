//! Stage 1, normalise: refuse what could be read two ways, then describe the request once,
//! canonically, for every later stage: target, host, client address, scheme.

pub mod framing;
pub mod headers;

pub use crate::http::{normalise_target, Target, TargetError};
pub use framing::{check_head, FramingError, HeadLimits};
pub use headers::{
    client_address, set_forwarding_headers, strip_request_headers, strip_response_hop_by_hop,
    ClientAddress,
};

use std::net::IpAddr;

use http::Method;
use ipnet::IpNet;
use pingora::proxy::Session;

use super::refusal::{Reason, Refusal};
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
pub fn run(session: &Session, limits: &Limits, trusted: &[IpNet]) -> Result<Request, Refusal> {
    let head_limits = HeadLimits {
        max_url_bytes: limits.max_url_bytes,
        max_header_bytes: limits.max_header_bytes,
        max_header_count: limits.max_header_count,
    };
    if let Some(h1) = session.as_downstream().as_http1() {
        check_head(&h1.get_headers_raw_bytes(), head_limits)
            .map_err(|e| Refusal::framing(e.status(), Reason::Framing(e)))?;
    }
    let req = session.req_header();
    // Only the methods a portal serves: TRACE and CONNECT never, and no spelling (`get`,
    // `PROPFIND`) that policy rules could fail to recognise (threat model 25).
    if !matches!(
        req.method.as_str(),
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS"
    ) {
        return Err(Refusal::new(405, Reason::MethodNotAllowed));
    }
    let raw_target = std::str::from_utf8(req.raw_path())
        .map_err(|_| Refusal::new(400, Reason::TargetNotUtf8))?;
    let target = normalise_target(raw_target).map_err(|e| Refusal::new(400, target_label(e)))?;
    let host = host_of(req, target.authority.as_deref())?;
    let peer: IpAddr = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
        // On a dual-stack listener an IPv4 client arrives as `::ffff:a.b.c.d`: as IPv4, so
        // rules, trusted proxies and budgets written for IPv4 networks apply to it.
        .to_canonical();
    let client = client_address(peer, headers::forwarded_for(&req.headers), trusted);
    // TLS offload: a trusted proxy that says the client came over https is believed, so the
    // cookie is `__Host-`/`Secure` and HSTS is sent, as on a TLS listener.
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some())
        || (client.peer_trusted && headers::forwarded_https(&req.headers));
    Ok(Request {
        method: req.method.clone(),
        target,
        host,
        client,
        tls,
    })
}

fn target_label(e: TargetError) -> Reason {
    match e {
        TargetError::Empty | TargetError::NotOriginForm => Reason::BadTarget,
        TargetError::UserInfo => Reason::UserinfoInTarget,
        TargetError::Fragment => Reason::FragmentInTarget,
        TargetError::Backslash | TargetError::EncodedSeparator => Reason::AmbiguousSeparator,
        TargetError::ControlByte => Reason::ControlByte,
        TargetError::BadPercent | TargetError::DoubleEncoding => Reason::AmbiguousEncoding,
        TargetError::InvalidUtf8 => Reason::InvalidUtf8,
    }
}

/// One Host, agreeing with an absolute-form authority if there is one.
fn host_of(req: &pingora::http::RequestHeader, authority: Option<&str>) -> Result<String, Refusal> {
    let mut hosts = req.headers.get_all("host").iter();
    let header = hosts
        .next()
        .map(|v| v.to_str().map(str::to_ascii_lowercase));
    if hosts.next().is_some() {
        return Err(Refusal::framing(400, Reason::DuplicateHost));
    }
    let header = match header {
        Some(Ok(h)) => Some(h),
        Some(Err(_)) => return Err(Refusal::new(400, Reason::BadHost)),
        None => None,
    };
    let chosen = match (authority, header.as_deref()) {
        (Some(a), Some(h)) if a != h => return Err(Refusal::framing(400, Reason::HostMismatch)),
        (Some(a), _) => a.to_string(),
        (None, Some(h)) => h.to_string(),
        (None, None) if req.version == http::Version::HTTP_11 => {
            return Err(Refusal::new(400, Reason::MissingHost))
        }
        (None, None) => String::new(),
    };
    strip_port(&chosen).ok_or_else(|| Refusal::new(400, Reason::BadHost))
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
mod tests;
