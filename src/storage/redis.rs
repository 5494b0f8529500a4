//! The one place a Redis client is made from the configuration: plain, or over TLS with the
//! configured CA and client certificate. Every user of Redis (sessions, locks, factors,
//! budgets, the detector's sharing, the shared-state checks) gets its connections from it.

use crate::config::RedisTls;

/// A client for `url` (`redis://`, `rediss://` or `unix://`); nothing is contacted yet.
pub fn client(url: &str, tls: &RedisTls) -> redis::RedisResult<redis::Client> {
    if !url.starts_with("rediss://") {
        return redis::Client::open(url);
    }
    let certificates = redis::TlsCertificates {
        client_tls: tls
            .client
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.0.clone(),
            }),
        root_cert: tls.ca.clone(),
    };
    redis::Client::build_with_tls(url, certificates)
}
