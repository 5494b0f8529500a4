//! Stage 7, log: one access-log event and the metrics for every request.
//!
//! The access log carries the path with identifier-like segments masked and never the query
//! string: both can hold patient identifiers, which must not reach logs in the clear.

use std::time::Instant;

use super::access_line;

use crate::metrics::{status_class, METRICS};

/// Replace every path segment that contains a digit with `:id`.
pub fn masked_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    push_masked_path(&mut out, path);
    out
}

/// [`masked_path`] appended to `out`.
pub fn push_masked_path(out: &mut String, path: &str) {
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg.bytes().any(|b| b.is_ascii_digit()) {
            out.push_str(":id");
        } else {
            out.push_str(seg);
        }
    }
}

/// What one finished request looked like.
pub struct Outcome<'a> {
    pub request_id: &'a str,
    pub portal: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub client: Option<std::net::IpAddr>,
    pub identity: &'a str,
    pub rejected: Option<&'a str>,
    pub upstream_error: Option<&'a str>,
    /// The policy rule that decided, if one did.
    pub rule: Option<&'a str>,
    /// The session was in break-glass: the request is also written to the audit log.
    pub break_glass: bool,
    pub started: Instant,
}

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
    if access_line::enabled() {
        if tracing::enabled!(target: "vigie::access", tracing::Level::INFO) {
            access_line::write(o, elapsed.as_micros() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_masked() {
        assert_eq!(
            masked_path("/api/dossierpatient/patients/1234"),
            "/api/dossierpatient/patients/:id"
        );
        assert_eq!(masked_path("/index.php"), "/index.php");
        assert_eq!(masked_path("/"), "/");
        assert_eq!(masked_path("/p/ab12cd/x"), "/p/:id/x");
    }
}
