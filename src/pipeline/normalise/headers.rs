//! Header hygiene: which client headers a portal may see, and the forwarding headers
//! that only the gateway writes (threat model 3, 6, 7).

use std::borrow::Cow;
use std::net::IpAddr;

use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use pingora::http::RequestHeader;

pub use crate::http::{is_media_type, FORM};

/// Identity headers a portal might trust. Compared after lower-casing and folding `_` to `-`,
/// so `X_Remote_User` and `x-remote-user` are caught alike.
const IDENTITY_HEADERS: &[&str] = &[
    "remote-user",
    "x-remote-user",
    "x-forwarded-user",
    "x-remote-group",
    "x-remote-groups",
    "x-forwarded-groups",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-user",
    "x-user",
    "x-username",
    "x-webauth-user",
    "auth-user",
];

/// Headers that describe one hop and never travel further. Kept as parsed names: they are
/// removed from every response, and a name given as text is parsed again at each removal.
const HOP_BY_HOP: [HeaderName; 8] = [
    HeaderName::from_static("connection"),
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("proxy-authenticate"),
    HeaderName::from_static("proxy-authorization"),
    HeaderName::from_static("te"),
    HeaderName::from_static("trailer"),
    http::header::UPGRADE,
];

/// Forwarding headers: believed only from trusted proxies, always rewritten by the gateway.
const FORWARDING: [HeaderName; 5] = [
    HeaderName::from_static("forwarded"),
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-real-ip"),
];

/// A header name with `_` folded to `-` (names are already lower case); allocates only when
/// there is something to fold.
fn fold(name: &str) -> Cow<'_, str> {
    if name.contains('_') {
        Cow::Owned(name.replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Names listed in `Connection:`, which are hop-by-hop too, except `protected` ones:
/// those frame or route the message, and an attacker could otherwise make the gateway delete them.
fn connection_tokens(headers: &http::HeaderMap, protected: &[&str]) -> Vec<String> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && !protected.contains(&t.as_str()))
        .collect()
}

/// Remove hop-by-hop headers (including those named in `Connection:`), identity headers,
/// configured extras and, unless allowed, any name containing `_`.
pub fn strip_request_headers(req: &mut RequestHeader, extra: &[String], allow_underscores: bool) {
    let listed = connection_tokens(
        &req.headers,
        &["host", "content-length", "transfer-encoding"],
    );
    let doomed: Vec<String> = req
        .headers
        .keys()
        .map(|n| n.as_str())
        .filter(|name| {
            let folded = fold(name);
            let folded = folded.as_ref();
            HOP_BY_HOP.iter().any(|h| h == name)
                || listed.iter().any(|l| fold(l) == folded)
                || IDENTITY_HEADERS.contains(&folded)
                || folded.starts_with("x-vigie-")
                || extra.iter().any(|e| e == folded)
                || (!allow_underscores && name.contains('_'))
        })
        .map(str::to_string)
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }
}

/// Remove hop-by-hop headers from a portal's response.
pub fn strip_response_hop_by_hop(headers: &mut pingora::http::ResponseHeader) {
    let listed = connection_tokens(&headers.headers, &["content-length", "transfer-encoding"]);
    // `Upgrade` stays on a response: it is how a portal answers a protocol switch (101).
    for name in HOP_BY_HOP.iter().filter(|h| **h != http::header::UPGRADE) {
        headers.remove_header(name);
    }
    for name in &listed {
        headers.remove_header(name.as_str());
    }
}

/// The client as the gateway sees it, after deciding whom to believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress {
    /// The address budgets and logs use.
    pub ip: IpAddr,
    /// The direct TCP peer.
    pub peer: IpAddr,
    /// Whether the peer is a configured trusted proxy.
    pub peer_trusted: bool,
}

/// Find the client address: the peer itself, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
///
/// `xff` holds every `X-Forwarded-For` line in order: a proxy may add its own line rather than
/// extend the client's, and the lines are one list (RFC 9110 5.3). Reading only the first line
/// would let the client name its own address (threat model 47).
pub fn client_address<'a, I>(peer: IpAddr, xff: I, trusted: &[IpNet]) -> ClientAddress
where
    I: IntoIterator<Item = &'a str>,
    I::IntoIter: DoubleEndedIterator,
{
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer_trusted = is_trusted(&peer);
    let mut ip = peer;
    if peer_trusted {
        let entries = xff.into_iter().rev().flat_map(|line| line.rsplit(','));
        for entry in entries.map(str::trim) {
            match entry.parse::<IpAddr>().map(|a| a.to_canonical()) {
                Ok(hop) => {
                    ip = hop;
                    if !is_trusted(&hop) {
                        break;
                    }
                }
                // An unparsable hop ends the chain we can believe.
                Err(_) => break,
            }
        }
    }
    ClientAddress {
        ip,
        peer,
        peer_trusted,
    }
}

/// Every `X-Forwarded-For` line, in order; a line that is not text reads as "" (an unparsable
/// hop, which ends the chain [`client_address`] believes).
pub fn forwarded_for(headers: &http::HeaderMap) -> impl DoubleEndedIterator<Item = &str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
}

/// Whether a (trusted) proxy says the client connected over https: one `X-Forwarded-Proto`
/// line, exactly `https` (a chain or a second line is not a clear answer).
pub fn forwarded_https(headers: &http::HeaderMap) -> bool {
    let mut lines = headers.get_all("x-forwarded-proto").iter();
    matches!((lines.next(), lines.next()), (Some(v), None) if v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Rewrite the forwarding headers the portal receives. Client-sent copies survive only
/// when the peer is a trusted proxy, and then the peer is appended to the chain.
pub fn set_forwarding_headers(
    req: &mut RequestHeader,
    client: &ClientAddress,
    tls: bool,
    host: &str,
) {
    // Every line, joined in order (threat model 47); a line that is not text drops the chain.
    let prior_xff = req
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<Vec<&str>>>()
        .filter(|lines| !lines.is_empty())
        .map(|lines| lines.join(", "));
    let prior_https = req
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| match v.as_bytes() {
            b"https" => Some(true),
            b"http" => Some(false),
            _ => None,
        });
    for name in &FORWARDING {
        req.remove_header(name);
    }
    let peer = client.peer.to_string();
    let real_ip = if client.ip == client.peer {
        peer.clone()
    } else {
        client.ip.to_string()
    };
    let (xff, https) = match (client.peer_trusted, prior_xff) {
        (true, Some(chain)) => (format!("{chain}, {peer}"), prior_https.unwrap_or(tls)),
        _ => (peer, tls),
    };
    let proto = HeaderValue::from_static(if https { "https" } else { "http" });
    // Values come from parsed addresses and a validated host: insert cannot fail on them.
    let _ = req.insert_header("x-forwarded-for", xff);
    let _ = req.insert_header("x-forwarded-proto", proto);
    let _ = req.insert_header("x-real-ip", real_ip);
    if !host.is_empty() {
        let _ = req.insert_header("x-forwarded-host", host);
    }
}

/// The request's `User-Agent`, or "" (logs, sessions and the detector read it).
pub fn user_agent(req: &pingora::http::RequestHeader) -> &str {
    req.headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests;
