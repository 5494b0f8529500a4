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
mod tests;
