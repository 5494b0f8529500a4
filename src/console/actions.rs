//! What analysts change from the console: an alert's triage, and actions on the identity behind
//! it (release the hold, end the sessions, lock the account, ask for a step-up). Each is allowed by role, asked
//! to be confirmed, recorded in the alert's history under the analyst's name and audited;
//! then back to the page (POST, redirect, GET).

use super::roles::{may, Action};
use super::session::Analyst;
use super::{Console, Reply, Request};
use crate::alerts::triage::{Change, Resolution, Status, TriageError};
use crate::alerts::SinkError;
use crate::identity::Ending;

impl Console {
    pub(super) async fn act(&self, req: &Request, a: &Analyst) -> Reply {
        let path = req.path.clone();
        if path == "/sessions/revoke" {
            return self.revoke_from_sessions(req, a).await;
        }
        let Some(rest) = path.strip_prefix("/alerts/") else {
            return self.message(req, Some(a), 404, "not_found_title", "not_found_text");
        };
        let Some((id, what)) = rest.split_once('/') else {
            return self.message(req, Some(a), 404, "not_found_title", "not_found_text");
        };
        let action = match what {
            "status" | "assign" => Action::Triage,
            "release" => Action::ReleaseHold,
            "revoke" => Action::RevokeSessions,
            "lock" => Action::LockAccount,
            "stepup" => Action::AskStepUp,
            "reidentify" => Action::Reidentify,
            _ => return self.message(req, Some(a), 404, "not_found_title", "not_found_text"),
        };
        if !may(&a.roles, action) {
            return self.forbidden(req, a, action);
        }
        let back = |q: &str| Reply::see(&format!("/alerts/{id}?{q}"));
        let Some(store) = self.alerts.clone() else {
            return self.message(req, Some(a), 503, "not_found_title", "unavailable");
        };
        if matches!(
            action,
            Action::ReleaseHold
                | Action::RevokeSessions
                | Action::LockAccount
                | Action::AskStepUp
                | Action::Reidentify
        ) && req.field("confirm") != "yes"
        {
            return back("problem=confirm_needed");
        }
        if action == Action::Reidentify {
            return self.reidentify(req, a, id, store).await;
        }
        // The identity the alert is about, from the store (never from the form).
        let id_owned = id.to_string();
        let s2 = store.clone();
        let alert = match tokio::task::spawn_blocking(move || s2.get(&id_owned)).await {
            Ok(Ok(Some(alert))) => alert,
            Ok(Ok(None)) => {
                return self.message(req, Some(a), 404, "not_found_title", "not_found_text")
            }
            _ => return self.message(req, Some(a), 503, "not_found_title", "unavailable"),
        };
        let user = alert["user"]["name"].as_str().unwrap_or("").to_string();
        let portal = alert["service"]["name"].as_str().unwrap_or("").to_string();
        let (change, note, done) = match what {
            "status" => {
                let parsed = Status::parse(&req.field("from")).and_then(|from| {
                    let to = Status::parse(&req.field("to"))?;
                    let resolution = match req.field("resolution") {
                        r if r.is_empty() => None,
                        r => Some(Resolution::parse(&r)?),
                    };
                    Ok(Change::Status {
                        expected: from,
                        to,
                        resolution,
                    })
                });
                match parsed {
                    Ok(c) => (c, Some(req.field("note")), "done=status".to_string()),
                    Err(_) => return back("problem=refused"),
                }
            }
            "assign" => {
                let to = Some(req.field("to")).filter(|t| !t.is_empty());
                (Change::Assign(to), None, "done=assign".into())
            }
            "release" => {
                let released = self
                    .detector
                    .as_ref()
                    .is_some_and(|d| d.release(&portal, &user, self.clock.now_us() as i64));
                if !released {
                    return back("problem=no_hold_to_release");
                }
                tracing::warn!(target: "vigie::audit", event = "hold_released", portal = %portal, of_user = %user, alert = %id, user = %a.user, by = "console");
                (
                    Change::Action("hold released".into()),
                    None,
                    "done=release".into(),
                )
            }
            "revoke" => match self.gateway.end_user(&user, None, Ending::Revoked).await {
                Ok(n) => {
                    tracing::warn!(target: "vigie::audit", event = "sessions_revoked", of_user = %user, count = n, alert = %id, user = %a.user, by = "console");
                    (
                        Change::Action(format!("sessions ended: {n}")),
                        None,
                        format!("done=revoke&n={n}"),
                    )
                }
                Err(_) => return back("problem=unavailable"),
            },
            "lock" => {
                let reason = format!("locked from the SOC console by {} (alert {id})", a.user);
                match self.gateway.lock_user(&user, &reason).await {
                    Ok(n) => {
                        tracing::warn!(target: "vigie::audit", event = "account_locked", of_user = %user, sessions_ended = n, alert = %id, user = %a.user, by = "console");
                        (
                            Change::Action("account locked".into()),
                            None,
                            "done=lock".into(),
                        )
                    }
                    Err(_) => return back("problem=unavailable"),
                }
            }
            "stepup" => {
                let now_us = self.clock.now_us() as i64;
                match self.gateway.store.want_proof(&user, now_us).await {
                    Ok(n) => {
                        tracing::warn!(target: "vigie::audit", event = "step_up_asked", of_user = %user, count = n, alert = %id, user = %a.user, by = "console");
                        (
                            Change::Action(format!("step-up asked of sessions: {n}")),
                            None,
                            format!("done=stepup&n={n}"),
                        )
                    }
                    Err(_) => return back("problem=unavailable"),
                }
            }
            _ => unreachable!("matched above"),
        };
        let analyst = a.user.clone();
        let id_owned = id.to_string();
        let c = change.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            store.change(&id_owned, &c, &analyst, note.as_deref())
        })
        .await;
        match recorded {
            Ok(Ok(())) => {
                if !matches!(change, Change::Action(_)) {
                    tracing::warn!(target: "vigie::audit", event = "alert_triaged", alert = %id, change = change.kind(), user = %a.user, note_chars = req.field("note").chars().count(), by = "console");
                }
                back(&done)
            }
            Ok(Err(SinkError::Triage(TriageError::Conflict(_)))) => back("problem=conflict"),
            Ok(Err(SinkError::Triage(TriageError::NoteNeeded))) => {
                back("problem=reopen_note_needed")
            }
            Ok(Err(SinkError::Triage(TriageError::ResolutionNeeded))) => {
                back("problem=resolution_needed")
            }
            Ok(Err(SinkError::Triage(_))) => back("problem=refused"),
            _ => back("problem=unavailable"),
        }
    }

    /// `POST /alerts/ID/reidentify`: the alert's patients for the DPO, with a reason. Shown
    /// once in the answer (not kept in any page or address), recorded in the alert's history
    /// with the reason sealed, audited, and alerted to the SOC.
    async fn reidentify(
        &self,
        req: &Request,
        a: &Analyst,
        id: &str,
        store: crate::alerts::AlertStore,
    ) -> Reply {
        let reason = req.field("reason");
        if reason.chars().count() < 10 {
            return Reply::see(&format!("/alerts/{id}?problem=reason_needed"));
        }
        let (s2, id_owned, analyst, why) = (
            store.clone(),
            id.to_string(),
            a.user.clone(),
            reason.clone(),
        );
        let opened = tokio::task::spawn_blocking(move || {
            let alert = s2.get(&id_owned)?;
            let patients = s2.reidentify(&id_owned)?;
            let change = Change::Action(format!("patients re-identified: {}", patients.len()));
            s2.change(&id_owned, &change, &analyst, Some(&why))?;
            Ok::<_, SinkError>((alert, patients))
        })
        .await;
        let Ok(Ok((Some(alert), patients))) = opened else {
            return self.message(req, Some(a), 503, "not_found_title", "unavailable");
        };
        let portal = alert["service"]["name"].as_str().unwrap_or("").to_string();
        let of_user = alert["user"]["name"].as_str().unwrap_or("").to_string();
        tracing::warn!(target: "vigie::audit", event = "patients_reidentified", user = %a.user, alert = %id, of_user = %of_user, count = patients.len(), reason_chars = reason.chars().count(), by = "console");
        if let Some(detector) = &self.detector {
            let mut raised = crate::alerts::Alert::account_event(
                "VIGIE-SOC-001",
                "Patients re-identified from an alert".into(),
                &a.user,
                &portal,
            );
            raised.severity = crate::alerts::Severity::Medium;
            raised.risk_score = 50;
            raised.distinct_patients = patients.len() as u64;
            detector.alerts().raise(raised);
        }
        let frame = self.frame(req, Some(a), "alert");
        let html = super::render::render(
            "reidentified.html",
            req.lang,
            &frame,
            minijinja::context! { id, patients },
        );
        Reply::html(200, html, false)
    }

    /// `POST /sessions/revoke`: a user's sessions, from the sessions page.
    async fn revoke_from_sessions(&self, req: &Request, a: &Analyst) -> Reply {
        if !may(&a.roles, Action::RevokeSessions) {
            return self.forbidden(req, a, Action::RevokeSessions);
        }
        let user = req.field("user");
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("user", &user)
            .finish();
        if user.is_empty() || req.field("confirm") != "yes" {
            return Reply::see(&format!("/sessions?{q}"));
        }
        match self.gateway.end_user(&user, None, Ending::Revoked).await {
            Ok(n) => {
                tracing::warn!(target: "vigie::audit", event = "sessions_revoked", of_user = %user, count = n, user = %a.user, by = "console");
                Reply::see(&format!("/sessions?{q}&done=revoke&n={n}"))
            }
            Err(_) => self.message(req, Some(a), 503, "not_found_title", "unavailable"),
        }
    }
}
