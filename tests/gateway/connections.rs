//! Connection hygiene below HTTP (threat model 41): a deadline on the whole request head and a
//! cap on the connections one address holds, while other clients keep being served.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::*;

/// Wait up to `limit` for the server to close `s`: true on EOF or reset, false if it stays
/// open; panics if it sends anything (a slow or refused client must never be answered).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!(
            "the server answered: {}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

/// Whether a GET on a new connection is answered 200 (false if the connection is refused).
fn served(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    if s.write_all(b"GET /x HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    Conn::from_stream(s)
        .read_response()
        .is_some_and(|r| r.status == 200)
}

/// threat model 41: a head sent a byte every 2 s, and a socket that never sends, are closed by
/// the head deadline (3 s here), never answered; a normal client is served all along.
#[test]
fn a_trickled_head_and_a_silent_socket_are_cut_while_others_are_served() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "[limits]\nhead_timeout_seconds = 3\n");
    let started = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let mut slow = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let head = b"GET /x HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n";
    let mut cut = None;
    for byte in head {
        if slow.write_all(&[*byte]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        assert!(served(gw.port), "a normal client was not served");
        // Two seconds between bytes, watching for the close meanwhile.
        if closed_within(&mut slow, Duration::from_secs(2)) {
            cut = Some(started.elapsed());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "still open");
    }
    let cut = cut.expect("the whole head went through");
    assert!(
        cut >= Duration::from_secs(3) && cut < Duration::from_secs(7),
        "cut after {cut:?}"
    );
    // The silent socket was opened at the same time: its deadline has passed too.
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)),
        "a socket that sends nothing is still open after {:?}",
        started.elapsed()
    );
    assert!(served(gw.port));
    let metrics = metrics_with(
        gw.admin_port,
        &["vigie_refused_connections_total{reason=\"head_timeout\"} 2"],
    );
    assert!(
        metrics.contains("vigie_refused_connections_total{reason=\"head_timeout\"} 2"),
        "{metrics}"
    );
}

/// A connection from 127.0.0.2 (any 127/8 address is local on Linux) to the gateway.
fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((source, 0))).unwrap();
        let stream = socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

/// threat model 41: one address holding its cap of idle connections gets no more, at once;
/// another address still gets in; closing some frees places.
#[test]
fn one_address_gets_its_connection_cap_and_others_still_connect() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(
        echo.port,
        "[limits]\nmax_connections_per_peer = 20\nhead_timeout_seconds = 60\n",
    );
    let mut idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", gw.port)).unwrap())
        .collect();
    // Connecting completes in the kernel; give the gateway a moment to count them all.
    std::thread::sleep(Duration::from_millis(500));
    let mut over = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut over, Duration::from_secs(3)),
        "the 21st connection is open"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "not at once");
    // Another client address is not affected.
    let mut other = Conn::from_stream(connect_from([127, 0, 0, 2], gw.port));
    other.send(b"GET /x HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n");
    assert_eq!(other.read_response().map(|r| r.status), Some(200));
    assert!(!served(gw.port), "127.0.0.1 is still at its cap");
    // The twenty are still open: only the extra one was refused.
    for s in idle.iter_mut() {
        assert!(!closed_within(s, Duration::from_millis(10)));
    }
    idle.truncate(15);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !served(gw.port) {
        assert!(Instant::now() < deadline, "no place freed by closing five");
        std::thread::sleep(Duration::from_millis(100));
    }
    let needle = "vigie_refused_connections_total{reason=\"peer_cap\"}";
    let metrics = metrics_with(gw.admin_port, &[needle]);
    assert!(metrics.contains(needle), "{metrics}");
}

/// threat model 41 on a kept-alive connection: the wait between requests is not head time, and
/// each next head has its own deadline, counted from its first byte.
#[test]
fn each_kept_alive_request_gets_its_own_head_deadline() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_gateway(echo.port, "[limits]\nhead_timeout_seconds = 2\n");
    let mut c = Conn::open(gw.port);
    let get = b"GET /x HTTP/1.1\r\nHost: portal.test\r\n\r\n";
    c.send(get);
    assert_eq!(c.read_response().map(|r| r.status), Some(200));
    // Idle longer than the head deadline, then a prompt head: served.
    std::thread::sleep(Duration::from_secs(3));
    c.send(get);
    assert_eq!(c.read_response().map(|r| r.status), Some(200));
    // A next head that stalls after its first byte is cut.
    c.send(b"G");
    let started = Instant::now();
    assert!(c.is_closed(), "a stalled second head is still open");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// threat model 41 behind a trusted proxy: the proxy's connections are not capped (all users
/// come through them), its clients are, by requests in flight per resolved address.
#[test]
fn clients_behind_a_trusted_proxy_are_capped_one_by_one() {
    // Slow, but well within the test gateway's 1.5 s upstream read timeout.
    let echo = Echo::start(Duration::from_millis(900));
    let gw = start_gateway(
        echo.port,
        "[network]\ntrusted_proxies = [\"127.0.0.0/8\"]\n[limits]\nmax_connections_per_peer = 3\n",
    );
    let ask = |client: &str| {
        let mut c = Conn::open(gw.port);
        c.send(
            format!("GET /x HTTP/1.1\r\nHost: portal.test\r\nX-Forwarded-For: {client}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        c
    };
    // Three slow requests of one client through the proxy: all in flight at once.
    let mut slow: Vec<Conn> = (0..3).map(|_| ask("203.0.113.7")).collect();
    std::thread::sleep(Duration::from_millis(200));
    let fourth = ask("203.0.113.7").read_response().map(|r| r.status);
    assert_eq!(fourth, Some(429), "a fourth request of the same client");
    // Another client through the same proxy (which holds more than 3 connections) is served.
    let other = ask("198.51.100.9").read_response().map(|r| r.status);
    assert_eq!(other, Some(200));
    for c in slow.iter_mut() {
        assert_eq!(c.read_response().map(|r| r.status), Some(200));
    }
    // Their places are free again (each once its access line is written, just after its
    // answer has gone).
    wait_for("the places freed", || {
        match ask("203.0.113.7").read_response().map(|r| r.status) {
            Some(200) => Some(()),
            Some(429) => None,
            other => panic!("{other:?}"),
        }
    });
}
