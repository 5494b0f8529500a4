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
    // The trusted proxy's word on the scheme wins over the hop from it, either way; a word
    // that is neither is not believed.
    for (said, hop_tls, told) in [
        ("http", true, "http"),
        ("https", false, "https"),
        ("gopher", true, "https"),
    ] {
        let mut r = req(&[
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Proto", said),
        ]);
        set_forwarding_headers(&mut r, &c, hop_tls, "portal");
        assert_eq!(r.headers.get("x-forwarded-proto").unwrap(), told, "{said}");
    }
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

#[test]
fn the_portal_is_told_the_host_only_when_there_is_one() {
    let c = client_address("192.0.2.1".parse().unwrap(), [], &[]);
    let mut r = req(&[("X-Forwarded-Host", "evil.example")]);
    set_forwarding_headers(&mut r, &c, true, "portal.local");
    assert_eq!(r.headers.get("x-forwarded-host").unwrap(), "portal.local");
    // An HTTP/1.0 request without Host: the client's copy is dropped, none is made up.
    let mut r = req(&[("X-Forwarded-Host", "evil.example")]);
    set_forwarding_headers(&mut r, &c, true, "");
    assert!(r.headers.get("x-forwarded-host").is_none());
}

#[test]
fn the_user_agent_is_read_as_sent_or_empty() {
    assert_eq!(
        user_agent(&req(&[("User-Agent", "Firefox/128")])),
        "Firefox/128"
    );
    assert_eq!(user_agent(&req(&[])), "");
}
