//! Structured logs through `tracing`; Pingora's `log` records are bridged into the same stream.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// The access log is in JSON: the pipeline then renders its line itself (one per request,
/// the hot path) instead of going through the subscriber's formatter.
static JSON_ACCESS_LOG: AtomicBool = AtomicBool::new(false);

pub fn json_access_log() -> bool {
    JSON_ACCESS_LOG.load(Ordering::Relaxed)
}

/// Install the global subscriber. `VIGIE_LOG`, when set, overrides the configured filter.
pub fn init(log: &LogConfig) {
    let filter = std::env::var("VIGIE_LOG")
        .ok()
        .and_then(|f| EnvFilter::builder().parse(f).ok())
        .unwrap_or_else(|| EnvFilter::builder().parse_lossy(&log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, demo) keeps the first subscriber; that is harmless.
    let installed = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    if installed.is_ok() {
        JSON_ACCESS_LOG.store(matches!(log.format, LogFormat::Json), Ordering::Relaxed);
        crate::pipeline::access_log_buffer(log.access_buffer_bytes);
    }
}
