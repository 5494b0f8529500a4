//! The webhook sink against a real HTTP receiver on 127.0.0.1, and a stuck one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::tests::{accept_within, sample, WAIT};
use super::*;
use crate::metrics::METRICS;

struct Received {
    head: String,
    body: Vec<u8>,
}

/// Answers one connection per status in turn, then hands back what came and the listener.
fn serve(statuses: Vec<u16>) -> (String, thread::JoinHandle<(Vec<Received>, TcpListener)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let mut received = Vec::new();
        for status in statuses {
            let Some(stream) = accept_within(&listener, WAIT) else {
                break;
            };
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") {
                assert!(reader.read_line(&mut head).unwrap() > 0, "early close");
            }
            let head = head.to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let reply =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            reader.get_mut().write_all(reply.as_bytes()).unwrap();
            received.push(Received { head, body });
        }
        (received, listener)
    });
    (url, handle)
}

fn webhook(url: String, max_attempts: u32) -> WebhookSink {
    WebhookSink::new(WebhookSettings {
        url,
        headers: vec![("Authorization".into(), "Bearer s3cret".into())],
        timeout: WAIT,
        max_attempts,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
    })
    .unwrap()
}

fn nothing_more(listener: &TcpListener) -> bool {
    accept_within(listener, Duration::from_millis(100)).is_none()
}

#[test]
fn webhook_retries_server_errors_until_accepted() {
    let (url, server) = serve(vec![500, 500, 200]);
    let alert = sample("VIGIE-EXF-003");
    webhook(url, 5).deliver(&alert, &alert.to_ecs()).unwrap();
    let (received, listener) = server.join().unwrap();
    assert_eq!(received.len(), 3);
    assert!(nothing_more(&listener));
    for r in &received {
        assert!(r.head.starts_with("post /hook http/1.1\r\n"), "{}", r.head);
        assert!(r.head.contains("\r\ncontent-type: application/json"));
        assert!(r.head.contains("\r\nauthorization: bearer s3cret\r\n"));
    }
    let doc: Value = serde_json::from_slice(&received[2].body).unwrap();
    assert_eq!(doc, alert.to_ecs());
}

#[test]
fn webhook_does_not_retry_a_client_error() {
    let (url, server) = serve(vec![400]);
    let alert = sample("VIGIE-EXF-003");
    let err = webhook(url, 5)
        .deliver(&alert, &alert.to_ecs())
        .unwrap_err();
    assert!(matches!(err, SinkError::Rejected { status: 400 }), "{err}");
    let (received, listener) = server.join().unwrap();
    assert_eq!(received.len(), 1);
    assert!(nothing_more(&listener));
}

#[test]
fn webhook_retries_429_and_gives_up_after_max_attempts() {
    let (url, server) = serve(vec![429, 503]);
    let alert = sample("VIGIE-EXF-003");
    let err = webhook(url, 2)
        .deliver(&alert, &alert.to_ecs())
        .unwrap_err();
    assert!(
        matches!(err, SinkError::GaveUp { attempts: 2, .. }),
        "{err}"
    );
    let (received, listener) = server.join().unwrap();
    assert_eq!(received.len(), 2);
    assert!(nothing_more(&listener));
}

#[test]
fn webhook_settings_debug_hides_secrets() {
    let settings = WebhookSettings {
        url: "https://chat.example/hooks/T000/B000/XXXX".into(),
        headers: vec![("Authorization".into(), "Bearer s3cret".into())],
        ..WebhookSettings::default()
    };
    let shown = format!("{settings:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("XXXX"),
        "{shown}"
    );
    assert!(shown.contains("Authorization"));
}

#[test]
fn webhook_over_https_goes_through_native_tls() {
    // A peer that closes at once: the TLS handshake fails, as an error, not a panic.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let server = thread::spawn(move || drop(accept_within(&listener, WAIT)));
    let alert = sample("VIGIE-EXF-003");
    let err = webhook(url, 1)
        .deliver(&alert, &alert.to_ecs())
        .unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(err, SinkError::GaveUp { attempts: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("native-tls"), "{err}");
}

#[test]
fn a_stuck_sink_drops_alerts_instead_of_blocking_raise() {
    // Accepts connections (the backlog does) but never answers them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let alerts = Alerts::start(SinkSettings {
        webhook: Some(WebhookSettings {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            timeout: Duration::from_secs(30),
            max_attempts: 1,
            ..WebhookSettings::default()
        }),
        queue_capacity: 2,
        ..SinkSettings::default()
    })
    .unwrap();
    let dropped = METRICS.alert_sink_dropped.with_label_values(&["webhook"]);
    let before = dropped.get();
    let started = Instant::now();
    for _ in 0..10 {
        alerts.raise(sample("VIGIE-TEST-DROP"));
    }
    assert!(started.elapsed() < Duration::from_millis(500));
    // One in flight at most, two queued: the rest are dropped.
    let lost = dropped.get() - before;
    assert!((7..=10).contains(&lost), "dropped {lost}");
    assert!(!alerts.flush(Duration::from_millis(100)));
    assert!(started.elapsed() < Duration::from_secs(2));
}
