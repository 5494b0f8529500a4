//! The `tracing` layer that copies every `vigie::audit` event to the audit queue, and every
//! named `vigie::alert` event too (a store outage, a rolled-back database: security events
//! the SOC must see). The log filter always lets both targets through (see `telemetry`): the
//! trail is kept whatever level the logs are set to.

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

use super::{submit, Entry, Record};

/// The audit events' target.
pub const TARGET: &str = "vigie::audit";
/// The operational alerts' target: kept when they name their `event`.
pub const ALERT_TARGET: &str = "vigie::alert";

pub struct AuditLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if target != TARGET && target != ALERT_TARGET {
            return;
        }
        let e = entry(event);
        if kept(target, &e) {
            submit(Record::Entry(e));
        }
    }
}

/// Whether an event of `target` goes into the trail: every audit event, and the operational
/// alerts that name their `event` (a detector alert's own log line has none: the alert
/// reaches the sinks itself).
pub fn kept(target: &str, e: &Entry) -> bool {
    target == TARGET || (target == ALERT_TARGET && e.event != "-")
}

/// The event as kept: `event` and `user` lifted out of the fields.
pub fn entry(event: &tracing::Event<'_>) -> Entry {
    let mut fields = Fields(Map::new());
    event.record(&mut fields);
    let mut fields = fields.0;
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let event_name = text(fields.remove("event")).unwrap_or_else(|| "-".into());
    let user = text(fields.remove("user")).filter(|u| u != "-");
    Entry {
        id: super::new_id(),
        at_us: super::now_us(),
        level: event.metadata().level().as_str().to_ascii_lowercase(),
        event: event_name,
        user,
        fields,
        link: None,
    }
}

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%x` fields arrive here too, already in their display form.
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}
