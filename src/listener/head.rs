//! The request-head deadline (threat model 41). Pingora bounds each read of a head, not the head:
//! a byte every 25 s kept a request alive for minutes. This stream wrapper sees every byte the
//! HTTP layer reads and closes the connection if a head is not whole in time.
//!
//! A head's clock starts when the connection is handed over (TLS: after the handshake) or, on a
//! kept-alive connection, at the first byte after the previous response. The wait for that
//! byte is Pingora's keep-alive timeout, set per request from `keepalive_timeout_seconds`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::metrics::METRICS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a head, against the clock.
    Head,
    /// The head is whole: body and response take the time they take (their own timeouts).
    Served,
    /// Between requests: the clock starts with the next byte.
    Idle,
    /// Too late: every further read fails.
    Expired,
}

/// A connection's stream with the head deadline enforced in `poll_read`; everything else is
/// the inner stream's.
#[derive(Debug)]
pub struct HeadDeadline {
    inner: Stream,
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
    phase: Phase,
    end: EndOfHead,
    /// Set between requests by [`HeadDeadline::next_request`]; a flag, as the HTTP layer only
    /// holds the stream behind a shared reference then.
    rearm: AtomicBool,
}

impl HeadDeadline {
    /// `inner`, whose first head must be whole within `limit` from now.
    pub fn new(inner: Stream, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
            phase: Phase::Head,
            end: EndOfHead::default(),
            rearm: AtomicBool::new(false),
        }
    }

    /// A response is complete and the connection kept alive: the next byte starts a new head.
    pub fn next_request(&self) {
        self.rearm.store(true, Ordering::Relaxed);
    }

    fn expired() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "request head not whole within limits.head_timeout_seconds",
        )
    }
}

impl AsyncRead for HeadDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.rearm.swap(false, Ordering::Relaxed) && this.phase != Phase::Expired {
            this.phase = Phase::Idle;
            this.end = EndOfHead::default();
        }
        match this.phase {
            Phase::Expired => return Poll::Ready(Err(Self::expired())),
            // Polled first so the timer wakes this task even if the peer never sends again.
            Phase::Head if this.sleep.as_mut().poll(cx).is_ready() => {
                this.phase = Phase::Expired;
                METRICS
                    .refused_connections
                    .with_label_values(&["head_timeout"])
                    .inc();
                return Poll::Ready(Err(Self::expired()));
            }
            _ => {}
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            if this.phase == Phase::Idle {
                let deadline = Instant::now() + this.limit;
                this.sleep.as_mut().reset(deadline);
                this.phase = Phase::Head;
            }
            if this.phase == Phase::Head && this.end.scan(new) {
                this.phase = Phase::Served;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Finds the blank line that ends a head, across reads. Lenient on purpose: any LF [CR] LF
/// counts (CRLF CRLF, LF LF, mixes), so the deadline never outlives what the parser takes as
/// the end.
/// Blank lines before any request line do not count: parsers skip them, and otherwise a client
/// could send one first and then trickle its head with no deadline.
#[derive(Debug, Default)]
struct EndOfHead {
    /// A byte other than CR and LF was seen.
    started: bool,
    /// Bytes of the line so far: 0 text, 1 just after LF, 2 after LF CR.
    after: u8,
}

impl EndOfHead {
    /// Feed bytes read; true once the head is complete.
    fn scan(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            self.after = match (b, self.after) {
                (b'\n', 1 | 2) if self.started => return true,
                (b'\n', _) => 1,
                (b'\r', 1) => 2,
                (b'\r', _) => 0,
                _ => {
                    self.started = true;
                    0
                }
            };
        }
        false
    }
}

// The rest delegates to the inner stream.

impl AsyncWrite for HeadDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for HeadDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for HeadDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeadDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeadDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HeadDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for HeadDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
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
}
