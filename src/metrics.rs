//! Prometheus metrics, registered once in the default registry and served by the admin listener.

use once_cell::sync::Lazy;
use prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

pub struct Metrics {
    /// Requests answered, by portal (or `-`) and status class (`2xx`…`5xx`).
    pub requests: IntCounterVec,
    /// Time from request head to end of logging, by portal.
    pub duration: HistogramVec,
    /// Portal failures, by portal and kind (`connect`, `timeout`, `other`).
    pub upstream_errors: IntCounterVec,
    /// Requests the gateway refused itself, by reason label.
    pub rejected: IntCounterVec,
    /// Portal logins seen through the gateway, by portal and result.
    pub portal_logins: IntCounterVec,
    /// Portal sessions the gateway logged out when its own session ended, by portal and result.
    pub portal_logouts: IntCounterVec,
    /// Second-factor successes and failures, by method; enrollments by method.
    pub factor_failures: IntCounterVec,
    pub factor_successes: IntCounterVec,
    pub enrollments: IntCounterVec,
    /// Requests refused by a budget, by class (`source`, `login`, or an endpoint class).
    pub budget_rejections: IntCounterVec,
    /// 1 while budgets fall back to per-replica shares because Redis is unreachable.
    pub budget_degraded: IntGauge,
    /// Requests refused by a policy rule or a privileged pack.
    pub policy_denials: IntCounterVec,
    /// Break-glass activations.
    pub break_glass: IntCounterVec,
    /// Detector alerts raised, by rule id and severity.
    pub alerts: IntCounterVec,
    /// Alerts a sink never saw because its queue was full, by sink.
    pub alert_sink_dropped: IntCounterVec,
    /// Alerts a sink failed to deliver, by sink.
    pub alert_sink_failures: IntCounterVec,
    /// Requests the detector stopped, by action (`held`, `throttled`, `step_up`).
    pub detector_actions: IntCounterVec,
    /// Connections closed before a request head was read, by reason (`head_timeout`,
    /// `peer_cap`, `fd_reserve`).
    pub refused_connections: IntCounterVec,
    /// Audit entries waiting to be written (the store did not answer, or is behind).
    pub audit_pending: IntGauge,
    /// Audit entries dropped: the queue or the backlog was full (they are still in the logs).
    pub audit_dropped: IntCounter,
    /// Configuration reloads, by result (`ok`, `invalid`, `needs_restart`).
    pub reloads: IntCounterVec,
    /// When the configuration was last reloaded (unix seconds; 0: never since the start).
    pub last_reload: IntGauge,
    /// 1 while the gateway drains after SIGTERM (or hands over to a new process).
    pub draining: IntGauge,
    /// When each TLS listener's certificate expires (unix seconds), by listener address.
    pub certificate_expiry: IntGaugeVec,
    /// 1 while a shared store answers, 0 while it does not, by store (`redis`, `postgres`).
    pub store_up: IntGaugeVec,
    /// Identities and sources the detector follows now (its memory, roughly).
    pub detector_tracks: IntGauge,
    /// Sessions by level (`none`, `password`, `second_factor`, `phishing_resistant`): this
    /// process's; with Redis, every replica's signed-in ones as the last sweep counted them.
    pub sessions: IntGaugeVec,
}

pub static METRICS: Lazy<Metrics> = Lazy::new(|| {
    Metrics {
    requests: register_int_counter_vec!(
        "vigie_requests_total",
        "Requests answered, by portal and status class.",
        &["portal", "class"]
    )
    .expect("metric registers once"),
    duration: register_histogram_vec!(
        "vigie_request_duration_seconds",
        "Time spent on a request, from its head to the end of the response.",
        &["portal"],
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    )
    .expect("metric registers once"),
    upstream_errors: register_int_counter_vec!(
        "vigie_upstream_errors_total",
        "Failures talking to a portal, by portal and kind.",
        &["portal", "kind"]
    )
    .expect("metric registers once"),
    rejected: register_int_counter_vec!(
        "vigie_rejected_requests_total",
        "Requests refused by the gateway, by reason.",
        &["reason"]
    )
    .expect("metric registers once"),
    portal_logins: register_int_counter_vec!(
        "vigie_portal_logins_total",
        "Portal logins seen through the gateway, by portal and result.",
        &["portal", "result"]
    )
    .expect("metric registers once"),
    portal_logouts: register_int_counter_vec!(
        "vigie_portal_logouts_total",
        "Portal sessions the gateway logged out when its session ended, by portal and result (done, already_ended, failed, no_logout).",
        &["portal", "result"]
    )
    .expect("metric registers once"),
    factor_failures: register_int_counter_vec!(
        "vigie_second_factor_failures_total",
        "Failed second-factor attempts, by method (totp, passkey, recovery, invitation).",
        &["method"]
    )
    .expect("metric registers once"),
    factor_successes: register_int_counter_vec!(
        "vigie_second_factor_successes_total",
        "Second factors proven, by method.",
        &["method"]
    )
    .expect("metric registers once"),
    enrollments: register_int_counter_vec!(
        "vigie_enrollments_total",
        "Factors enrolled, by method, and factor resets.",
        &["method"]
    )
    .expect("metric registers once"),
    budget_rejections: register_int_counter_vec!(
        "vigie_budget_rejections_total",
        "Requests refused by a budget (429), by class.",
        &["class"]
    )
    .expect("metric registers once"),
    budget_degraded: register_int_gauge!(
        "vigie_budget_degraded",
        "1 while Redis is unreachable and budgets are enforced per replica."
    )
    .expect("metric registers once"),
    policy_denials: register_int_counter_vec!(
        "vigie_policy_denials_total",
        "Requests refused by policy, by rule.",
        &["rule"]
    )
    .expect("metric registers once"),
    break_glass: register_int_counter_vec!(
        "vigie_break_glass_total",
        "Break-glass activations, by portal.",
        &["portal"]
    )
    .expect("metric registers once"),
    alerts: register_int_counter_vec!(
        "vigie_alerts_total",
        "Detector alerts raised, by rule and severity.",
        &["rule", "severity"]
    )
    .expect("metric registers once"),
    alert_sink_dropped: register_int_counter_vec!(
        "vigie_alert_sink_dropped_total",
        "Alerts dropped because a sink's queue was full, by sink.",
        &["sink"]
    )
    .expect("metric registers once"),
    alert_sink_failures: register_int_counter_vec!(
        "vigie_alert_sink_failures_total",
        "Alerts a sink failed to deliver, by sink.",
        &["sink"]
    )
    .expect("metric registers once"),
    detector_actions: register_int_counter_vec!(
        "vigie_detector_actions_total",
        "Requests the detector stopped, by action (held, throttled, step_up).",
        &["action"]
    )
    .expect("metric registers once"),
    refused_connections: register_int_counter_vec!(
        "vigie_refused_connections_total",
        "Connections closed before a whole request head, by reason (head_timeout, peer_cap, fd_reserve).",
        &["reason"]
    )
    .expect("metric registers once"),
    audit_pending: register_int_gauge!(
        "vigie_audit_pending",
        "Audit entries waiting to be written to the records store."
    )
    .expect("metric registers once"),
    audit_dropped: register_int_counter!(
        "vigie_audit_dropped_total",
        "Audit entries dropped because the queue or the backlog was full (still in the logs)."
    )
    .expect("metric registers once"),
    reloads: register_int_counter_vec!(
        "vigie_config_reloads_total",
        "Configuration reloads, by result (ok, invalid, needs_restart).",
        &["result"]
    )
    .expect("metric registers once"),
    last_reload: register_int_gauge!(
        "vigie_config_last_reload_timestamp_seconds",
        "When the configuration was last reloaded, unix seconds (0: not since the start)."
    )
    .expect("metric registers once"),
    draining: register_int_gauge!(
        "vigie_draining",
        "1 while the gateway drains after SIGTERM: still serving, /readyz answers 503."
    )
    .expect("metric registers once"),
    store_up: register_int_gauge_vec!(
        "vigie_store_up",
        "1 while a shared store answers, 0 while it does not (redis, postgres).",
        &["store"]
    )
    .expect("metric registers once"),
    detector_tracks: register_int_gauge!(
        "vigie_detector_tracks",
        "Identities and sources the detector follows now."
    )
    .expect("metric registers once"),
    sessions: register_int_gauge_vec!(
        "vigie_sessions_active",
        "Sessions by level (with Redis: every replica's signed-in ones, as of the last sweep).",
        &["level"]
    )
    .expect("metric registers once"),
    certificate_expiry: register_int_gauge_vec!(
        "vigie_tls_certificate_expiry_timestamp_seconds",
        "When the certificate a TLS listener serves expires, unix seconds.",
        &["listener"]
    )
    .expect("metric registers once"),
}
});

/// `2xx`, `4xx`… for a status code; `0` (no response written) counts as `none`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

/// The build, and the process's own figures (CPU, memory, open files), registered once.
static PROCESS: Lazy<()> = Lazy::new(|| {
    let build = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "vigie_build_info",
            "The running build: 1, labelled by version.",
        ),
        &["version"],
    )
    .expect("valid metric");
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    let _ = prometheus::register(Box::new(build));
    let _ = prometheus::register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ));
});

/// The exposition text of every registered metric.
pub fn render() -> String {
    let _ = &*METRICS;
    let _ = &*PROCESS;
    let mut out = String::new();
    let encoder = prometheus::TextEncoder::new();
    // Encoding into a String only fails on invalid metric families, which registration prevents.
    let _ = encoder.encode_utf8(&prometheus::gather(), &mut out);
    out
}
