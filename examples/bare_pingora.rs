//! The floor Vigie is built on: a Pingora proxy that does nothing but forward, with the same
//! runtime settings (one worker thread), allocator and release profile as `vigie`. The load
//! benchmark runs it beside nginx and Vigie so the gap splits into what Pingora itself costs
//! and what Vigie adds on top.
//!
//! cargo run --release --example bare_pingora -- 127.0.0.1:8090 127.0.0.1:8080
//!
//! Knobs, read once at start, to attribute a cost by switching one thing on:
//! `BARE_TIMEOUTS=1` (Vigie's upstream timeouts), `BARE_KEEPALIVE=1` (its client keep-alive
//! and read timeout), `BARE_LOG=1` (one access event per request through `tracing`'s JSON
//! formatter to stderr, as Vigie wrote it before it rendered the line itself).

use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Forward {
    peer: HttpPeer,
    keepalive: bool,
    log: bool,
}

#[async_trait]
impl ProxyHttp for Forward {
    type CTX = ();
    fn new_ctx(&self) -> Self::CTX {}

    async fn request_filter(&self, session: &mut Session, _: &mut ()) -> Result<bool> {
        if self.keepalive {
            session.set_keepalive(Some(65));
            session.set_read_timeout(Some(Duration::from_secs(30)));
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _: &mut Session, _: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }

    async fn logging(&self, session: &mut Session, _: Option<&pingora::Error>, _: &mut ()) {
        if self.log {
            let status = session.response_written().map_or(0, |r| r.status.as_u16());
            let client = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip());
            tracing::info!(target: "vigie::access", request_id = "0123456789abcdef",
                portal = "bench", method = session.req_header().method.as_str(),
                path = "/1k.txt", status, client = ?client, identity = "-",
                duration_us = 17u64, "request");
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_pingora LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let knob = |name| std::env::var_os(name).is_some();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .json()
        .flatten_event(true)
        .init();
    let mut peer = HttpPeer::new(upstream, false, String::new());
    if knob("BARE_TIMEOUTS") {
        let t = Some(Duration::from_secs(30));
        peer.options.connection_timeout = t;
        peer.options.read_timeout = t;
        peer.options.write_timeout = t;
        peer.options.idle_timeout = Some(Duration::from_secs(60));
    }
    let forward = Forward {
        peer,
        keepalive: knob("BARE_KEEPALIVE"),
        log: knob("BARE_LOG"),
    };
    let conf = ServerConf {
        threads: 1,
        // A benchmark fixture: stop at once when the script ends.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, forward);
    proxy.add_tcp(&listen);
    proxy.threads = Some(1);
    server.add_service(proxy);
    server.run_forever();
}
