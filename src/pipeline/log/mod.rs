//! Stage 7, log: one access-log event and the metrics for every request.
//!
//! The access log carries the path with identifier-like segments masked and never the query
//! string: both can hold patient identifiers, which must not reach logs in the clear.

mod line;
mod outcome;

pub use line::{configure, Drain};
pub use outcome::{masked_path, push_masked_path, Outcome};

use crate::metrics::{status_class, METRICS};

pub fn record(o: &Outcome<'_>) {
    let elapsed = o.started.elapsed();
    METRICS
        .requests
        .with_label_values(&[o.portal, status_class(o.status)])
        .inc();
    METRICS
        .duration
        .with_label_values(&[o.portal])
        .observe(elapsed.as_secs_f64());
    if let Some(reason) = o.rejected {
        METRICS.rejected.with_label_values(&[reason]).inc();
    }
    if line::enabled() {
        if tracing::enabled!(target: "vigie::access", tracing::Level::INFO) {
            line::write(o, elapsed.as_micros() as u64);
        }
    } else {
        pretty(o, elapsed.as_micros() as u64);
    }
    if o.break_glass {
        tracing::warn!(
            target: "vigie::audit",
            event = "break_glass_request",
            request_id = o.request_id,
            user = o.identity,
            method = o.method,
            path = %masked_path(o.path),
            status = o.status,
        );
    }
}

/// The access event through `tracing`, for the human-readable format.
fn pretty(o: &Outcome<'_>, duration_us: u64) {
    tracing::info!(
        target: "vigie::access",
        request_id = o.request_id,
        portal = o.portal,
        method = o.method,
        path = %masked_path(o.path),
        status = o.status,
        client = o.client.map(tracing::field::display),
        identity = o.identity,
        rejected = o.rejected,
        upstream_error = o.upstream_error,
        rule = o.rule,
        duration_us,
        "request"
    );
}
