//! ECS JSON POSTed to an HTTP(S) endpoint (a SOAR, a chat bridge, an incident tool), with retries.

use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};
use serde_json::Value;

use super::{Alert, Sink, SinkError};

#[derive(Clone)]
pub struct WebhookSettings {
    /// `http://` or `https://`; may hold a secret (chat webhooks put one in the path), so never logged.
    pub url: String,
    /// Extra request headers, e.g. `Authorization`; values are never logged.
    pub headers: Vec<(String, String)>,
    /// For one whole attempt: connect, send, and the answer's head.
    pub timeout: Duration,
    pub max_attempts: u32,
    /// The wait after the first failure, doubling after each further one up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Settings end up in debug logs; the URL and header values may be credentials.
impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookSettings")
            .field("url", &"<redacted>")
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .finish()
    }
}

pub struct WebhookSink {
    agent: ureq::Agent,
    url: Uri,
    /// Scheme, host and port: what logs may name.
    endpoint: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    settings: WebhookSettings,
}

enum Outcome {
    Delivered,
    Permanent(u16),
    Retry(String),
}

impl WebhookSink {
    pub fn new(settings: WebhookSettings) -> Result<Self, SinkError> {
        let url: Uri = settings
            .url
            .parse()
            .map_err(|_| SinkError::Config("webhook url does not parse".into()))?;
        let scheme = url.scheme_str().unwrap_or_default();
        let host = url.host().unwrap_or_default();
        if !matches!(scheme, "http" | "https") || host.is_empty() {
            return Err(SinkError::Config(
                "webhook url must be http:// or https:// with a host".into(),
            ));
        }
        let endpoint = match url.port_u16() {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        let mut headers = Vec::with_capacity(settings.headers.len());
        for (name, value) in &settings.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SinkError::Config(format!("bad webhook header name `{name}`")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| SinkError::Config(format!("bad value for webhook header `{name}`")))?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            // The system's roots, so a hospital's internal CA works as it does for every tool.
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            // A redirect would carry the Authorization header elsewhere; treat it as an error.
            .max_redirects(0)
            .user_agent(format!("vigie/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Self {
            agent,
            url,
            endpoint,
            headers,
            settings,
        })
    }

    fn post(&self, body: &[u8]) -> Outcome {
        let mut request = self
            .agent
            .post(self.url.clone())
            .content_type("application/json");
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        match request.send(body) {
            Ok(response) => match response.status().as_u16() {
                200..=299 => Outcome::Delivered,
                status @ (408 | 429 | 500..=599) => Outcome::Retry(format!("status {status}")),
                status => Outcome::Permanent(status),
            },
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.settings
            .backoff_base
            .saturating_mul(factor)
            .min(self.settings.backoff_max)
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn deliver_event(&mut self, ecs: &Value) -> Result<(), SinkError> {
        self.deliver_doc(ecs)
    }

    fn deliver(&mut self, _alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        self.deliver_doc(ecs)
    }
}

impl WebhookSink {
    fn deliver_doc(&mut self, ecs: &Value) -> Result<(), SinkError> {
        let body = serde_json::to_vec(ecs)?;
        let attempts = self.settings.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.post(&body) {
                Outcome::Delivered => return Ok(()),
                Outcome::Permanent(status) => {
                    tracing::warn!(endpoint = %self.endpoint, status, "alert webhook refused the alert, not retrying");
                    return Err(SinkError::Rejected { status });
                }
                Outcome::Retry(reason) => {
                    tracing::warn!(endpoint = %self.endpoint, attempt, reason = %reason, "alert webhook delivery failed");
                    last = reason;
                }
            }
            if attempt < attempts {
                std::thread::sleep(self.backoff(attempt));
            }
        }
        Err(SinkError::GaveUp { attempts, last })
    }
}
