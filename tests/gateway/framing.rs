//! Framing attacks and limits (threat model 1, 2, 4, 5): refused, nothing forwarded, the
//! connection closed where what follows could be read as another request, the process serving.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::*;

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: p\r\n\r\n";

/// Send `payload` on one connection; expect an answer with one of the `expected` statuses (a
/// connection dropped without one fails: the client is owed a reason), a closed connection,
/// and that the portal never saw anything.
fn assert_refused_and_closed(gw: &Gateway, echo: &Echo, payload: &str, expected: &[u16]) {
    let mut conn = Conn::open(gw.port);
    conn.send(payload.as_bytes());
    let resp = conn
        .read_response()
        .unwrap_or_else(|| panic!("{payload:?}: dropped without an answer"));
    assert!(
        expected.contains(&resp.status),
        "{payload:?} got {}",
        resp.status
    );
    assert!(conn.is_closed(), "{payload:?}: connection left open");
    assert!(
        echo.requests().is_empty(),
        "{payload:?} reached the portal: {:?}",
        echo.requests()
    );
    // Still serving.
    assert_eq!(get(gw.port, "/.vigie/vigie.css", "").status, 200);
}

#[test]
fn smuggling_shapes_are_refused_and_close_the_connection() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let cases = [
        format!("POST / HTTP/1.1\r\nHost: p\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: \r\n chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nContent-Length: +37\r\n\r\n{SMUGGLED}"),
        format!("POST / HTTP/1.1\r\nHost: p\r\nContent-Length: -1\r\n\r\n{SMUGGLED}"),
        format!("GET / HTTP/1.1\nHost: p\n\n{SMUGGLED}"),
        format!("GET / HTTP/1.1\r\nHost: p\r\nX-A: a\0b\r\n\r\n{SMUGGLED}"),
        format!("GET / HTTP/1.1\r\nHost: p\r\nX-A: a\rb\r\n\r\n{SMUGGLED}"),
        format!("GET / HTTP/1.1\r\nHost: p\r\nHost: q\r\n\r\n{SMUGGLED}"),
        format!("GET / HTTP/1.0\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"),
    ];
    for payload in &cases {
        assert_refused_and_closed(&gw, &echo, payload, &[400]);
    }
}

#[test]
fn an_early_local_answer_never_parses_the_body_as_a_request() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    // /.vigie/unknown is answered 404 by the gateway without reading the body.
    let payload = format!(
        "POST /.vigie/unknown HTTP/1.1\r\nHost: p\r\nContent-Length: {}\r\n\r\n{SMUGGLED}",
        SMUGGLED.len()
    );
    let mut conn = Conn::open(gw.port);
    conn.send(payload.as_bytes());
    assert_eq!(conn.read_response().unwrap().status, 404);
    // Either the connection closes, or the next thing read is not a response to /smuggled.
    if let Some(next) = conn.read_response() {
        panic!(
            "body was parsed as a request: {} {:?}",
            next.status,
            next.text()
        );
    }
    assert!(echo.requests().is_empty());
}

#[test]
fn oversized_heads_get_431_and_414_and_the_gateway_keeps_serving() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "");
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: p\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_refused_and_closed(&gw, &echo, &big_header, &[431]);
    let many = format!(
        "GET / HTTP/1.1\r\nHost: p\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    assert_refused_and_closed(&gw, &echo, &many, &[431]);
    // Past the HTTP parser's own ceiling of 256 headers the parser refuses first, with 400.
    let too_many = format!(
        "GET / HTTP/1.1\r\nHost: p\r\n{}\r\n",
        (0..500)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    assert_refused_and_closed(&gw, &echo, &too_many, &[400, 431]);
    let long_url = format!("GET /{} HTTP/1.1\r\nHost: p\r\n\r\n", "a".repeat(16 * 1024));
    assert_refused_and_closed(&gw, &echo, &long_url, &[414]);
}

#[test]
fn oversized_and_slow_bodies_are_cut() {
    let echo = Echo::start(Duration::ZERO);
    // The portal's read timeout is longer than the client's: the slow party here is the client.
    let portal = format!(
        "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 10000\n",
        echo.port
    );
    let gw = start_gateway_with(
        &portal,
        "[limits]\nmax_body_bytes = 1000\nclient_body_timeout_seconds = 2\n",
    );
    // Declared too large: refused before reading.
    let big = "POST /upload HTTP/1.1\r\nHost: p\r\nContent-Length: 5000\r\n\r\n";
    assert_refused_and_closed(&gw, &echo, big, &[413]);

    // Silent body: headers, then nothing. Cut by the body read timeout.
    let started = Instant::now();
    let mut conn = Conn::open(gw.port);
    conn.send(b"POST /upload HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\n");
    let resp = conn.read_response();
    assert!(
        resp.as_ref().is_none_or(|r| r.status == 408),
        "silent body got {resp:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "silent body held {:?}",
        started.elapsed()
    );

    // Slow POST: one byte every 300 ms never finishes a 100-byte body; cut by total time.
    let stream = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    writer
        .write_all(b"POST /upload HTTP/1.1\r\nHost: p\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let dripper = std::thread::spawn(move || {
        for _ in 0..40 {
            if writer.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let resp = Conn::from_stream(stream).read_response();
    let took = started.elapsed();
    assert!(
        resp.as_ref().is_none_or(|r| r.status == 408),
        "slow body got {resp:?}"
    );
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
        "slow body held {took:?}"
    );
    dripper.join().unwrap();
    assert!(
        echo.requests().iter().all(|r| !r.contains("/upload")),
        "a partial upload reached the portal"
    );
}

#[test]
fn slowloris_heads_are_cut_at_the_head_deadline_however_slowly_they_drip() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "[limits]\nhead_timeout_seconds = 3\n");
    // A byte every second: each read is quick, the head never whole. A per-read timeout (what
    // Pingora has, 60 s) never fires; the deadline on the whole head does.
    let stream = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    writer
        .write_all(b"GET / HTTP/1.1\r\nHost: p\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let dripper = std::thread::spawn(move || {
        for _ in 0..20 {
            if writer.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut conn = Conn::from_stream(stream);
    while !conn.is_closed() {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "a dripping head kept its connection for {:?}",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "cut after {took:?}: not by the head deadline"
    );
    dripper.join().unwrap();
    assert!(echo.requests().is_empty());
}
