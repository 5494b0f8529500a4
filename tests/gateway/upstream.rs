//! A portal that is down or slow (threat model 31): a clean 502/504 page, no hang, no internal
//! address in what the browser sees; the failure counted in metrics and readiness.

use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn portal_down_gives_a_clean_502_and_not_ready() {
    let dead_port = free_port();
    let gw = start_gateway(dead_port, "");
    let resp = get(gw.port, "/index.php?m=dPpatients", "");
    assert_eq!(resp.status, 502);
    let page = resp.text();
    assert!(page.contains("Portail indisponible") && page.contains("Portal unavailable"));
    // A way out: the same address again (a GET), and no sign-out offered to a visitor who has
    // no session.
    assert!(
        page.replace("&#x2f;", "/")
            .contains("id=\"retry\" href=\"/index.php?m=dPpatients\""),
        "{page}"
    );
    assert!(!page.contains("id=\"sign-out\""), "{page}");
    assert!(
        !page.contains("127.0.0.1") && !page.contains(&dead_port.to_string()),
        "internal address leaked: {page}"
    );
    for (k, v) in &resp.headers {
        assert!(
            !v.contains(&dead_port.to_string()),
            "internal address leaked in {k}: {v}"
        );
    }
    let metrics = get(gw.admin_port, "/metrics", "").text();
    assert!(
        metrics.contains("vigie_upstream_errors_total{kind=\"connect\",portal=\"test\"} 1"),
        "{metrics}"
    );
    // Said in /readyz, without taking the gateway out of rotation (every replica shares the
    // portal: they would all drop out together).
    let ready = get(gw.admin_port, "/readyz", "");
    assert_eq!(ready.status, 200);
    assert!(ready.text().contains("\"test\":\"down\""));
    assert!(ready.text().contains("\"status\":\"degraded\""));
    assert_eq!(get(gw.admin_port, "/healthz", "").status, 200);
    let post = raw(
        gw.port,
        b"POST /index.php?m=dPpatients HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(
        !post.text().contains("id=\"retry\""),
        "a form is never replayed by a link"
    );
}

#[test]
fn slow_portal_gives_504_within_the_read_timeout() {
    let echo = Echo::start(Duration::from_secs(4));
    let gw = start_gateway(echo.port, "");
    let started = Instant::now();
    let resp = get(gw.port, "/slow", "");
    let took = started.elapsed();
    assert_eq!(resp.status, 504);
    assert!(resp.text().contains("Portail trop lent"));
    assert!(
        took < Duration::from_millis(3500),
        "waited {took:?} for a 1.5 s read timeout"
    );
    let metrics = get(gw.admin_port, "/metrics", "").text();
    assert!(
        metrics.contains("vigie_upstream_errors_total{kind=\"timeout\",portal=\"test\"} 1"),
        "{metrics}"
    );
}

#[test]
fn metrics_count_requests_by_status_class() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    for _ in 0..3 {
        assert_eq!(get(gw.port, "/ok", "").status, 200);
    }
    assert_eq!(get(gw.port, "/%2561", "").status, 400);
    let metrics = metrics_with(
        gw.admin_port,
        &[
            "vigie_requests_total{class=\"2xx\",portal=\"test\"} 3",
            "vigie_rejected_requests_total{reason=\"ambiguous_encoding\"} 1",
            "vigie_request_duration_seconds_count{portal=\"test\"} 3",
        ],
    );
    assert!(
        metrics.contains("vigie_requests_total{class=\"2xx\",portal=\"test\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_rejected_requests_total{reason=\"ambiguous_encoding\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_request_duration_seconds_count{portal=\"test\"} 3"),
        "{metrics}"
    );
    assert_eq!(get(gw.admin_port, "/readyz", "").status, 200);
}
