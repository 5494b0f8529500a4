//! The alert queue through the admin API: list with filters and counts per status, show one
//! with its history, and triage it (status, assignment, note). Every change is made by a named
//! analyst (the shared admin token is `admin-token`), recorded with the alert and audited; a
//! note is sealed at rest and never logged.

use http::Response;
use serde_json::json;

use super::{json, AdminApp};
use crate::alerts::triage::{Change, Filter, Resolution, Status};
use crate::alerts::{AlertStore, SinkError};

/// Who acts through the shared admin token (per-person tokens name their holder).
pub const SHARED_TOKEN: &str = "admin-token";

impl AdminApp {
    fn canonical(&self, user: &str) -> String {
        match &self.names {
            Some(profile) => crate::identity::login::canonical(profile, user),
            None => user.to_string(),
        }
    }

    /// The alert store, or why there is none.
    fn alert_store(&self) -> Result<AlertStore, &'static str> {
        let Some(detector) = &self.detector else {
            return Err("detection is disabled");
        };
        detector
            .alerts()
            .store()
            .ok_or("no alert store: set [alerts] store = true")
    }

    /// `GET /api/alerts?status=…&severity=…&rule=…&user=…&portal=…&assignee=…&since=…&until=…&sort=newest|risk&limit=N`,
    /// `GET /api/alerts/show?id=…`,
    /// `POST /api/alerts/status?id=…&to=…[&from=…][&resolution=…][&note=…]`,
    /// `POST /api/alerts/assign?id=…&to=ANALYST` (empty: unassigned), `POST /api/alerts/note?id=…&note=…`.
    pub(super) async fn alerts_api(
        &self,
        method: &str,
        path: &str,
        params: &[(String, String)],
        analyst: &str,
    ) -> Response<Vec<u8>> {
        let store = match self.alert_store() {
            Ok(s) => s,
            Err(e) => return json(404, json!({ "error": e })),
        };
        let analyst = analyst.to_string();
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let canonical = |u: &str| self.canonical(u);
        let path = path.to_string();
        let method = method.to_string();
        let read = match (method.as_str(), path.as_str()) {
            ("GET", "/api/alerts") => match Filter::from_params(pairs, &canonical) {
                Ok(f) => Ok((store, Request::List(f))),
                Err(e) => Err(e),
            },
            ("GET", "/api/alerts/show") => {
                only(&pairs, &["id"]).map(|_| (store, Request::Show(value(&pairs, "id"))))
            }
            ("POST", "/api/alerts/status") => {
                only(&pairs, &["id", "to", "from", "resolution", "note"])
                    .and_then(|_| status_change(&pairs))
                    .map(|(change, note)| {
                        (store, Request::Change(value(&pairs, "id"), change, note))
                    })
            }
            ("POST", "/api/alerts/assign") => only(&pairs, &["id", "to", "note"]).map(|_| {
                let to = Some(value(&pairs, "to")).filter(|t| !t.is_empty());
                let note = Some(value(&pairs, "note")).filter(|n| !n.is_empty());
                (
                    store,
                    Request::Change(value(&pairs, "id"), Spec::Change(Change::Assign(to)), note),
                )
            }),
            ("POST", "/api/alerts/note") => only(&pairs, &["id", "note"]).map(|_| {
                (
                    store,
                    Request::Change(
                        value(&pairs, "id"),
                        Spec::Change(Change::Note),
                        Some(value(&pairs, "note")),
                    ),
                )
            }),
            _ => return json(405, json!({ "error": "see the admin API in the README" })),
        };
        let (store, request) = match read {
            Ok(r) => r,
            Err(e) => return json(400, json!({ "error": e })),
        };
        // Off the admin listener's thread: a slow store does not hold up health checks.
        let answer = tokio::task::spawn_blocking(move || request.run(&store, &analyst)).await;
        match answer {
            Ok(r) => r,
            Err(e) => json(500, json!({ "error": e.to_string() })),
        }
    }
}

enum Request {
    List(Filter),
    Show(String),
    Change(String, Spec, Option<String>),
}

/// A change as asked: complete, or a status change whose expected status is the current one.
enum Spec {
    Change(Change),
    Status {
        to: Status,
        resolution: Option<Resolution>,
    },
}

/// The status an alert has now.
fn current(store: &AlertStore, id: &str) -> Result<Status, SinkError> {
    let alert = store.get(id)?.ok_or(SinkError::Triage(
        crate::alerts::triage::TriageError::NotFound,
    ))?;
    let status = alert["vigie"]["triage"]["status"].as_str().unwrap_or("");
    Status::parse(status).map_err(SinkError::Triage)
}

impl Request {
    fn run(self, store: &AlertStore, analyst: &str) -> Response<Vec<u8>> {
        let failed = |e: SinkError| match e {
            SinkError::Triage(t) => {
                let code = match t {
                    crate::alerts::triage::TriageError::NotFound => 404,
                    crate::alerts::triage::TriageError::Conflict(_) => 409,
                    _ => 400,
                };
                json(code, json!({ "error": t.to_string() }))
            }
            other => json(503, json!({ "error": other.to_string() })),
        };
        match self {
            Request::List(f) => {
                let listed = store.list(&f).and_then(|l| Ok((l, store.counts(&f)?)));
                match listed {
                    Ok((alerts, counts)) => {
                        let counts: serde_json::Map<String, serde_json::Value> = counts
                            .into_iter()
                            .map(|(s, n)| (s.as_str().to_string(), n.into()))
                            .collect();
                        json(200, json!({ "alerts": alerts, "counts": counts }))
                    }
                    Err(e) => failed(e),
                }
            }
            Request::Show(id) => match store.get(&id) {
                Ok(None) => json(404, json!({ "error": "no alert has this id" })),
                Ok(Some(alert)) => match store.history(&id) {
                    Ok(history) => json(200, json!({ "alert": alert, "history": history })),
                    Err(e) => failed(e),
                },
                Err(e) => failed(e),
            },
            Request::Change(id, change, note) => {
                let change = match change {
                    Spec::Change(c) => c,
                    // No `from`: the status the alert has now (the CLI's one-shot use).
                    Spec::Status { to, resolution } => match current(store, &id) {
                        Ok(expected) => Change::Status {
                            expected,
                            to,
                            resolution,
                        },
                        Err(e) => return failed(e),
                    },
                };
                match store.change(&id, &change, analyst, note.as_deref()) {
                    Ok(()) => {
                        tracing::warn!(target: "vigie::audit", event = "alert_triaged", alert = %id, change = change.kind(), detail = %describe(&change), note_chars = note.as_ref().map_or(0, |n| n.chars().count()), by = %analyst);
                        match store.get(&id) {
                            Ok(Some(alert)) => json(200, json!({ "alert": alert })),
                            Ok(None) => json(404, json!({ "error": "no alert has this id" })),
                            Err(e) => failed(e),
                        }
                    }
                    Err(e) => failed(e),
                }
            }
        }
    }
}

/// The change in words for the audit line (never the note).
fn describe(change: &Change) -> String {
    match change {
        Change::Status { to, resolution, .. } => {
            crate::alerts::triage::label(to.as_str(), resolution.map(|r| r.as_str()))
        }
        Change::Assign(Some(who)) => format!("to {who}"),
        Change::Assign(None) => "unassigned".into(),
        Change::Note => "note".into(),
        Change::Action(what) => what.clone(),
    }
}

fn value(pairs: &[(&str, &str)], key: &str) -> String {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

/// Only these parameters, and an id.
fn only(pairs: &[(&str, &str)], known: &[&str]) -> Result<(), String> {
    if let Some((k, _)) = pairs.iter().find(|(k, _)| !known.contains(k)) {
        return Err(format!(
            "unknown parameter `{}`: this takes {}",
            k.chars().take(32).collect::<String>(),
            known.join(", ")
        ));
    }
    match value(pairs, "id").is_empty() {
        true => Err("the id parameter is required".into()),
        false => Ok(()),
    }
}

fn status_change(pairs: &[(&str, &str)]) -> Result<(Spec, Option<String>), String> {
    let to = Status::parse(&value(pairs, "to")).map_err(|e| e.to_string())?;
    let resolution = match value(pairs, "resolution") {
        r if r.is_empty() => None,
        r => Some(Resolution::parse(&r).map_err(|e| e.to_string())?),
    };
    let expected = match value(pairs, "from") {
        f if f.is_empty() => None,
        f => Some(Status::parse(&f).map_err(|e| e.to_string())?),
    };
    let note = Some(value(pairs, "note")).filter(|n| !n.is_empty());
    let spec = match expected {
        Some(expected) => Spec::Change(Change::Status {
            expected,
            to,
            resolution,
        }),
        None => Spec::Status { to, resolution },
    };
    Ok((spec, note))
}
