//! The audit trail, kept: every `vigie::audit` event (sign-ins, second factors, locks,
//! logouts, break-glass requests, admin actions) stored where the durable records live (the
//! SQLite file, or PostgreSQL shared by replicas), so it outlives a restart, a replaced pod
//! and the log pipeline's own retention. Break-glass uses get their own record, with the
//! written reason sealed under the key ring: the review the SOC owes each one needs the
//! reason long after the session that carried it has ended.
//!
//! Events reach the store through one bounded queue and one writer thread ([`writer`]), off
//! the request path: a store that does not answer (PostgreSQL away, the disk full) keeps the
//! entries in the writer's backlog until it answers again.

pub mod chain;
mod fold;
pub(crate) mod layer;
pub mod signing;
mod writer;

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use once_cell::sync::Lazy;
use serde::Serialize;
use serde_json::{Map, Value};

pub use fold::{admin_token_refused, login_refused, QUIET};
pub use layer::{AuditLayer, TARGET};

use crate::factors::crypto::KeyRing;
use crate::metrics::METRICS;

/// Events waiting for the writer thread; past it, new ones are dropped (and counted).
const QUEUE: usize = 20_000;

/// One audit event as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: String,
    pub at_us: i64,
    pub level: String,
    pub event: String,
    pub user: Option<String>,
    /// The event's other fields (client, session fingerprint, outcome…), as logged.
    pub fields: Map<String, Value>,
    /// Its place in its writer's chain, once written (entries older than the chain have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<chain::Link>,
}

/// A row as both stores keep it: id, at_us, level, event, user, fields (JSON text), then
/// chain, seq and mac (absent on entries older than the chain).
pub type Row = (
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The columns a [`Row`] is read from, in order.
pub const COLUMNS: &str = "id, at_us, level, event, username, fields, chain, seq, mac";

impl Entry {
    /// The entry a stored row holds.
    pub fn from_row(
        (id, at_us, level, event, user, fields, chain, seq, mac): Row,
    ) -> Result<Self, AuditError> {
        let fields = serde_json::from_str(&fields)?;
        let link = match (chain, seq, mac) {
            (Some(chain), Some(seq), Some(mac)) => Some(chain::Link { chain, seq, mac }),
            _ => None,
        };
        Ok(Entry {
            id,
            at_us,
            level,
            event,
            user,
            fields,
            link,
        })
    }
}

/// Where a walk in chain order stopped: chain (empty for entries without one), seq, id.
pub type Cursor = (String, i64, String);

/// A row's place in the walk, from its raw columns (a chain without a seq or MAC stays where
/// its chain sorts it: the walk always moves on).
pub fn row_cursor(row: &Row) -> Cursor {
    (
        row.6.clone().unwrap_or_default(),
        row.7.unwrap_or(0),
        row.0.clone(),
    )
}

/// A page of the walk: each entry with its place.
pub type Page = Vec<(Cursor, Entry)>;

/// Rows as a page of the walk.
pub fn paged(rows: Vec<Row>) -> Result<Page, AuditError> {
    rows.into_iter()
        .map(|r| Ok((row_cursor(&r), Entry::from_row(r)?)))
        .collect()
}

/// A break-glass activation: who, where, until when, and why. The reason is in clear in
/// memory only ([`String`]); stored sealed ([`SealedBreakGlass`]); for the review, opened
/// ([`Review`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakGlass<Reason = String> {
    pub id: String,
    pub at_us: i64,
    pub user: String,
    pub portal: String,
    /// The session's fingerprint, as the audit lines name it.
    pub session: String,
    /// Unix seconds.
    pub until: i64,
    pub reason: Reason,
}

/// As stored: the reason sealed, bound to the record's id and user.
pub type SealedBreakGlass = BreakGlass<Vec<u8>>;

/// For the review: the reason opened, `None` when the ring no longer holds its key.
pub type Review = BreakGlass<Option<String>>;

impl<R> BreakGlass<R> {
    /// The same record with its reason turned into another form.
    pub fn with_reason<T>(self, f: impl FnOnce(&Self) -> T) -> BreakGlass<T> {
        let reason = f(&self);
        BreakGlass {
            id: self.id,
            at_us: self.at_us,
            user: self.user,
            portal: self.portal,
            session: self.session,
            until: self.until,
            reason,
        }
    }
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub user: Option<String>,
    pub event: Option<String>,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Open(#[from] crate::storage::sqlite::OpenError),
    #[error(transparent)]
    Postgres(#[from] crate::storage::postgres::PgError),
    #[error("audit record: {0}")]
    Json(#[from] serde_json::Error),
}

/// Where the audit trail is kept. Synchronous: the writer thread calls it.
pub trait AuditRecords: Send + Sync {
    /// Store entries and break-glass records, all or none; an id already stored is skipped
    /// (a retry after a lost reply does not make two).
    fn insert(&self, entries: &[Entry], glass: &[SealedBreakGlass]) -> Result<(), AuditError>;
    fn recent(&self, query: &Query) -> Result<Vec<Entry>, AuditError>;
    fn break_glass(
        &self,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SealedBreakGlass>, AuditError>;
    /// Entries in chain order, (chain, seq, id), those without a chain first, after `after`.
    fn page(&self, after: Option<&Cursor>, limit: usize) -> Result<Page, AuditError>;
    /// Keep a signed checkpoint (a second one for the same place is skipped).
    fn checkpoint(&self, cp: &chain::Checkpoint) -> Result<(), AuditError>;
    fn checkpoints(&self) -> Result<Vec<chain::Checkpoint>, AuditError>;
    fn anchors(&self) -> Result<Vec<chain::Anchor>, AuditError>;
    /// When the oldest entry with a whole link was written (`None`: none has one).
    fn first_linked_at(&self) -> Result<Option<i64>, AuditError>;
    /// Per chain, the newest entry (by seq) older than `before_us`: where a prune stops.
    fn heads_before(&self, before_us: i64) -> Result<Vec<chain::Link>, AuditError>;
    /// In one transaction: keep the anchors (replacing a chain's older one), remove each
    /// anchored chain's entries and checkpoints up to its anchor, entries without a chain and
    /// break-glass records older than `before_us`. How many rows went.
    fn prune(&self, before_us: i64, anchors: &[chain::Anchor]) -> Result<u64, AuditError>;
}

/// The `WHERE` of a listing: one condition per filter given, so the matching index is used
/// (`?1 IS NULL OR …` would scan by time).
pub fn filters(user: bool, event: bool, placeholder: impl Fn(usize) -> String) -> String {
    let mut conds = Vec::new();
    if user {
        conds.push(format!("username = {}", placeholder(conds.len() + 1)));
    }
    if event {
        conds.push(format!("event = {}", placeholder(conds.len() + 1)));
    }
    match conds.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", conds.join(" AND ")),
    }
}

/// What travels from the request path to the writer.
pub(crate) enum Record {
    Entry(Entry),
    BreakGlass(BreakGlass),
    /// A break-glass record waits in [`GLASS`].
    Wake,
}

/// Break-glass records on their way to the writer: not in the bounded queue, so a flood that
/// fills it cannot drop one (they are few: one per activation).
static GLASS: Lazy<Mutex<Vec<BreakGlass>>> = Lazy::new(Default::default);

/// The break-glass records waiting, taken.
pub(crate) fn take_glass() -> Vec<BreakGlass> {
    std::mem::take(&mut *GLASS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The queue's sending end, and its receiving end until the writer takes it.
type Queue = (SyncSender<Record>, Mutex<Option<Receiver<Record>>>);

static QUEUED: Lazy<Queue> = Lazy::new(|| {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
    (tx, Mutex::new(Some(rx)))
});

/// Where the writer hands every entry it takes, besides the store: the SIEM's sinks.
type Forward = Arc<dyn Fn(&Entry) + Send + Sync>;
static FORWARD: once_cell::sync::OnceCell<Forward> = once_cell::sync::OnceCell::new();

/// Send every audit entry to `forward` too (once per process: the alert sinks), from the
/// writer's thread, off the request path.
pub fn forward_to(forward: Forward) {
    let _ = FORWARD.set(forward);
}

pub(crate) fn forwarded(entry: &Entry) {
    if let Some(f) = FORWARD.get() {
        f(entry);
    }
}

/// Hand a record to the writer; never blocks the request path.
pub(crate) fn submit(record: Record) {
    if QUEUED.0.try_send(record).is_err() {
        METRICS.audit_dropped.inc();
    }
}

/// Keep a break-glass activation (the reason is sealed before it is written). Never dropped:
/// if the queue is full, the writer finds it at its next round (within seconds).
pub fn break_glass(record: BreakGlass) {
    GLASS.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    let _ = QUEUED.0.try_send(Record::Wake);
}

/// A typed user name as the trail may keep it: a name's shape (no space, no control
/// character, at most 64 characters), else `-`: a password typed in the wrong field is not
/// kept, nor sent to the SIEM.
pub fn typed_name(name: &str) -> &str {
    let shaped = !name.is_empty()
        && name.chars().count() <= 64
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if shaped {
        name
    } else {
        "-"
    }
}

/// A fresh record id.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Now, in µs since the epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Start the writer thread on `store` (once per process; `false` if it already runs). Events
/// logged since the process started are in the queue and are written first.
pub fn start(
    store: Arc<dyn AuditRecords>,
    keys: Arc<KeyRing>,
    retention: Option<Duration>,
    signer: Arc<signing::Signer>,
    checkpoint_every: Duration,
) -> std::io::Result<bool> {
    let Some(rx) = QUEUED.1.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Ok(false);
    };
    let w = writer::Writer::new(store, keys, retention).signing(signer, checkpoint_every);
    std::thread::Builder::new()
        .name("vigie-audit".into())
        .spawn(move || w.run(rx))?;
    Ok(true)
}

/// Entries of a command other than the gateway (`vigie tokens`), written now: a chain of their
/// own, its head signed at once, so `vigie audit verify` vouches for them as for a gateway's.
/// Whether they are in the store.
pub fn write_now(
    store: Arc<dyn AuditRecords>,
    keys: Arc<KeyRing>,
    signer: Arc<signing::Signer>,
    entries: Vec<Entry>,
) -> bool {
    let mut w = writer::Writer::new(store, keys, None).signing(signer, Duration::ZERO);
    for e in entries {
        w.take(Record::Entry(e));
    }
    let now = std::time::Instant::now();
    let written = w.flush(now);
    w.checkpoint(now);
    written
}

/// The audit trail for the admin API: the store, and the ring that opens break-glass reasons.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn AuditRecords>,
    keys: Arc<KeyRing>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn AuditRecords>, keys: Arc<KeyRing>) -> Self {
        Self { store, keys }
    }

    pub fn recent(&self, query: &Query) -> Result<Vec<Entry>, AuditError> {
        self.store.recent(query)
    }

    pub fn break_glass(&self, user: Option<&str>, limit: usize) -> Result<Vec<Review>, AuditError> {
        let rows = self.store.break_glass(user, limit)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                r.with_reason(|r| {
                    let opened = self.keys.open(&reason_aad(&r.id, &r.user), &r.reason);
                    opened
                        .ok()
                        .and_then(|(plain, _)| String::from_utf8(plain).ok())
                })
            })
            .collect())
    }
}

/// Check the whole trail: every chain's links, its anchor, and the checkpoints (those kept in
/// the store and `published`, the copies from the log) signed by a `trusted` key.
pub fn verify(
    store: &dyn AuditRecords,
    keys: &KeyRing,
    trusted: &[String],
    published: Vec<chain::Checkpoint>,
) -> Result<chain::Report, AuditError> {
    let mut all = store.checkpoints()?;
    all.extend(published);
    all.sort_by(|a, b| (&a.chain, a.seq, &a.signature).cmp(&(&b.chain, b.seq, &b.signature)));
    all.dedup();
    let sorted = signing::trusted(all, trusted);
    let linked_since = store.first_linked_at()?;
    let mut verifier = chain::Verifier::new(keys, store.anchors()?, sorted.good, linked_since);
    let mut after = None;
    loop {
        let page = store.page(after.as_ref(), 2_000)?;
        for (cursor, e) in &page {
            verifier.feed(cursor, e);
        }
        match page.last() {
            Some((cursor, _)) => after = Some(cursor.clone()),
            None => break,
        }
    }
    let claims = std::mem::take(&mut verifier.glass);
    let mut report = verifier.finish();
    report.problems.extend(sorted.problems);
    let records = store.break_glass(None, usize::MAX)?;
    report
        .problems
        .extend(check_glass(keys, &claims, &records, linked_since));
    let uncovered = records
        .iter()
        .filter(|r| !claims.contains_key(&r.id) && linked_since.is_none_or(|t| r.at_us < t))
        .count();
    if uncovered > 0 {
        report.warnings.push(format!("{uncovered} break-glass records dated before the chain began: not covered (nothing vouches for them)"));
    }
    for c in report.chains.iter().filter(|c| c.checkpoint.is_none()) {
        report.warnings.push(format!("chain {}: no trusted checkpoint vouches for its entries (a process stopped within a checkpoint interval of starting, or entries copied from elsewhere)", c.chain));
    }
    let mut unknown: Vec<&str> = sorted
        .unknown_signers
        .iter()
        .map(|(c, _)| c.as_str())
        .collect();
    unknown.dedup();
    for chain in unknown {
        report.warnings.push(format!("chain {chain}: its checkpoints are signed by a key verify does not know (a replica's own key file?): they vouch for nothing; give the replicas one [assertion] key_dir"));
    }
    Ok(report)
}

/// Break-glass records against what the chain says of them: each record written since the
/// chain began has its entry, with the same user, session, portal and end; its sealed reason
/// opens; and no entry's record is missing.
fn check_glass(
    keys: &KeyRing,
    claims: &std::collections::HashMap<String, chain::GlassClaim>,
    records: &[SealedBreakGlass],
    linked_since: Option<i64>,
) -> Vec<chain::Problem> {
    let problem = |id: &str, why: &str| chain::Problem::BreakGlass {
        id: id.to_string(),
        why: why.to_string(),
    };
    let mut out = Vec::new();
    for r in records {
        match claims.get(&r.id) {
            None if linked_since.is_some_and(|t| r.at_us >= t) => out.push(problem(
                &r.id,
                "no chained entry vouches for it: it was inserted",
            )),
            None => {}
            Some(c) => {
                let same = c.user.as_deref() == Some(r.user.as_str())
                    && (r.at_us - c.at_us).abs() <= 60_000_000
                    && c.session == r.session
                    && c.until == r.until
                    && c.portal.as_ref().is_none_or(|p| *p == r.portal);
                if !same {
                    out.push(problem(
                        &r.id,
                        "it differs from its chained entry: it was edited",
                    ));
                } else if keys.open(&reason_aad(&r.id, &r.user), &r.reason).is_err() {
                    out.push(problem(
                        &r.id,
                        "its sealed reason does not open: it was edited (or its key removed)",
                    ));
                }
            }
        }
    }
    let kept: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let mut missing: Vec<&String> = claims
        .keys()
        .filter(|id| !kept.contains(id.as_str()))
        .collect();
    missing.sort();
    for id in missing {
        out.push(problem(
            id,
            "its chained entry is there, the record is not: it was removed",
        ));
    }
    out
}

/// What a reason is bound to: a sealed reason cannot be moved to another record or user.
fn reason_aad(id: &str, user: &str) -> Vec<u8> {
    format!("vigie/break-glass\0{id}\0{user}").into_bytes()
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_chain;
