//! What the SOC oversees beside alerts: the signed-in sessions of every replica (the store is
//! shared), the holds, and the break-glass uses with their reasons and ends. Reads only.

use std::collections::HashMap;

use minijinja::context;
use serde_json::Value;

use super::render::{self, when};
use super::roles::{may, Action};
use super::session::Analyst;
use super::views::{flash, query};
use super::{Console, Reply, Request};
use crate::pages::Lang;

/// Sessions the all-users view lists at most (newest first); beyond, by user.
const ALL_SESSIONS: usize = 200;

impl Console {
    /// Live sessions as rows, one user's or everyone's (newest first, at most
    /// [`ALL_SESSIONS`]); `None`: the store did not answer. `involved`: the fingerprint an
    /// alert names.
    pub(super) async fn session_rows(
        &self,
        lang: Lang,
        user: Option<&str>,
        involved: Option<&str>,
    ) -> Option<Vec<Value>> {
        let store = &self.gateway.store;
        let list = match user {
            Some(user) => store.list_user(user).await,
            None => store.list_all(ALL_SESSIONS).await,
        }
        .ok()?;
        let zone = &self.config.zone;
        let rows = list
            .iter()
            .map(|(fp, r)| {
                let at = |s: u64| when(lang, zone, s as i64 * 1_000_000).0;
                serde_json::json!({
                    "fingerprint": fp, "user": r.user, "portal": r.portal, "level": r.level.label(),
                    "query": query(&[("user", r.user.as_deref().unwrap_or(""))]),
                    "ip": r.client_ip.to_string(), "started": at(r.created), "last_seen": at(r.last_seen),
                    "break_glass": r.break_glass_until.map(at),
                    "step_up": r.proof_wanted(),
                    "involved": involved.is_some_and(|i| !i.is_empty() && fp == i),
                })
            })
            .collect();
        Some(rows)
    }

    pub(super) fn holds(&self, req: &Request, a: &Analyst) -> Reply {
        if !may(&a.roles, Action::ViewHolds) {
            return self.forbidden(req, a, Action::ViewHolds);
        }
        let lang = req.lang;
        let zone = &self.config.zone;
        let holds: Vec<Value> = self
            .detector
            .as_ref()
            .map(|d| d.holds(self.clock.now_us() as i64))
            .unwrap_or_default()
            .into_iter()
            .map(|(portal, user, h)| {
                serde_json::json!({
                    "portal": portal, "user": user, "rule": h.rule, "score": h.score, "alert": h.alert_id,
                    "since": when(lang, zone, h.since_us).0, "until": when(lang, zone, h.until_us).0,
                })
            })
            .collect();
        let frame = self.frame(req, Some(a), "holds");
        Reply::html(
            200,
            render::render("holds.html", lang, &frame, context! { holds }),
            false,
        )
    }

    pub(super) async fn sessions_page(&self, req: &Request, a: &Analyst) -> Reply {
        if !may(&a.roles, Action::ViewSessions) {
            return self.forbidden(req, a, Action::ViewSessions);
        }
        // No user named: every signed-in session, on every replica (the store is shared).
        let user = req.param("user").unwrap_or_default().trim().to_string();
        let one = Some(user.as_str()).filter(|u| !u.is_empty());
        let rows = self.session_rows(req.lang, one, None).await;
        let unavailable = rows.is_none();
        let sessions = rows.unwrap_or_default();
        let capped = one.is_none() && sessions.len() >= ALL_SESSIONS;
        let mut frame = self.frame(req, Some(a), "sessions");
        frame.flash = flash(req, req.lang);
        let html = render::render(
            "sessions.html",
            req.lang,
            &frame,
            context! { user, sessions, unavailable, capped, max => ALL_SESSIONS.to_string() },
        );
        Reply::html(200, html, false)
    }

    pub(super) async fn break_glass(&self, req: &Request, a: &Analyst) -> Reply {
        if !may(&a.roles, Action::ReviewBreakGlass) {
            return self.forbidden(req, a, Action::ReviewBreakGlass);
        }
        let audit = self.audit.clone();
        let read = tokio::task::spawn_blocking(move || {
            let list = audit.break_glass(None, 200)?;
            let ends = audit.recent(&crate::audit::Query {
                event: Some("break_glass_ended".into()),
                user: None,
                limit: 2_000,
            })?;
            Ok::<_, crate::audit::AuditError>((list, ends))
        })
        .await;
        let Ok(Ok((list, ends))) = read else {
            return self.message(req, Some(a), 503, "not_found_title", "unavailable");
        };
        // Reading the reasons is itself audited: they may name a patient.
        tracing::warn!(target: "vigie::audit", event = "break_glass_reviewed", records = list.len(), user = %a.user, by = "console");
        let lang = req.lang;
        let zone = &self.config.zone;
        let ended = ends_by_record(&ends);
        let now_us = self.clock.now_us() as i64;
        let uses: Vec<Value> = list
            .iter()
            .map(|r| {
                let state = match ended.get(&r.id) {
                    Some((at, how)) => {
                        format!("{} · {}", when(lang, zone, *at).0, ending_label(lang, how))
                    }
                    None if r.until * 1_000_000 > now_us => render::message(lang, "bg_running"),
                    None => render::message(lang, "bg_over_unseen"),
                };
                serde_json::json!({
                    "when": when(lang, zone, r.at_us).0, "user": r.user, "portal": r.portal,
                    "until": when(lang, zone, r.until * 1_000_000).0, "reason": r.reason,
                    "ended": state,
                })
            })
            .collect();
        let frame = self.frame(req, Some(a), "break_glass");
        Reply::html(
            200,
            render::render("break_glass.html", lang, &frame, context! { uses }),
            false,
        )
    }
}

/// Each break-glass use's end (when, how), by the id of its record, which the session carried
/// from its start (two uses of one user in the same second stay apart). An end without one
/// (a session already in break-glass when the gateway was upgraded) names no use.
fn ends_by_record(ends: &[crate::audit::Entry]) -> HashMap<String, (i64, String)> {
    let mut ended = HashMap::new();
    for e in ends {
        let text = |k: &str| e.fields.get(k).and_then(Value::as_str).unwrap_or("");
        if !text("record").is_empty() {
            let how = text("ended_by").to_string();
            ended
                .entry(text("record").to_string())
                .or_insert((e.at_us, how));
        }
    }
    ended
}

/// How a break-glass ended, in words (an ending the catalogue does not name, as logged).
fn ending_label(lang: Lang, how: &str) -> String {
    match how {
        "window_over" | "sign_out" | "portal_logout" | "revoked" | "locked" | "timeout"
        | "evicted" => render::message(lang, &format!("bg_end_{how}")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_names_its_own_use() {
        let end = |record: &str, at_us: i64, how: &str| {
            crate::audit::Entry {
            id: crate::audit::new_id(),
            at_us,
            level: "warn".into(),
            event: "break_glass_ended".into(),
            user: Some("dr.martin".into()),
            fields: serde_json::json!({ "portal": "ehr", "until": 1_700_000_600, "record": record, "ended_by": how })
                .as_object()
                .unwrap()
                .clone(),
            link: None,
        }
        };
        // Two uses of one user, started in the same second: ending one ends only that one.
        let ended = ends_by_record(&[end("r2", 20, "sign_out"), end("", 15, "revoked")]);
        assert_eq!(ended.get("r2"), Some(&(20, "sign_out".to_string())));
        assert_eq!(ended.get("r1"), None, "still running");
        assert_eq!(ended.len(), 1, "an end without a record names no use");
        assert_eq!(ending_label(Lang::En, "window_over"), "window over");
        assert_eq!(ending_label(Lang::En, "replaced"), "replaced", "as logged");
    }
}
