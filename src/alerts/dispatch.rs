//! Fan-out of raised alerts to the sinks, one thread and one bounded queue per sink.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    Alert, AlertError, AlertStore, JsonlSink, Sink, StoreSink, SyslogSettings, SyslogSink,
    WebhookSettings, WebhookSink,
};
use crate::metrics::METRICS;

/// Which sinks run; validated from the configuration by its owner.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub jsonl: Option<PathBuf>,
    pub syslog: Option<SyslogSettings>,
    pub webhook: Option<WebhookSettings>,
    pub store: Option<PathBuf>,
    /// How long stored alerts are kept (`None`: for ever).
    pub retention: Option<Duration>,
    /// Alerts each sink may have waiting before new ones are dropped.
    pub queue_capacity: usize,
}

impl Default for SinkSettings {
    fn default() -> Self {
        Self {
            jsonl: None,
            syslog: None,
            webhook: None,
            store: None,
            retention: Some(Duration::from_secs(365 * 86_400)),
            queue_capacity: 4096,
        }
    }
}

/// Built once per alert and shared by every sink's queue.
struct Delivery {
    alert: Alert,
    ecs: Value,
}

enum Message {
    Deliver(Arc<Delivery>),
    /// A security event's ECS document (not an alert).
    Event(Arc<Value>),
    /// Answered once everything queued before it has been handled.
    Flush(mpsc::Sender<()>),
}

struct Worker {
    name: &'static str,
    queue: SyncSender<Message>,
}

/// The alert pipeline's entry point; share it (e.g. in an `Arc`) with the request path.
pub struct Alerts {
    workers: Vec<Worker>,
    store: Option<AlertStore>,
}

/// How long a sink's thread waits for an alert before letting it retry what it kept.
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

fn run(mut sink: Box<dyn Sink>, queue: Receiver<Message>) {
    let name = sink.name();
    // Ends when `Alerts` is dropped and the queue drained.
    loop {
        let message = match queue.recv_timeout(RETRY_EVERY) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                sink.retry();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        match message {
            Message::Deliver(d) => {
                if let Err(e) = sink.deliver(&d.alert, &d.ecs) {
                    METRICS.alert_sink_failures.with_label_values(&[name]).inc();
                    tracing::warn!(target: "vigie::alert", sink = name, id = %d.alert.id, error = %e, "alert delivery failed");
                }
            }
            Message::Event(doc) => {
                if let Err(e) = sink.deliver_event(&doc) {
                    METRICS.alert_sink_failures.with_label_values(&[name]).inc();
                    tracing::debug!(sink = name, error = %e, "security event delivery failed");
                }
            }
            Message::Flush(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

impl Alerts {
    /// Opens every configured sink and starts its thread. A JSONL file or store that cannot be
    /// opened, or a malformed webhook, fails here; a syslog collector may come up later.
    pub fn start(settings: SinkSettings) -> Result<Self, AlertError> {
        let store = match &settings.store {
            Some(path) => Some(AlertStore::open(path).map_err(|source| AlertError::Sink {
                sink: "store",
                source,
            })?),
            None => None,
        };
        Self::start_with(settings, store)
    }

    /// The same, with the store already opened (by [`crate::storage::open`], which knows
    /// whether alerts are kept in the SQLite file or in PostgreSQL).
    pub fn start_with(
        settings: SinkSettings,
        store: Option<AlertStore>,
    ) -> Result<Self, AlertError> {
        let fail = |sink| move |source| AlertError::Sink { sink, source };
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if let Some(path) = &settings.jsonl {
            sinks.push(Box::new(JsonlSink::open(path).map_err(fail("jsonl"))?));
        }
        if let Some(store) = &store {
            sinks.push(Box::new(
                StoreSink::new(store.clone()).keeping(settings.retention),
            ));
        }
        if let Some(webhook) = settings.webhook {
            sinks.push(Box::new(
                WebhookSink::new(webhook).map_err(fail("webhook"))?,
            ));
        }
        if let Some(syslog) = settings.syslog {
            sinks.push(Box::new(SyslogSink::new(syslog)));
        }
        let mut workers = Vec::with_capacity(sinks.len());
        for sink in sinks {
            let name = sink.name();
            let (queue, rx) = mpsc::sync_channel(settings.queue_capacity.max(1));
            thread::Builder::new()
                .name(format!("vigie-alerts-{name}"))
                .spawn(move || run(sink, rx))
                .map_err(|source| AlertError::Thread { sink: name, source })?;
            workers.push(Worker { name, queue });
        }
        Ok(Self { workers, store })
    }

    /// No sinks: alerts are still logged and counted.
    pub fn disabled() -> Self {
        Self {
            workers: Vec::new(),
            store: None,
        }
    }

    /// Log, count and queue an alert for every sink; never blocks.
    pub fn raise(&self, alert: Alert) {
        METRICS
            .alerts
            .with_label_values(&[alert.rule_id.as_str(), alert.severity.as_str()])
            .inc();
        // Rule, score and user only: evidence and pseudonyms stay in the sinks.
        tracing::warn!(
            target: "vigie::alert",
            id = %alert.id,
            rule = %alert.rule_id,
            severity = alert.severity.as_str(),
            score = alert.risk_score,
            user = %alert.user,
            portal = %alert.portal,
            action = %alert.action,
            "{}",
            alert.rule_name
        );
        if self.workers.is_empty() {
            return;
        }
        let ecs = alert.to_ecs();
        let delivery = Arc::new(Delivery { alert, ecs });
        for worker in &self.workers {
            match worker.queue.try_send(Message::Deliver(delivery.clone())) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    METRICS
                        .alert_sink_dropped
                        .with_label_values(&[worker.name])
                        .inc();
                }
            }
        }
    }

    /// Queue a security event (an audit entry) for every sink but the store (which keeps it
    /// in the audit trail); never blocks, drops when a sink's queue is full (counted).
    pub fn event(&self, entry: &crate::audit::Entry) {
        if self.workers.iter().all(|w| w.name == "store") {
            return;
        }
        let doc = Arc::new(super::events::to_ecs(entry));
        for worker in self.workers.iter().filter(|w| w.name != "store") {
            if worker.queue.try_send(Message::Event(doc.clone())).is_err() {
                METRICS
                    .alert_sink_dropped
                    .with_label_values(&[worker.name])
                    .inc();
            }
        }
    }

    /// The alert store, for the admin API, when one is configured.
    pub fn store(&self) -> Option<AlertStore> {
        self.store.clone()
    }

    /// Waits until every sink has handled what was queued before this call, or `timeout` passes.
    /// True when all sinks caught up in time.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack, acks) = mpsc::channel();
        let mut expected = 0;
        for worker in &self.workers {
            let mut marker = Message::Flush(ack.clone());
            // Polling, since a full queue must not turn into an unbounded wait.
            loop {
                match worker.queue.try_send(marker) {
                    Ok(()) => {
                        expected += 1;
                        break;
                    }
                    Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                        marker = m;
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return false,
                }
            }
        }
        drop(ack);
        (0..expected).all(|_| {
            let left = deadline.saturating_duration_since(Instant::now());
            acks.recv_timeout(left).is_ok()
        })
    }
}
