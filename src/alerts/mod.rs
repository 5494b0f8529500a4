//! Detector alerts: one ECS-shaped JSON document per alert, delivered to configured sinks.
//!
//! [`Alerts::raise`] runs on the proxy's request path, so it never blocks: every sink has its own
//! thread fed by a bounded queue, and a full queue drops the alert (counted) rather than wait.
//! Callers hand over pseudonyms, hashed session ids and masked paths only; nothing here sees
//! patient data, and nothing here logs more than rule, score and user.

mod cef;
mod dispatch;
mod ecs;
pub mod events;
mod jsonl;
pub mod store;
mod syslog;
pub mod triage;
mod webhook;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_syslog;
#[cfg(test)]
mod tests_webhook;

pub use dispatch::{Alerts, SinkSettings};
pub use ecs::ECS_VERSION;
pub use jsonl::JsonlSink;
pub use store::{AlertRecords, AlertStore, StoreSink};
pub use syslog::{Facility, SyslogFormat, SyslogSettings, SyslogSink, SyslogTransport};
pub use webhook::{WebhookSettings, WebhookSink};

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// ECS `event.severity`: the Elastic detection-rule scale.
    pub fn ecs(self) -> u8 {
        match self {
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        }
    }

    /// RFC 5424 severity: notice, warning, error, critical.
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Low => 5,
            Severity::Medium => 4,
            Severity::High => 3,
            Severity::Critical => 2,
        }
    }

    /// CEF severity, 0..=10.
    pub fn cef(self) -> u8 {
        match self {
            Severity::Low => 3,
            Severity::Medium => 5,
            Severity::High => 8,
            Severity::Critical => 10,
        }
    }
}

/// One measurement behind an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub signal: String,
    pub observed: f64,
    pub baseline: Option<f64>,
    pub threshold: f64,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Alert {
    /// Random, 16 hex characters (see [`Alert::new_id`]).
    pub id: String,
    /// When the event happened, unix microseconds.
    pub at_us: i64,
    pub rule_id: String,
    pub rule_name: String,
    pub severity: Severity,
    /// 0..=100.
    pub risk_score: u8,
    pub portal: String,
    pub user: String,
    pub groups: Vec<String>,
    pub privileged: bool,
    /// Already hashed by the caller; never a raw session id.
    pub session_hash: String,
    pub source_ip: Option<IpAddr>,
    pub user_agent: String,
    pub method: String,
    /// Path only, already masked by the caller; a query string is cut off all the same.
    pub url_path: String,
    pub status: u16,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub evidence: Vec<Evidence>,
    pub distinct_patients: u64,
    /// Keyed-hash pseudonyms from the caller, at most about 20.
    pub patient_pseudonyms: Vec<String>,
    pub request_ids: Vec<String>,
    /// MITRE ATT&CK technique ids, e.g. `T1078`.
    pub techniques: Vec<&'static str>,
    /// The action taken: `alert`, `step_up`, `throttle` or `suspend`.
    pub action: String,
    pub dedup_key: String,
    /// What the identity did around the alert, for the console (never sent to a SIEM sink:
    /// the store keeps it, the patient ids sealed).
    pub context: Option<std::sync::Arc<Context>>,
}

/// One request of an identity, as an alert's timeline shows it (no query, no patient id).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    pub at_us: i64,
    pub method: String,
    /// Masked: identifier-like segments replaced.
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    /// Distinct patients the request and its answer showed.
    pub patients: u32,
    /// Distinct patients (and record rows) the identity had reached over the 15 minutes up to
    /// this request, as the detector counted them: the timeline's measure against its pace.
    #[serde(default)]
    pub window: u64,
}

/// What an identity usually reaches in 15 minutes (its own baseline, or its role's), and
/// where the detector starts to score: the lines an alert's timeline is drawn against.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pace {
    pub expected: f64,
    pub threshold: f64,
}

/// An alert's context: the identity's timeline and pace, and the patients its answers showed
/// (label, the portal's id) for a re-identification by the DPO.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub timeline: Vec<Step>,
    pub pace: Option<Pace>,
    pub patients: Vec<(String, String)>,
}

impl Alert {
    /// An alert about one event of one account, now (a login, a factor change): no window,
    /// no evidence, no patients. The caller adds what it knows (source, session, path…).
    pub fn account_event(rule_id: &str, rule_name: String, user: &str, portal: &str) -> Alert {
        let now_us = crate::audit::now_us();
        Alert {
            id: Alert::new_id(),
            at_us: now_us,
            rule_id: rule_id.into(),
            rule_name,
            severity: Severity::High,
            risk_score: 80,
            portal: portal.into(),
            user: user.into(),
            groups: Vec::new(),
            privileged: false,
            session_hash: String::new(),
            source_ip: None,
            user_agent: String::new(),
            method: String::new(),
            url_path: String::new(),
            status: 0,
            window_start_us: now_us,
            window_end_us: now_us,
            evidence: Vec::new(),
            distinct_patients: 0,
            patient_pseudonyms: Vec::new(),
            request_ids: Vec::new(),
            techniques: Vec::new(),
            action: "alert".into(),
            dedup_key: format!("{rule_id}:{user}"),
            context: None,
        }
    }

    /// A fresh alert id: 64 random bits as 16 hex characters.
    pub fn new_id() -> String {
        format!("{:016x}", rand::random::<u64>())
    }

    /// `url_path` up to any `?` or `#`, so a caller's slip never ships a query string.
    pub fn path_only(&self) -> &str {
        self.url_path.split(['?', '#']).next().unwrap_or_default()
    }
}

/// A destination for alerts. Each sink runs on its own thread, so `deliver` may block.
pub trait Sink: Send {
    fn name(&self) -> &'static str;
    fn deliver(&mut self, alert: &Alert, ecs: &serde_json::Value) -> Result<(), SinkError>;
    /// Called when no alert came for a while: a sink that keeps what it could not deliver
    /// tries again.
    fn retry(&mut self) {}
    /// A security event that is not an alert (a sign-in, a lock, an outage), as an ECS
    /// `event.kind: event` document ([`events::to_ecs`]). The store keeps them in the audit
    /// trail instead, so it skips them.
    fn deliver_event(&mut self, _ecs: &serde_json::Value) -> Result<(), SinkError> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Open(#[from] crate::storage::sqlite::OpenError),
    #[error(transparent)]
    Postgres(#[from] crate::storage::postgres::PgError),
    #[error("kept to be stored later: {0} alerts wait for the store")]
    Backlog(usize),
    #[error("json error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("http error: {0}")]
    Http(String),
    #[error("http status {status} (not retried)")]
    Rejected { status: u16 },
    #[error("gave up after {attempts} attempts, last: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Triage(#[from] triage::TriageError),
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("alert sink `{sink}` failed to start: {source}")]
    Sink {
        sink: &'static str,
        #[source]
        source: SinkError,
    },
    #[error("could not spawn the thread of alert sink `{sink}`: {source}")]
    Thread {
        sink: &'static str,
        #[source]
        source: std::io::Error,
    },
}
