//! The writer thread: drains the queue into the store in batches, links each entry into this
//! process' chain, seals break-glass reasons, keeps what the store refused and retries it,
//! signs checkpoints, and prunes past the retention (leaving an anchor per chain).

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chain::{Anchor, Chainer};
use super::signing::Signer;
use super::{reason_aad, AuditRecords, Entry, Record, SealedBreakGlass};
use crate::factors::crypto::KeyRing;
use crate::metrics::METRICS;

/// Entries kept for a store that does not answer; past it, the oldest are dropped (they are
/// still in the logs). Break-glass records are never dropped.
pub const BACKLOG: usize = 100_000;
/// Rows written in one transaction.
const BATCH: usize = 500;
/// After a refusal, the store is tried again this often.
const RETRY: Duration = Duration::from_secs(2);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub struct Writer {
    store: Arc<dyn AuditRecords>,
    keys: Arc<KeyRing>,
    retention: Option<Duration>,
    entries: VecDeque<Entry>,
    glass: VecDeque<SealedBreakGlass>,
    retry_at: Option<Instant>,
    pruned_at: Option<Instant>,
    /// Entries dropped when the SOC was last told, and when.
    dropped: (u64, Option<Instant>),
    /// Whether the last write failed (said once per outage).
    failing: bool,
    chain: Chainer,
    signer: Arc<Signer>,
    /// How often a checkpoint is signed (when the chain moved on), and the last one's number.
    checkpoint_every: Duration,
    checkpointed: (i64, Option<Instant>),
}

impl Writer {
    pub fn new(
        store: Arc<dyn AuditRecords>,
        keys: Arc<KeyRing>,
        retention: Option<Duration>,
    ) -> Self {
        Self {
            store,
            keys,
            retention,
            entries: VecDeque::new(),
            glass: VecDeque::new(),
            retry_at: None,
            pruned_at: None,
            dropped: (0, None),
            failing: false,
            chain: Chainer::new(Chainer::name_for_this_process()),
            signer: Arc::new(Signer::ephemeral()),
            checkpoint_every: Duration::from_secs(60),
            checkpointed: (0, None),
        }
    }

    /// Sign checkpoints with `signer` every `every` (when entries were written meanwhile).
    pub fn signing(mut self, signer: Arc<Signer>, every: Duration) -> Self {
        self.signer = signer;
        self.checkpoint_every = every;
        self
    }

    /// Write into the chain `name` (tests: a known name).
    #[cfg(test)]
    pub fn chain(mut self, name: &str) -> Self {
        self.chain = Chainer::new(name.into());
        self
    }

    pub fn run(mut self, rx: Receiver<Record>) {
        loop {
            match rx.recv_timeout(RETRY) {
                Ok(r) => {
                    self.take(r);
                    while self.entries.len() < BATCH {
                        match rx.try_recv() {
                            Ok(r) => self.take(r),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush(Instant::now());
                    self.checkpointed.1 = None;
                    self.checkpoint(Instant::now());
                    return;
                }
            }
            for b in super::take_glass() {
                self.take(Record::BreakGlass(b));
            }
            let now = Instant::now();
            self.flush(now);
            self.checkpoint(now);
            self.prune(now);
            self.say_dropped(now);
            super::fold::write_due();
        }
    }

    pub fn take(&mut self, record: Record) {
        match record {
            Record::Entry(e) => {
                super::forwarded(&e);
                if self.entries.len() >= BACKLOG {
                    self.entries.pop_front();
                    METRICS.audit_dropped.inc();
                }
                self.entries.push_back(e);
            }
            Record::Wake => {}
            Record::BreakGlass(b) => {
                let keys = &self.keys;
                let sealed =
                    b.with_reason(|b| keys.seal(&reason_aad(&b.id, &b.user), b.reason.as_bytes()));
                self.glass.push_back(sealed);
            }
        }
        METRICS.audit_pending.set(self.pending() as i64);
    }

    pub fn pending(&self) -> usize {
        self.entries.len() + self.glass.len()
    }

    /// Write what is kept, oldest first, in batches; whether nothing is left. After a refusal
    /// the store is left alone until [`RETRY`] has passed.
    pub fn flush(&mut self, now: Instant) -> bool {
        if self.retry_at.is_some_and(|at| now < at) {
            return false;
        }
        while self.pending() > 0 {
            let n = self.entries.len().min(BATCH);
            let g = self.glass.len().min(BATCH);
            let mut entries = self.entries.make_contiguous()[..n].to_vec();
            let links = self.chain.links(&self.keys, &entries);
            for (e, link) in entries.iter_mut().zip(links) {
                e.link = Some(link);
            }
            let glass = &self.glass.make_contiguous()[..g];
            if let Err(e) = self.store.insert(&entries, glass) {
                self.retry_at = Some(now + RETRY);
                if !self.failing {
                    self.failing = true;
                    tracing::error!(target: "vigie::alert", severity = "high", event = "audit_store_down", kept = self.pending(), error = %e, "the audit store refused a write: entries are kept and written when it answers");
                }
                METRICS.audit_pending.set(self.pending() as i64);
                return false;
            }
            if let Some(last) = entries.last().and_then(|e| e.link.as_ref()) {
                self.chain.commit(last);
            }
            self.entries.drain(..n);
            self.glass.drain(..g);
        }
        if std::mem::take(&mut self.failing) {
            tracing::warn!(target: "vigie::alert", severity = "low", event = "audit_store_back", "the audit store answers again: the entries kept are written");
        }
        self.retry_at = None;
        METRICS.audit_pending.set(0);
        true
    }

    /// Entries dropped (a full queue or backlog) are an alert, at most once a minute: a gap in
    /// the trail is what an attacker flooding it wants unnoticed.
    fn say_dropped(&mut self, now: Instant) {
        let total = METRICS.audit_dropped.get();
        let (told, at) = self.dropped;
        if total > told && at.is_none_or(|at| now >= at + Duration::from_secs(60)) {
            tracing::error!(target: "vigie::alert", severity = "high", event = "audit_entries_dropped", dropped = total - told, "audit entries were dropped (the queue or the backlog was full): the trail has a gap; the logs still carry them");
            self.dropped = (total, Some(now));
        }
    }

    /// Sign where the chain has reached, keep it, and publish it in the log: removing the
    /// newest entries is caught against the last checkpoint, even one the store lost.
    pub fn checkpoint(&mut self, now: Instant) {
        let Some((seq, mac)) = self.chain.head() else {
            return;
        };
        let (done, at) = self.checkpointed;
        if seq == done || at.is_some_and(|at| now < at + self.checkpoint_every) {
            return;
        }
        let cp = self
            .signer
            .sign(self.chain.name(), seq, mac, super::now_us());
        tracing::info!(target: "vigie::checkpoint", event = "audit_checkpoint", chain = %cp.chain, seq = cp.seq, mac = %cp.mac, at_us = cp.at_us, signer = %cp.signer, signature = %cp.signature, "audit trail checkpoint");
        // And to the SIEM's sinks: another copy out of the store's reach.
        if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&cp) {
            super::forwarded(&Entry {
                id: super::new_id(),
                at_us: cp.at_us,
                level: "info".into(),
                event: "audit_checkpoint".into(),
                user: None,
                fields,
                link: None,
            });
        }
        // Published either way (the log is the copy the store's writer cannot reach).
        if let Err(e) = self.store.checkpoint(&cp) {
            tracing::warn!(error = %e, "an audit checkpoint could not be stored; it is in the log");
        }
        self.checkpointed = (seq, Some(now));
    }

    fn prune(&mut self, now: Instant) {
        let Some(keep) = self.retention else { return };
        if self.pruned_at.is_some_and(|at| now < at + PRUNE_EVERY) {
            return;
        }
        self.pruned_at = Some(now);
        let before = super::now_us() - keep.as_micros() as i64;
        match self.prune_before(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "audit entries past the retention removed"),
            Err(e) => {
                tracing::warn!(error = %e, "the audit store could not be pruned; trying again in an hour")
            }
        }
    }

    /// Remove what is older than `before_us`, each chain's new start anchored.
    pub fn prune_before(&self, before_us: i64) -> Result<u64, super::AuditError> {
        let anchors: Vec<Anchor> = self
            .store
            .heads_before(before_us)?
            .iter()
            .map(|head| Anchor::new(&self.keys, head))
            .collect();
        self.store.prune(before_us, &anchors)
    }
}
