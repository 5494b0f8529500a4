//! Alerts kept so the admin API (and the SOC console) can list them and operators can triage
//! them: in the SQLite file (one gateway), or in PostgreSQL, where every replica writes and
//! reads one list ([`crate::storage::postgres::alerts`]).

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::{Alert, Sink, SinkError};

pub const STATUSES: [&str; 3] = ["open", "acknowledged", "resolved"];

/// Where alerts are kept. Synchronous: the sink inserts from its own thread.
pub trait AlertRecords: Send + Sync {
    fn insert(&self, alert: &Alert, ecs: &Value) -> Result<(), SinkError>;
    /// The newest `limit` alerts, newest first, each its ECS document plus `vigie.status`.
    fn recent(&self, limit: usize) -> Result<Vec<Value>, SinkError>;
    /// Set a known status; `Ok(false)` when no alert has that id.
    fn set_status(&self, id: &str, status: &str) -> Result<bool, SinkError>;
}

/// Cheap to clone: the sink thread writes while the admin API reads through the same handle.
#[derive(Clone)]
pub struct AlertStore(Arc<dyn AlertRecords>);

impl AlertStore {
    pub fn new(records: Arc<dyn AlertRecords>) -> Self {
        Self(records)
    }

    /// The alerts table of the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Ok(Self(Arc::new(
            crate::storage::sqlite::alerts::SqliteAlerts::open(path)?,
        )))
    }

    pub fn insert(&self, alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        self.0.insert(alert, ecs)
    }

    pub fn recent(&self, limit: usize) -> Result<Vec<Value>, SinkError> {
        self.0.recent(limit)
    }

    /// Set an alert's triage status; `Ok(false)` when no alert has that id.
    pub fn set_status(&self, id: &str, status: &str) -> Result<bool, SinkError> {
        if !STATUSES.contains(&status) {
            return Err(SinkError::BadStatus(status.chars().take(32).collect()));
        }
        self.0.set_status(id, status)
    }
}

/// The ECS document as kept, with the triage status where the console reads it.
pub fn with_status(doc: &str, status: String) -> Result<Value, SinkError> {
    let mut doc: Value = serde_json::from_str(doc)?;
    if let Some(vigie) = doc.get_mut("vigie").and_then(Value::as_object_mut) {
        vigie.insert("status".into(), Value::String(status));
    }
    Ok(doc)
}

/// The store as a sink: inserts happen on the sink thread, off the request path. An alert
/// the store refuses (PostgreSQL away, the disk full) is kept, up to [`BACKLOG`], and stored
/// when the store answers again: retried before each new alert and every few seconds.
pub struct StoreSink {
    store: AlertStore,
    backlog: std::collections::VecDeque<(Alert, Value)>,
}

/// Alerts kept for a store that does not answer; past it, the oldest are dropped (they are
/// still in the logs and the other sinks).
pub const BACKLOG: usize = 10_000;

impl StoreSink {
    pub fn new(store: AlertStore) -> Self {
        Self {
            store,
            backlog: std::collections::VecDeque::new(),
        }
    }

    /// Store what was kept, oldest first; whether nothing is left.
    fn drain(&mut self) -> bool {
        let before = self.backlog.len();
        while let Some((alert, ecs)) = self.backlog.front() {
            if self.store.insert(alert, ecs).is_err() {
                return false;
            }
            self.backlog.pop_front();
        }
        if before > 0 {
            tracing::warn!(target: "vigie::alert", sink = "store", stored = before, "alerts kept while the store did not answer are stored now");
        }
        true
    }
}

impl Sink for StoreSink {
    fn name(&self) -> &'static str {
        "store"
    }

    fn deliver(&mut self, alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        let result = match self.drain() {
            true => self.store.insert(alert, ecs),
            false => Err(SinkError::Backlog(self.backlog.len())),
        };
        if result.is_err() {
            if self.backlog.len() >= BACKLOG {
                self.backlog.pop_front();
            }
            self.backlog.push_back((alert.clone(), ecs.clone()));
        }
        result
    }

    fn retry(&mut self) {
        self.drain();
    }
}
