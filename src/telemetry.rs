//! Structured logs through `tracing`; Pingora's `log` records are bridged into the same stream.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

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
        crate::pipeline::configure_access_log(
            matches!(log.format, LogFormat::Json),
            log.access_buffer_bytes,
        );
    }
}
