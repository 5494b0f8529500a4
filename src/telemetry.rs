//! Structured logs through `tracing`; Pingora's `log` records are bridged into the same stream.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Install the global subscriber. `VIGIE_LOG`, when set, overrides the configured filter. The
/// audit trail is kept (and logged) whatever the level: the filter always lets `vigie::audit`
/// (and the trail's checkpoints, `vigie::checkpoint`) through at INFO. One global filter, not one per layer: with per-layer filters, a
/// `tracing::enabled!` probe not followed by an event left the audit layer disabled for the
/// next event on that thread, and audit entries were lost (JSON logs probe the access target).
pub fn init(log: &LogConfig) {
    let filter = std::env::var("VIGIE_LOG")
        .ok()
        .and_then(|f| EnvFilter::builder().parse(f).ok())
        .unwrap_or_else(|| EnvFilter::builder().parse_lossy(&log.level))
        .add_directive(
            format!("{}=info", crate::audit::TARGET)
                .parse()
                .expect("a valid directive"),
        )
        // The audit chain's checkpoints too: the log is their copy out of the store's reach.
        .add_directive("vigie::checkpoint=info".parse().expect("a valid directive"))
        // And security alerts (detector, store outages): the SOC needs them at any level.
        .add_directive("vigie::alert=info".parse().expect("a valid directive"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // The filter first: the audit layer sees only what it lets through, and takes its target.
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(crate::audit::AuditLayer);
    // A second init (tests, demo) keeps the first subscriber; that is harmless.
    let installed = match log.format {
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).try_init(),
        LogFormat::Pretty => registry.with(fmt).try_init(),
    };
    if installed.is_ok() {
        crate::pipeline::configure_access_log(
            matches!(log.format, LogFormat::Json),
            log.access_buffer_bytes,
        );
    }
}
