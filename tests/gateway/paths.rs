//! Path normalisation seen from the portal's side (threat model 23): every bypass either
//! arrives as the canonical `/admin` or is refused without reaching the portal.

use std::time::Duration;

use crate::common::*;

fn request_line_seen(echo: &Echo, before: usize) -> Option<String> {
    let seen = echo.requests();
    (seen.len() > before).then(|| seen.last().unwrap().lines().next().unwrap().to_string())
}

#[test]
fn bypass_spellings_reach_the_portal_as_admin_or_are_refused() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let canonical = [
        "//admin",
        "/%61dmin",
        "/admin;x",
        "/pub/%2e%2e/admin",
        "/pub/../admin",
        "/./admin",
        "/ADMIN/../admin",
    ];
    for target in canonical {
        let before = echo.requests().len();
        let resp = get(gw.port, target, "");
        assert_eq!(resp.status, 200, "{target}");
        assert_eq!(
            request_line_seen(&echo, before).as_deref(),
            Some("GET /admin HTTP/1.1"),
            "{target}"
        );
    }
    let refused = [
        "/%2561dmin",
        "/admin%2f",
        "/admin%2F..%2F",
        "/%5cadmin",
        "/pub\\admin",
        "/%C0%AEadmin",
        "/%c0%af",
        "/a%00",
        "/a%zz",
    ];
    for target in refused {
        let before = echo.requests().len();
        let resp = get(gw.port, target, "");
        assert_eq!(resp.status, 400, "{target}");
        assert!(resp
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(
            request_line_seen(&echo, before),
            None,
            "{target} was forwarded"
        );
    }
    // `/admin/..;/` climbs out of /admin: it is `/` for the gateway and the portal alike.
    let before = echo.requests().len();
    get(gw.port, "/admin/..;/", "");
    assert_eq!(
        request_line_seen(&echo, before).as_deref(),
        Some("GET / HTTP/1.1")
    );
}

#[test]
fn absolute_form_targets_are_routed_by_their_authority_and_must_match_host() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let before = echo.requests().len();
    let ok = raw(gw.port, b"GET http://portal.test/%61dmin?x=1 HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(
        request_line_seen(&echo, before).as_deref(),
        Some("GET /admin?x=1 HTTP/1.1")
    );
    let before = echo.requests().len();
    let mismatch = raw(
        gw.port,
        b"GET http://other.test/admin HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(mismatch.status, 400);
    assert_eq!(request_line_seen(&echo, before), None);
}

#[test]
fn hosts_select_portals_and_unknown_hosts_are_refused() {
    let ehr = Echo::start(Duration::ZERO);
    let lab = Echo::start(Duration::ZERO);
    let portals = format!(
        "[[portal]]\nname = \"ehr\"\nhosts = [\"ehr.test\"]\nupstream = \"127.0.0.1:{}\"\n\n[[portal]]\nname = \"lab\"\nhosts = [\"lab.test\", \"labo.test\"]\nupstream = \"127.0.0.1:{}\"\n",
        ehr.port, lab.port
    );
    let gw = start_gateway_with(&portals, "");
    let req = |host: &str| {
        raw(
            gw.port,
            format!("GET /r HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(req("EHR.test:8080").status, 200);
    assert_eq!(req("labo.test").status, 200);
    assert_eq!(ehr.requests().len(), 1);
    assert_eq!(lab.requests().len(), 1);
    let unknown = req("elsewhere.test");
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("Page introuvable"));
    assert_eq!(ehr.requests().len() + lab.requests().len(), 2);
}

#[test]
fn trace_and_gateway_paths_are_answered_by_the_gateway() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let trace = raw(
        gw.port,
        b"TRACE / HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(trace.status, 405);
    let css = get(gw.port, "/.vigie/vigie.css", "");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(get(gw.port, "/.vigie/other", "").status, 404);
    assert!(echo.requests().is_empty());
}
