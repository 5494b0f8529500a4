//! Alerts kept so the admin API (and the SOC console) can list them and analysts can triage
//! them ([`super::triage`]): in the SQLite file (one gateway), or in PostgreSQL, where every replica writes and
//! reads one list ([`crate::storage::postgres::alerts`]).

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use super::triage::{self, Change, Event, Filter, Status, TriageError};
use super::{Alert, Sink, SinkError};
use crate::factors::crypto::KeyRing;

/// One recorded change as stored: the note sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEvent {
    pub at_us: i64,
    pub analyst: String,
    pub kind: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub note: Option<Vec<u8>>,
}

/// Where alerts are kept. Synchronous: the sink inserts from its own thread.
pub trait AlertRecords: Send + Sync {
    /// Keep a new alert (status new) with its context (the timeline as JSON, the patients
    /// sealed); a second insert of one id is skipped.
    fn insert(&self, alert: &Alert, ecs: &Value, kept: &Kept) -> Result<(), SinkError>;
    /// An alert's context as kept: (timeline JSON, sealed patients); `None`: no such alert.
    fn context(&self, id: &str) -> Result<Option<Kept>, SinkError>;
    /// The alerts `f` selects, in its order, each its ECS document with its triage
    /// ([`with_triage`]).
    fn list(&self, f: &Filter) -> Result<Vec<Value>, SinkError>;
    /// How many alerts `f` selects, per status.
    fn counts(&self, f: &Filter) -> Result<Vec<(String, u64)>, SinkError>;
    fn get(&self, id: &str) -> Result<Option<Value>, SinkError>;
    /// Apply `change` and record it, in one transaction: a status change only from the
    /// status it expects ([`TriageError::Conflict`] otherwise), on an alert that exists
    /// ([`TriageError::NotFound`]). What the alert was before is recorded with it.
    fn change(
        &self,
        id: &str,
        change: &Change,
        analyst: &str,
        at_us: i64,
        note: Option<&[u8]>,
    ) -> Result<(), SinkError>;
    /// Every change of an alert, oldest first.
    fn history(&self, id: &str) -> Result<Vec<SealedEvent>, SinkError>;
    /// Remove alerts raised before `before_us`, with their history and context; how many.
    fn prune(&self, before_us: i64) -> Result<u64, SinkError>;
}

/// Cheap to clone: the sink thread writes while the admin API reads through the same handle.
#[derive(Clone)]
pub struct AlertStore {
    records: Arc<dyn AlertRecords>,
    /// Seals analysts' notes at rest (they may name a patient).
    keys: Arc<KeyRing>,
}

impl AlertStore {
    /// Notes sealed under a ring of this process only, until [`AlertStore::sealing_with`].
    pub fn new(records: Arc<dyn AlertRecords>) -> Self {
        Self {
            records,
            keys: Arc::new(KeyRing::ephemeral()),
        }
    }

    /// Seal notes under the deployment's key ring (every replica opens them).
    pub fn sealing_with(mut self, keys: Arc<KeyRing>) -> Self {
        self.keys = keys;
        self
    }

    /// The alerts table of the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Ok(Self::new(Arc::new(
            crate::storage::sqlite::alerts::SqliteAlerts::open(path)?,
        )))
    }

    pub fn insert(&self, alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        let kept = match &alert.context {
            None => Kept::default(),
            Some(c) => Kept {
                timeline: Some(serde_json::to_string(&Written::Timeline {
                    steps: c.timeline.clone(),
                    pace: c.pace,
                })?),
                patients: (!c.patients.is_empty()).then(|| {
                    let plain = serde_json::to_vec(&c.patients).unwrap_or_default();
                    self.keys.seal(&patients_aad(&alert.id), &plain)
                }),
            },
        };
        self.records.insert(alert, ecs, &kept)
    }

    /// The identity's requests around the alert and its pace, as kept with it, and whether
    /// it keeps patients a DPO could re-identify (one read of the row).
    pub fn context(&self, id: &str) -> Result<Around, SinkError> {
        let kept = self.records.context(id)?.unwrap_or_default();
        let (timeline, pace) = match kept.timeline {
            Some(t) => match serde_json::from_str(&t)? {
                Written::Steps(steps) => (steps, None),
                Written::Timeline { steps, pace } => (steps, pace),
            },
            None => (Vec::new(), None),
        };
        Ok(Around {
            timeline,
            pace,
            reidentifiable: kept.patients.is_some(),
        })
    }

    /// The patients behind the alert's pseudonyms: (label, the portal's id). For the DPO
    /// only, with a reason: the caller records and alerts it.
    pub fn reidentify(&self, id: &str) -> Result<Vec<(String, String)>, SinkError> {
        let Some(sealed) = self.records.context(id)?.and_then(|k| k.patients) else {
            return Ok(Vec::new());
        };
        let plain = self
            .keys
            .open(&patients_aad(id), &sealed)
            .map_err(|e| SinkError::Config(format!("the alert's patients do not open: {e}")))?
            .0;
        Ok(serde_json::from_slice(&plain)?)
    }

    /// The newest `limit` alerts, whatever their status.
    pub fn recent(&self, limit: usize) -> Result<Vec<Value>, SinkError> {
        self.records.list(&Filter {
            limit,
            ..Filter::default()
        })
    }

    pub fn list(&self, f: &Filter) -> Result<Vec<Value>, SinkError> {
        self.records.list(f)
    }

    /// Per status (every status named, 0 included), for `f` on any status.
    pub fn counts(&self, f: &Filter) -> Result<Vec<(Status, u64)>, SinkError> {
        let found = self.records.counts(&f.any_status())?;
        Ok(triage::STATUSES
            .iter()
            .map(|s| {
                let n = found
                    .iter()
                    .filter(|(name, _)| Status::parse(name).ok() == Some(*s))
                    .map(|(_, n)| n)
                    .sum();
                (*s, n)
            })
            .collect())
    }

    pub fn get(&self, id: &str) -> Result<Option<Value>, SinkError> {
        self.records.get(id)
    }

    /// Apply an analyst's change, checked against the triage rules and sealed note.
    pub fn change(
        &self,
        id: &str,
        change: &Change,
        analyst: &str,
        note: Option<&str>,
    ) -> Result<(), SinkError> {
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if let Change::Status {
            expected,
            to,
            resolution,
        } = change
        {
            triage::check(*expected, *to, *resolution, note).map_err(SinkError::Triage)?;
        } else if note.is_some_and(|n| n.chars().count() > triage::NOTE_MAX) {
            return Err(SinkError::Triage(TriageError::NoteTooLong(
                triage::NOTE_MAX,
            )));
        }
        if let Change::Assign(Some(who)) = change {
            if !crate::storage::users::valid_name(who) {
                return Err(SinkError::Triage(TriageError::BadAssignee));
            }
        }
        if matches!(change, Change::Note) && note.is_none() {
            return Err(SinkError::Triage(TriageError::NoteNeeded));
        }
        let sealed = note.map(|n| self.keys.seal(&note_aad(id), n.as_bytes()));
        self.records.change(
            id,
            change,
            analyst,
            crate::audit::now_us(),
            sealed.as_deref(),
        )
    }

    /// Remove alerts raised before `before_us` (the retention), with their history; how many.
    pub fn prune(&self, before_us: i64) -> Result<u64, SinkError> {
        self.records.prune(before_us)
    }

    /// The alert's changes, notes opened.
    pub fn history(&self, id: &str) -> Result<Vec<Event>, SinkError> {
        let aad = note_aad(id);
        Ok(self
            .records
            .history(id)?
            .into_iter()
            .map(|e| Event {
                at_us: e.at_us,
                analyst: e.analyst,
                kind: e.kind,
                before: e.before,
                after: e.after,
                note: e.note.and_then(|n| {
                    let (plain, _) = self.keys.open(&aad, &n).ok()?;
                    String::from_utf8(plain).ok()
                }),
            })
            .collect())
    }
}

/// What is kept with an alert besides its document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    pub timeline: Option<String>,
    pub patients: Option<Vec<u8>>,
}

/// A kept timeline as written: its steps and pace, or (alerts from before the pace was kept)
/// its steps alone.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Written {
    Timeline {
        steps: Vec<super::Step>,
        pace: Option<super::Pace>,
    },
    Steps(Vec<super::Step>),
}

/// What the console shows around an alert.
#[derive(Debug, Default)]
pub struct Around {
    pub timeline: Vec<super::Step>,
    pub pace: Option<super::Pace>,
    /// The alert keeps patients a DPO could re-identify.
    pub reidentifiable: bool,
}

/// Sealed patients are bound to their alert.
fn patients_aad(id: &str) -> Vec<u8> {
    format!("vigie/alert-patients\0{id}").into_bytes()
}

/// A note is bound to its alert: moved to another, it does not open.
fn note_aad(id: &str) -> Vec<u8> {
    format!("vigie/alert-note\0{id}").into_bytes()
}

/// The triage as the stores give it back: status, resolution, assignee, last change.
#[derive(Debug, Clone, Default)]
pub struct TriageState {
    pub status: String,
    pub resolution: Option<String>,
    pub assignee: Option<String>,
    pub updated_us: Option<i64>,
}

/// The ECS document as kept, with its triage where the console reads it (`vigie.triage`, and
/// `vigie.status` for the status alone).
pub fn with_triage(doc: &str, t: TriageState) -> Result<Value, SinkError> {
    let mut doc: Value = serde_json::from_str(doc)?;
    if let Some(vigie) = doc.get_mut("vigie").and_then(Value::as_object_mut) {
        let status = Status::parse(&t.status).map_or(t.status.clone(), |s| s.as_str().into());
        vigie.insert("status".into(), Value::String(status.clone()));
        vigie.insert(
            "triage".into(),
            serde_json::json!({
                "status": status,
                "resolution": t.resolution,
                "assignee": t.assignee,
                "updated_us": t.updated_us,
            }),
        );
    }
    Ok(doc)
}

/// The store as a sink: inserts happen on the sink thread, off the request path. An alert
/// the store refuses (PostgreSQL away, the disk full) is kept, up to [`BACKLOG`], and stored
/// when the store answers again: retried before each new alert and every few seconds.
pub struct StoreSink {
    store: AlertStore,
    backlog: std::collections::VecDeque<(Alert, Value)>,
    retention: Option<std::time::Duration>,
    pruned_at: Option<std::time::Instant>,
}

/// Alerts kept for a store that does not answer; past it, the oldest are dropped (they are
/// still in the logs and the other sinks).
pub const BACKLOG: usize = 10_000;

impl StoreSink {
    pub fn new(store: AlertStore) -> Self {
        Self {
            store,
            backlog: std::collections::VecDeque::new(),
            retention: None,
            pruned_at: None,
        }
    }

    /// Remove alerts older than `retention` (hourly; `None`: keep them for ever).
    pub fn keeping(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Prune past the retention, at most once an hour.
    fn prune(&mut self) {
        let Some(keep) = self.retention else { return };
        let now = std::time::Instant::now();
        if self
            .pruned_at
            .is_some_and(|at| now < at + std::time::Duration::from_secs(3600))
        {
            return;
        }
        self.pruned_at = Some(now);
        let before = crate::audit::now_us() - keep.as_micros() as i64;
        match self.store.prune(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "alerts past the retention removed"),
            Err(e) => {
                tracing::warn!(error = %e, "the alert store could not be pruned; trying again in an hour")
            }
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
        self.prune();
    }
}
