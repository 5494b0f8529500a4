//! What reaches the portal: no client identity headers, no hop-by-hop headers, forwarding
//! headers written by the gateway alone (threat model 3, 6, 7, 25).

use std::time::Duration;

use crate::common::*;

fn forwarded_head(gw: &Gateway, echo: &Echo, extra: &str) -> String {
    let before = echo.requests().len();
    let resp = get(gw.port, "/index.php", extra);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = echo.requests();
    assert_eq!(seen.len(), before + 1);
    seen.last().unwrap().to_ascii_lowercase()
}

#[test]
fn client_identity_headers_never_reach_the_portal() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(
        echo.port,
        "[headers]\nstrip_request = [\"X-Portal-Login\"]\n",
    );
    let head = forwarded_head(
        &gw,
        &echo,
        "Remote-User: admin\r\nX-Remote-User: admin\r\nx_remote_user: admin\r\nX-FORWARDED-USER: admin\r\nX-Forwarded-User: root\r\nX-Vigie-User: admin\r\nX-Portal-Login: admin\r\nX-Custom_Thing: 1\r\nAccept: text/html\r\n",
    );
    for name in [
        "remote-user",
        "remote_user",
        "x-forwarded-user",
        "x-vigie-user",
        "x-portal-login",
        "x-custom_thing",
    ] {
        assert!(!head.contains(name), "{name} reached the portal:\n{head}");
    }
    assert!(head.contains("accept: text/html"));
}

#[test]
fn connection_listed_and_hop_by_hop_headers_are_removed_both_ways() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let resp = get(gw.port, "/x", "Connection: X-Remote-User, X-Secret\r\nX-Secret: s\r\nX-Remote-User: admin\r\nKeep-Alive: timeout=9\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n");
    // The echo's answer is the head it received: the request must have reached it (an error
    // page holds none of these names either).
    assert_eq!(resp.status, 200, "{}", resp.text());
    let head = resp.text().to_ascii_lowercase();
    assert!(head.starts_with("get /x http/1.1\r\n"), "{head}");
    for name in [
        "x-secret",
        "x-remote-user",
        "keep-alive",
        "proxy-authorization",
    ] {
        assert!(!head.contains(name), "{name} reached the portal:\n{head}");
    }
    // The portal's own Connection-listed header does not reach the browser.
    assert!(
        resp.header("x-upstream-secret").is_none(),
        "{:?}",
        resp.headers
    );
}

#[test]
fn spoofed_forwarding_headers_from_untrusted_peers_are_replaced() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let head = forwarded_head(&gw, &echo, "X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Proto: https\r\n");
    assert!(head.contains("x-forwarded-for: 127.0.0.1\r\n"), "{head}");
    assert!(head.contains("x-real-ip: 127.0.0.1\r\n"), "{head}");
    assert!(head.contains("x-forwarded-proto: http\r\n"), "{head}");
    assert!(!head.contains("6.6.6.6"), "{head}");
}

#[test]
fn trusted_proxies_are_believed_and_extended() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(
        echo.port,
        "[network]\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
    );
    let head = forwarded_head(&gw, &echo, "X-Forwarded-For: 198.51.100.7\r\n");
    assert!(
        head.contains("x-forwarded-for: 198.51.100.7, 127.0.0.1\r\n"),
        "{head}"
    );
    assert!(head.contains("x-real-ip: 198.51.100.7\r\n"), "{head}");
    // threat model 47: the client's own line first, the proxy's after it: one list, read whole.
    let head = forwarded_head(
        &gw,
        &echo,
        "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.7\r\n",
    );
    assert!(head.contains("x-real-ip: 198.51.100.7\r\n"), "{head}");
    assert!(
        head.contains("x-forwarded-for: 6.6.6.6, 198.51.100.7, 127.0.0.1\r\n"),
        "{head}"
    );
}

#[test]
fn method_override_headers_are_dropped_and_request_id_is_shared() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let resp = get(
        gw.port,
        "/x",
        "X-HTTP-Method-Override: DELETE\r\nX-Method-Override: DELETE\r\n",
    );
    let head = resp.text().to_ascii_lowercase();
    assert!(!head.contains("override"), "{head}");
    let id = resp.header("x-request-id").unwrap().to_string();
    assert!(head.contains(&format!("x-request-id: {id}")), "{head}");
}
