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
            match entry.parse::<IpAddr>() {
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
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn identity_headers_in_every_spelling_are_stripped() {
        let mut r = req(&[
            ("Remote-User", "admin"),
            ("X-REMOTE-USER", "admin"),
            ("x_remote_user", "admin"),
            ("X-Forwarded-User", "admin"),
            ("X-Forwarded-User", "admin2"),
            ("X-Vigie-Identity", "forged"),
            ("X-Portal-User", "admin"),
            ("X_Custom", "1"),
            ("Accept", "text/html"),
        ]);
        strip_request_headers(&mut r, &["x-portal-user".to_string()], false);
        let left: Vec<&str> = r.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["accept"]);
    }

    #[test]
    fn connection_named_headers_are_removed_but_not_framing_or_host() {
        let mut r = req(&[
            ("Host", "portal"),
            ("Connection", "keep-alive, X-Secret-Hop, host"),
            ("X-Secret-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Cookie", "a=b"),
        ]);
        strip_request_headers(&mut r, &[], false);
        assert!(r.headers.get("x-secret-hop").is_none());
        assert!(r.headers.get("connection").is_none());
        assert!(r.headers.get("keep-alive").is_none());
        assert_eq!(r.headers.get("host").unwrap(), "portal");
        assert_eq!(r.headers.get("cookie").unwrap(), "a=b");
    }

    #[test]
    fn every_hop_header_leaves_a_request_and_a_response_keeps_only_upgrade() {
        let hops = [
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("Proxy-Authenticate", "Basic"),
            ("Proxy-Authorization", "Basic eA=="),
            ("TE", "trailers"),
            ("Trailer", "x"),
            ("Upgrade", "websocket"),
        ];
        let mut r = req(&hops);
        strip_request_headers(&mut r, &[], false);
        assert_eq!(r.headers.len(), 0, "{:?}", r.headers);
        let mut resp = pingora::http::ResponseHeader::build(101, None).unwrap();
        for (k, v) in hops {
            resp.append_header(k, v).unwrap();
        }
        strip_response_hop_by_hop(&mut resp);
        let left: Vec<&str> = resp.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["upgrade"]);
    }

    #[test]
    fn underscore_names_pass_when_allowed() {
        let mut r = req(&[("X_Custom", "1"), ("x_remote_user", "admin")]);
        strip_request_headers(&mut r, &[], true);
        assert!(r.headers.get("x_custom").is_some());
        assert!(r.headers.get("x_remote_user").is_none());
    }

    #[test]
    fn spoofed_xff_from_untrusted_peer_is_ignored() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let c = client_address(peer, ["1.2.3.4"], &trusted);
        assert_eq!(c.ip, peer);
        let mut r = req(&[
            ("X-Forwarded-For", "1.2.3.4"),
            ("Forwarded", "for=1.2.3.4"),
            ("X-Real-IP", "1.2.3.4"),
        ]);
        set_forwarding_headers(&mut r, &c, false, "portal");
        assert_eq!(r.headers.get("x-forwarded-for").unwrap(), "203.0.113.9");
        assert_eq!(r.headers.get("x-real-ip").unwrap(), "203.0.113.9");
        assert!(r.headers.get("forwarded").is_none());
        assert_eq!(r.headers.get("x-forwarded-proto").unwrap(), "http");
    }

    #[test]
    fn trusted_proxy_chain_is_walked_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let c = client_address(peer, ["6.6.6.6, 198.51.100.7, 10.0.0.9"], &trusted);
        assert_eq!(c.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(
            client_address(peer, ["garbage, 10.0.0.9"], &trusted).ip,
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(peer, [], &trusted).ip, peer);
        let mut r = req(&[
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Proto", "https"),
        ]);
        set_forwarding_headers(&mut r, &c, false, "portal");
        assert_eq!(
            r.headers.get("x-forwarded-for").unwrap(),
            "198.51.100.7, 10.0.0.2"
        );
        assert_eq!(r.headers.get("x-forwarded-proto").unwrap(), "https");
    }

    /// threat model 47: a proxy that adds its own `X-Forwarded-For` line after the client's.
    #[test]
    fn several_forwarded_for_lines_are_one_list() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let r = req(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "198.51.100.7, 10.0.0.9"),
        ]);
        let c = client_address(peer, forwarded_for(&r.headers), &trusted);
        assert_eq!(c.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        // The right-most line's right-most untrusted entry, whatever the first line says.
        let r = req(&[
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-For", "6.6.6.6"),
        ]);
        let c = client_address(peer, forwarded_for(&r.headers), &trusted);
        assert_eq!(c.ip, "6.6.6.6".parse::<IpAddr>().unwrap());
        // Trusted hops on their own lines are walked past; an unparsable one ends the chain.
        let lines = ["6.6.6.6", "198.51.100.7", "10.0.0.9", "10.1.1.1"];
        let c = client_address(peer, lines, &trusted);
        assert_eq!(c.ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        let lines = ["6.6.6.6", "", "10.0.0.9"];
        assert_eq!(
            client_address(peer, lines, &trusted).ip,
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        // From an untrusted peer no line counts.
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            client_address(outsider, ["1.2.3.4", "5.6.7.8"], &trusted).ip,
            outsider
        );
    }

    #[test]
    fn several_forwarded_for_lines_reach_the_portal_as_one_chain() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let mut r = req(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-For", "198.51.100.7"),
        ]);
        let c = client_address(peer, forwarded_for(&r.headers), &trusted);
        set_forwarding_headers(&mut r, &c, false, "portal");
        let lines: Vec<_> = r.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(lines, ["6.6.6.6, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(r.headers.get("x-real-ip").unwrap(), "198.51.100.7");
        // A line that is not text drops the chain rather than a part of it.
        let mut r = req(&[("X-Forwarded-For", "6.6.6.6")]);
        r.append_header(
            "X-Forwarded-For",
            HeaderValue::from_bytes(b"198.51.100.7 \xff").unwrap(),
        )
        .unwrap();
        set_forwarding_headers(&mut r, &c, false, "portal");
        let lines: Vec<_> = r.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(lines, ["10.0.0.2"]);
    }
}
