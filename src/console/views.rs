//! The console's alert pages: the queue and an alert. Reads only; changes are in
//! [`super::actions`], the other views in [`super::oversight`].

use minijinja::context;
use serde::Serialize;
use serde_json::Value;

use super::render::{self, chart, number, when};
use super::roles::{may, Action};
use super::session::Analyst;
use super::{Console, Reply, Request};
use crate::alerts::triage::{self, Filter, Resolution, Status, STATUSES};
use crate::pages::Lang;

/// One alert as a row of the queue.
#[derive(Serialize)]
struct Row {
    id: String,
    when: String,
    iso: String,
    severity: String,
    severity_label: String,
    risk: String,
    rule: String,
    rule_name: String,
    user: String,
    privileged: bool,
    portal: String,
    status: String,
    status_label: String,
    assignee: Option<String>,
}

/// The messages a redirect may name (`?problem=`): any other key is not shown, so nobody
/// can put words of their own in the console's voice with a link.
const PROBLEMS: [&str; 8] = [
    "reason_needed",
    "conflict",
    "refused",
    "confirm_needed",
    "reopen_note_needed",
    "resolution_needed",
    "no_hold_to_release",
    "unavailable",
];

/// A query string, each value encoded.
pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The notice of a done action (`?done=…&n=…`), from the catalogue only, `n` a number.
pub(super) fn flash(req: &Request, lang: Lang) -> Option<String> {
    let done = req.param("done")?;
    if !["status", "assign", "release", "stepup", "revoke", "lock"].contains(&done.as_str()) {
        return None;
    }
    let n = req
        .param("n")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    Some(render::message(lang, &format!("done_{done}")).replace("{n}", &n.to_string()))
}

/// What changes when the queue does: the counts per status and the newest alert's id and
/// last change.
fn stamp(counts: &[(Status, u64)], alerts: &[Value]) -> String {
    use sha2::Digest;
    let newest = alerts.first().map_or(String::new(), |a| {
        format!(
            "{}/{}",
            text(&a["event"]["id"]),
            text(&a["vigie"]["triage"]["updated_us"])
        )
    });
    let text = format!("{counts:?}|{newest}");
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Console {
    fn row(&self, lang: Lang, a: &Value) -> Row {
        let t = &a["vigie"]["triage"];
        let status = text(&t["status"]);
        let severity = text(&a["vigie"]["severity"]);
        let at = a["@timestamp"]
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_microsecond());
        let (when, iso) = when(lang, &self.config.zone, at);
        Row {
            id: text(&a["event"]["id"]),
            when,
            iso,
            severity_label: render::message(lang, &format!("sev_{severity}")),
            severity,
            risk: text(&a["event"]["risk_score"]),
            rule: text(&a["rule"]["id"]),
            rule_name: text(&a["rule"]["name"]),
            user: text(&a["user"]["name"]),
            privileged: a["vigie"]["privileged"].as_bool().unwrap_or(false),
            portal: text(&a["service"]["name"]),
            status_label: render::message(lang, &format!("st_{status}")),
            status,
            assignee: t["assignee"].as_str().map(str::to_string),
        }
    }

    pub(super) async fn view(&self, req: &Request, a: &Analyst) -> Reply {
        let path = req.path.as_str();
        match path {
            "/" => self.queue(req, a).await,
            "/queue/state" => self.queue_state(req, a).await,
            "/holds" => self.holds(req, a),
            "/sessions" => self.sessions_page(req, a).await,
            "/break-glass" => self.break_glass(req, a).await,
            p if p.starts_with("/alerts/") => {
                let id = p.trim_start_matches("/alerts/");
                self.alert(req, a, id).await
            }
            _ => self.message(req, Some(a), 404, "not_found_title", "not_found_text"),
        }
    }

    /// A `datetime-local` value (in the hospital's zone) as unix seconds; others as given.
    fn local_time(&self, v: &str) -> String {
        match v.parse::<jiff::civil::DateTime>() {
            Ok(dt) => dt
                .to_zoned(self.config.zone.clone())
                .map_or(v.to_string(), |z| z.timestamp().as_second().to_string()),
            Err(_) => v.to_string(),
        }
    }

    async fn queue(&self, req: &Request, a: &Analyst) -> Reply {
        if !may(&a.roles, Action::ViewAlerts) {
            return self.forbidden(req, a, Action::ViewAlerts);
        }
        let Some(store) = self.alerts.clone() else {
            return self.message(req, Some(a), 503, "not_found_title", "unavailable");
        };
        let params = self.filter_params(req);
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut frame = self.frame(req, Some(a), "queue");
        let filter = match Filter::from_params(pairs, &|u: &str| u.to_string()) {
            Ok(f) => f,
            Err(e) => {
                frame.problem = Some(e);
                Filter {
                    limit: 100,
                    ..Filter::default()
                }
            }
        };
        let f = filter.clone();
        let read = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::alerts::SinkError>((store.list(&f)?, store.counts(&f)?))
        })
        .await;
        let Ok(Ok((alerts, counts))) = read else {
            return self.message(req, Some(a), 503, "not_found_title", "unavailable");
        };
        let lang = req.lang;
        let rows: Vec<Row> = alerts.iter().map(|v| self.row(lang, v)).collect();
        let raw = |k: &str| req.param(k).unwrap_or_default();
        let with_status = |s: &str| {
            let mut q: Vec<(String, String)> = req
                .params()
                .into_iter()
                .filter(|(k, _)| k != "status" && k != "lang")
                .collect();
            q.push(("status".into(), s.into()));
            let q: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish();
            format!("/?{q}")
        };
        let counts_raw = counts;
        let counts: Vec<Value> = counts_raw
            .iter()
            .map(|(s, n)| {
                serde_json::json!({
                    "status": s.as_str(), "n": n, "href": with_status(s.as_str()),
                    "label": render::message(lang, &format!("st_{}", s.as_str())),
                    "current": filter.statuses == [*s],
                })
            })
            .collect();
        let statuses: Vec<Value> = STATUSES
            .iter()
            .map(|s| serde_json::json!({ "value": s.as_str(), "label": render::message(lang, &format!("st_{}", s.as_str())), "selected": filter.statuses == [*s] }))
            .collect();
        let severities: Vec<Value> = ["low", "medium", "high", "critical"]
            .iter()
            .map(|s| serde_json::json!({ "value": s, "label": render::message(lang, &format!("sev_{s}")), "selected": filter.severities == [s.to_string()] }))
            .collect();
        let (now, now_iso) = when(lang, &self.config.zone, self.clock.now_us() as i64);
        frame.live = true;
        let stamp = stamp(&counts_raw, &alerts);
        let query = req.query.clone().unwrap_or_default();
        let html = render::render(
            "queue.html",
            lang,
            &frame,
            context! {
                alerts => rows, counts, statuses, severities, now, now_iso, stamp,
                state_url => format!("/queue/state?{query}"), here => format!("/?{query}"),
                f => context! {
                    rule => raw("rule"), user => raw("user"), portal => raw("portal"), source => raw("source"),
                    since => raw("since"), until => raw("until"), riskiest => filter.riskiest,
                },
            },
        );
        Reply::html(200, html, true)
    }

    /// `GET /queue/state?…`: whether the queue (with these filters) changed, for the page's
    /// live update: a stamp of the counts and the newest alert, and how many are new.
    async fn queue_state(&self, req: &Request, a: &Analyst) -> Reply {
        if !may(&a.roles, Action::ViewAlerts) {
            return self.forbidden(req, a, Action::ViewAlerts);
        }
        let Some(store) = self.alerts.clone() else {
            return Reply::json(503, serde_json::json!({ "error": "no alert store" }));
        };
        let params = self.filter_params(req);
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let Ok(mut f) = Filter::from_params(pairs, &|u: &str| u.to_string()) else {
            return Reply::json(400, serde_json::json!({ "error": "filters" }));
        };
        f.limit = 1;
        let read = tokio::task::spawn_blocking(move || {
            Ok::<_, crate::alerts::SinkError>((store.list(&f)?, store.counts(&f)?))
        })
        .await;
        match read {
            Ok(Ok((alerts, counts))) => {
                let new = counts
                    .iter()
                    .find(|(s, _)| *s == Status::New)
                    .map_or(0, |(_, n)| *n);
                Reply::json(
                    200,
                    serde_json::json!({ "stamp": stamp(&counts, &alerts), "new": new }),
                )
            }
            _ => Reply::json(503, serde_json::json!({ "error": "unavailable" })),
        }
    }

    /// The queue's filters from the address (a `datetime-local` read in the hospital's zone).
    fn filter_params(&self, req: &Request) -> Vec<(String, String)> {
        req.params()
            .into_iter()
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| match k.as_str() {
                "since" | "until" => (k, self.local_time(&v)),
                _ => (k, v),
            })
            .collect()
    }

    async fn alert(&self, req: &Request, a: &Analyst, id: &str) -> Reply {
        if !may(&a.roles, Action::ViewAlerts) {
            return self.forbidden(req, a, Action::ViewAlerts);
        }
        let Some(store) = self.alerts.clone() else {
            return self.message(req, Some(a), 503, "not_found_title", "unavailable");
        };
        let id_owned = id.to_string();
        let read = tokio::task::spawn_blocking(move || {
            let Some(alert) = store.get(&id_owned)? else {
                return Ok(None);
            };
            let history = store.history(&id_owned)?;
            let user = alert["user"]["name"].as_str().unwrap_or("").to_string();
            let others = store.list(&Filter {
                user: Some(user),
                limit: 11,
                ..Filter::default()
            })?;
            // The same workstation: another account used from it may be the same intruder.
            let source = alert["source"]["ip"].as_str().filter(|s| !s.is_empty());
            let nearby = match source {
                Some(ip) => store.list(&Filter {
                    source: Some(ip.to_string()),
                    limit: 11,
                    ..Filter::default()
                })?,
                None => Vec::new(),
            };
            let context = store.context(&id_owned)?;
            Ok::<_, crate::alerts::SinkError>(Some((alert, history, others, nearby, context)))
        })
        .await;
        let (alert, history, others, nearby, around) = match read {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => {
                return self.message(req, Some(a), 404, "not_found_title", "not_found_text")
            }
            _ => return self.message(req, Some(a), 503, "not_found_title", "unavailable"),
        };
        let lang = req.lang;
        let zone = &self.config.zone;
        let row = self.row(lang, &alert);
        let t = &alert["vigie"]["triage"];
        let current = Status::parse(&row.status).unwrap_or(Status::New);
        let window = {
            let at = |k: &str| {
                alert["event"][k]
                    .as_str()
                    .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                    .map_or(0, |t| t.as_microsecond())
            };
            format!(
                "{} → {}",
                when(lang, zone, at("start")).0,
                when(lang, zone, at("end")).0
            )
        };
        let evidence: Vec<Value> = alert["vigie"]["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let observed = e["observed"].as_f64().unwrap_or(0.0);
                let baseline = e["baseline"].as_f64();
                let threshold = e["threshold"].as_f64().unwrap_or(0.0);
                serde_json::json!({
                    "signal": text(&e["signal"]), "detail": text(&e["detail"]),
                    "observed": number(observed),
                    "baseline": baseline.map_or("—".to_string(), number),
                    "threshold": number(threshold),
                    "chart": chart(lang, observed, baseline, threshold),
                })
            })
            .collect();
        let moves: Vec<Value> = [Status::Acknowledged, Status::Investigating, Status::Closed]
            .into_iter()
            .filter(|to| {
                let r = (*to == Status::Closed).then_some(Resolution::Benign);
                triage::check(current, *to, r, Some("-")).is_ok()
            })
            .map(|to| {
                let reopen = current == Status::Closed;
                let label = if reopen { "move_reopen".to_string() } else { format!("move_{}", to.as_str()) };
                serde_json::json!({ "to": to.as_str(), "label": render::message(lang, &label), "note_needed": reopen })
            })
            .collect();
        let (portal, user) = (row.portal.clone(), row.user.clone());
        let held = self.detector.as_ref().is_some_and(|d| {
            d.holds(self.clock.now_us() as i64)
                .iter()
                .any(|(p, u, _)| *p == portal && *u == user)
        });
        let mut acts = Vec::new();
        if held && may(&a.roles, Action::ReleaseHold) {
            acts.push(("release", "act_release", "act_release_says"));
        }
        if may(&a.roles, Action::AskStepUp) {
            acts.push(("stepup", "act_stepup", "act_stepup_says"));
        }
        if may(&a.roles, Action::RevokeSessions) {
            acts.push(("revoke", "act_revoke", "act_revoke_says"));
        }
        if may(&a.roles, Action::LockAccount) {
            acts.push(("lock", "act_lock", "act_lock_says"));
        }
        let acts: Vec<Value> = acts
            .into_iter()
            .map(|(path, label, says)| serde_json::json!({ "path": path, "label": render::message(lang, label), "says": render::message(lang, says) }))
            .collect();
        let history: Vec<Value> = history
            .iter()
            .map(|h| {
                let (w, iso) = when(lang, zone, h.at_us);
                let what = match h.kind.as_str() {
                    "status" => format!("{} → {}", h.before.as_deref().unwrap_or("—"), h.after.as_deref().unwrap_or("—")),
                    "assign" => format!("{} → {}", render::message(lang, "c_assignee"), h.after.as_deref().unwrap_or("—")),
                    _ => h.after.clone().unwrap_or_else(|| h.kind.clone()),
                };
                serde_json::json!({ "when": w, "iso": iso, "analyst": h.analyst, "what": what, "note": h.note })
            })
            .collect();
        let others_of = |list: &[Value]| -> Vec<Row> {
            list.iter()
                .map(|o| self.row(lang, o))
                .filter(|o| o.id != row.id)
                .take(10)
                .collect()
        };
        let (others, nearby) = (others_of(&others), others_of(&nearby));
        let pace_chart = render::pace_chart(lang, &around.timeline, around.pace);
        let timeline: Vec<Value> = around
            .timeline
            .iter()
            .map(|s| {
                serde_json::json!({
                    "when": when(lang, zone, s.at_us).0, "method": s.method, "path": s.path,
                    "status": s.status, "bytes": s.bytes, "patients": s.patients, "window": s.window,
                })
            })
            .collect();
        let pace = around.pace.map(|p| {
            context! { expected => number(p.expected), threshold => number(p.threshold) }
        });
        let reidentify = around.reidentifiable && may(&a.roles, Action::Reidentify);
        let involved = text(&alert["vigie"]["session"]["hash"]);
        let sessions = self
            .session_rows(lang, Some(&user), Some(&involved))
            .await
            .unwrap_or_default();
        let resolution = t["resolution"].as_str().map(str::to_string);
        let mut frame = self.frame(req, Some(a), "alert");
        frame.flash = flash(req, lang);
        frame.problem = req
            .param("problem")
            .filter(|p| PROBLEMS.contains(&p.as_str()))
            .map(|p| render::message(lang, &p));
        let html = render::render(
            "alert.html",
            lang,
            &frame,
            context! {
                a => context! {
                    id => &row.id, rule_name => &row.rule_name, severity => &row.severity,
                    severity_label => &row.severity_label, user => &row.user, privileged => row.privileged,
                    portal => &row.portal, when => &row.when, iso => &row.iso, window, risk => &row.risk,
                    action => text(&alert["event"]["action"]), source => text(&alert["source"]["ip"]),
                    source_query => query(&[("source", &text(&alert["source"]["ip"]))]),
                    session => &involved, patients => text(&alert["vigie"]["patients"]["distinct"]),
                    status => &row.status, status_label => &row.status_label,
                    resolution => &resolution,
                    resolution_label => resolution.as_ref().map(|r| render::message(lang, &format!("r_{r}"))),
                    assignee => &row.assignee,
                },
                evidence, moves, acts, history, others, nearby, sessions, timeline, reidentify,
                pace, pace_chart,
            },
        );
        Reply::html(200, html, false)
    }
}
