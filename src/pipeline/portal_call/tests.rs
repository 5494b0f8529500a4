use super::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// A portal that accepts, then drips its answer a byte at a time, each within the read
/// timeout: only a deadline on the whole call ends it.
#[tokio::test]
async fn a_dripping_portal_cannot_hold_a_call_past_its_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
            let _ = s.write_all(head);
            for _ in 0..1000 {
                std::thread::sleep(Duration::from_millis(100));
                if s.write_all(b"x").is_err() {
                    return;
                }
            }
        }
    });
    let mut config = crate::config::PortalConfig::for_tests("p", &["p"]);
    config.upstream = addr;
    config.connect_timeout = Duration::from_millis(200);
    config.read_timeout = Duration::from_millis(300);
    let portal = Portal::new(config);
    let call = Call {
        method: "GET",
        uri: "/",
        cookies: &[],
        headers: &[],
        form: None,
        max_body: 256 * 1024,
    };
    let started = Instant::now();
    assert!(send(&portal, &call).await.is_err());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "the call lasted {took:?}");
}
