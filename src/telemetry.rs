//! Structured logs through `tracing`; Pingora's `log` records are bridged into the same stream.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};

/// Install the global subscriber. `VIGIE_LOG`, when set, overrides the configured filter. The
/// audit trail has its own filter: it is kept whatever the log level.
pub fn init(log: &LogConfig) {
    let filter = std::env::var("VIGIE_LOG")
        .ok()
        .and_then(|f| EnvFilter::builder().parse(f).ok())
        .unwrap_or_else(|| EnvFilter::builder().parse_lossy(&log.level));
    // At INFO, not TRACE: the most verbose level any layer wants becomes `log`'s maximum, and
    // Pingora's debug and trace records would then each be built and filtered on the hot path.
    let audit = crate::audit::AuditLayer
        .with_filter(Targets::new().with_target(crate::audit::TARGET, tracing::Level::INFO));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(audit);
    // A second init (tests, demo) keeps the first subscriber; that is harmless.
    let installed = match log.format {
        LogFormat::Json => registry
            .with(fmt.json().flatten_event(true).with_filter(filter))
            .try_init(),
        LogFormat::Pretty => registry.with(fmt.with_filter(filter)).try_init(),
    };
    if installed.is_ok() {
        crate::pipeline::configure_access_log(
            matches!(log.format, LogFormat::Json),
            log.access_buffer_bytes,
        );
    }
}
