//! Connection hygiene below the HTTP layer, where [`pingora::proxy::ProxyHttp`] has no hook
//! (threat model 41): a cap on open connections per peer address, with a reserve of file
//! descriptors no one source may take ([`peers`]), and a deadline on each request head
//! ([`head`]).
//!
//! [`ConnectionGuard`] wraps the proxy's application: it counts (or refuses, by dropping) each
//! new connection, then hands the proxy the stream wrapped in a [`head::HeadDeadline`].
//! [`NextHead`] sits between the two and restarts the head clock between kept-alive requests,
//! the one point where a response is known to be complete.
//!
//! Not covered here: Pingora runs a TLS handshake (bounded by its own fixed 60 s) before the
//! application sees the connection, so handshakes in progress are not counted; and an HTTP/2
//! connection passes the deadline with its preface (Vigie's listeners offer HTTP/1.1 only).

pub mod certificates;
pub mod head;
pub mod peers;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

use crate::metrics::METRICS;
use head::HeadDeadline;
use peers::Peers;

/// The listening application: connection counting and the head deadline around `app`.
pub struct ConnectionGuard<A> {
    app: Arc<NextHead<A>>,
    peers: Arc<Peers>,
    head_timeout: Duration,
}

impl<A> ConnectionGuard<A> {
    pub fn new(app: A, peers: Peers, head_timeout: Duration) -> Self {
        Self {
            app: Arc::new(NextHead(Arc::new(app))),
            peers: Arc::new(peers),
            head_timeout,
        }
    }
}

#[async_trait]
impl<A> ServerApp for ConnectionGuard<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        // Held until the connection ends; a socket without an IP peer is not counted.
        let _permit = match peer.map(|ip| self.peers.admit(ip)) {
            Some(Err(refusal)) => {
                METRICS
                    .refused_connections
                    .with_label_values(&[refusal.label()])
                    .inc();
                tracing::debug!(peer = ?peer, reason = refusal.label(), "connection refused");
                return None;
            }
            Some(Ok(permit)) => Some(permit),
            None => None,
        };
        let stream: Stream = Box::new(HeadDeadline::new(stream, self.head_timeout));
        // HTTP applications keep the connection to the end and return nothing; were one to
        // hand it back, it is served here, under the same permit and deadline.
        let mut next = self.app.process_new(stream, shutdown).await;
        while let Some(stream) = next {
            next = self.app.process_new(stream, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.app.cleanup().await
    }
}

/// The HTTP application, restarting the head clock each time a response is complete and the
/// connection kept alive. Everything else is `A`'s.
pub struct NextHead<A>(Arc<A>);

#[async_trait]
impl<A> HttpServerApp for NextHead<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let reused = self.0.process_new_http(session, shutdown).await?;
        let (stream, settings) = reused.consume();
        // Vigie leaves Pingora's pipelining off, so the next head starts with a new read.
        if let Some(deadline) = stream.as_any().downcast_ref::<HeadDeadline>() {
            deadline.next_request();
        }
        Some(ReusedHttpStream::new(stream, settings))
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.0.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.0.server_options()
    }

    async fn http_cleanup(&self) {
        self.0.http_cleanup().await
    }

    async fn process_custom_session(
        self: Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        self.0
            .clone()
            .process_custom_session(stream, shutdown)
            .await
    }
}
