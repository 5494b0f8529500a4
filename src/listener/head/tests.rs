use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ends(chunks: &[&[u8]]) -> Vec<bool> {
    let mut end = EndOfHead::default();
    chunks.iter().map(|c| end.scan(c)).collect()
}

#[test]
fn the_end_of_a_head_is_found_across_reads() {
    assert_eq!(ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"]), [true]);
    assert_eq!(
        ends(&[b"GET / HTTP/1.1\r\nHost: a\r", b"\n", b"\r\n"]),
        [false, false, true]
    );
    assert_eq!(ends(&[b"GET / HTTP/1.1\nHost: a\n\n"]), [true]);
    assert_eq!(
        ends(&[b"GET / HTTP/1.1\r\nHost: a\r\n\r", b"x"]),
        [false, false]
    );
    // Blank lines before the request line are not the end.
    assert_eq!(
        ends(&[b"\r\n\r\n\n\n", b"GET / HTTP/1.1\r\n\r\n"]),
        [false, true]
    );
    // A lone CR inside a line is not a line end.
    assert_eq!(ends(&[b"GET / HTTP/1.1\r\nA: b\r\r\n"]), [false]);
}

fn pair(limit: Duration) -> (HeadDeadline, tokio::io::DuplexStream) {
    let (server, client) = tokio::io::duplex(1024);
    (HeadDeadline::new(Box::new(server), limit), client)
}

async fn read(s: &mut HeadDeadline) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await?;
    Ok(buf[..n].to_vec())
}

const LIMIT: Duration = Duration::from_millis(300);

async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test]
async fn a_trickled_head_is_cut_at_the_deadline() {
    let started = Instant::now();
    let (mut s, mut c) = pair(LIMIT);
    for _ in 0..2 {
        c.write_all(b"G").await.unwrap();
        assert_eq!(read(&mut s).await.unwrap(), b"G");
        pause(100).await;
    }
    let err = read(&mut s).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(started.elapsed() >= LIMIT);
    c.write_all(b"ET").await.unwrap();
    assert!(read(&mut s).await.is_err(), "a cut connection stays cut");
}

#[tokio::test]
async fn a_silent_connection_is_cut_at_the_deadline() {
    let started = Instant::now();
    let (mut s, _c) = pair(LIMIT);
    assert!(read(&mut s).await.is_err());
    assert!(started.elapsed() >= LIMIT);
}

#[tokio::test]
async fn body_and_idle_time_are_not_counted_and_the_next_head_has_its_own_clock() {
    let (mut s, mut c) = pair(LIMIT);
    c.write_all(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n")
        .await
        .unwrap();
    read(&mut s).await.unwrap();
    // A slow body is not the head deadline's business.
    pause(500).await;
    c.write_all(b"ok").await.unwrap();
    assert_eq!(read(&mut s).await.unwrap(), b"ok");
    // Response written; between requests the wait is the keep-alive timeout's, not ours.
    s.next_request();
    pause(500).await;
    c.write_all(b"GET").await.unwrap();
    assert_eq!(read(&mut s).await.unwrap(), b"GET");
    // From that first byte, the next head has its own full time.
    pause(150).await;
    c.write_all(b" / HTTP/1.1\r\n\r\n").await.unwrap();
    assert_eq!(read(&mut s).await.unwrap(), b" / HTTP/1.1\r\n\r\n");
    pause(500).await;
    s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
    c.write_all(b"x").await.unwrap();
    assert_eq!(read(&mut s).await.unwrap(), b"x");
    // Once rearmed, a next head that stalls is cut.
    s.next_request();
    c.write_all(b"G").await.unwrap();
    assert_eq!(read(&mut s).await.unwrap(), b"G");
    assert!(read(&mut s).await.is_err());
}
