//! The admin listener: Prometheus metrics and health endpoints, kept off the proxy port.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

/// How long a readiness probe result is reused, so a busy prober cannot hammer the portals.
const PROBE_CACHE: Duration = Duration::from_secs(2);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

pub struct AdminApp {
    portals: Vec<(String, SocketAddr)>,
    last_probe: Mutex<Option<(Instant, bool, String)>>,
}

impl AdminApp {
    pub fn new(portals: Vec<(String, SocketAddr)>) -> Self {
        Self {
            portals,
            last_probe: Mutex::new(None),
        }
    }

    /// Ready when every portal accepts a TCP connection: a gateway that cannot reach its
    /// portal should be taken out of a load balancer's rotation.
    async fn readiness(&self) -> (bool, String) {
        if let Some((at, ok, body)) = self.last_probe.lock().expect("probe cache lock").clone() {
            if at.elapsed() < PROBE_CACHE {
                return (ok, body);
            }
        }
        let mut all_ok = true;
        let mut parts = Vec::new();
        for (name, addr) in &self.portals {
            let ok = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
                Ok(Ok(_))
            );
            all_ok &= ok;
            parts.push(format!("\"{name}\":\"{}\"", if ok { "up" } else { "down" }));
        }
        let body = format!(
            "{{\"status\":\"{}\",\"portals\":{{{}}}}}\n",
            if all_ok { "ready" } else { "not_ready" },
            parts.join(",")
        );
        *self.last_probe.lock().expect("probe cache lock") =
            Some((Instant::now(), all_ok, body.clone()));
        (all_ok, body)
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("content-length", body.len())
        .body(body.into_bytes())
        .expect("static response parts are valid")
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/metrics" => reply(200, "text/plain; version=0.0.4", crate::metrics::render()),
            "/healthz" => reply(200, "application/json", "{\"status\":\"alive\"}\n".into()),
            "/readyz" => {
                let (ok, body) = self.readiness().await;
                reply(if ok { 200 } else { 503 }, "application/json", body)
            }
            _ => reply(
                404,
                "text/plain",
                "not found: try /metrics, /healthz or /readyz\n".into(),
            ),
        }
    }
}
