//! What `/readyz` answers, decided from facts gathered elsewhere (pure, so each case is
//! tested without sockets).
//!
//! Ready means: the listeners are bound by this process, the configuration is loaded, the
//! stores answer or are within their documented degraded mode, and the process is not
//! draining. Portals are reported but never make a gateway unready: they are shared by every
//! replica, so all would drop out together and nobody could even see the portal's error page.

use serde_json::{json, Map, Value};

/// What the admin listener found, at one moment.
pub struct Facts {
    /// Listener addresses not bound by this process (`None`: `/proc` unreadable, unknown).
    pub unbound: Option<Vec<String>>,
    pub draining: bool,
    /// Portal name -> whether it accepted a TCP connection.
    pub portals: Vec<(String, bool)>,
    /// Budgets enforced per replica: Redis did not answer lately (a degraded mode).
    pub budgets_per_replica: bool,
    /// The shared state (replicas only): whether sessions are served, and its state.
    pub shared_state: Option<(bool, String)>,
    /// The last loss re-established: (unix seconds, reason).
    pub shared_state_lost: Option<(u64, String)>,
    /// When the configuration was last reloaded (unix seconds), if it was.
    pub reloaded_at: Option<i64>,
}

/// The status code and the body.
pub fn judge(f: &Facts) -> (u16, Value) {
    let mut body = Map::new();
    let mut not_ready: Vec<&str> = Vec::new();
    let mut degraded: Vec<&str> = Vec::new();
    let listeners = match &f.unbound {
        Some(u) if !u.is_empty() => {
            not_ready.push("listeners");
            json!({ "state": "unbound", "addresses": u })
        }
        Some(_) => json!("bound"),
        None => json!("unknown"),
    };
    body.insert("listeners".into(), listeners);
    body.insert(
        "config".into(),
        match f.reloaded_at {
            Some(at) => json!({ "state": "loaded", "reloaded_at": at }),
            None => json!("loaded"),
        },
    );
    if f.draining {
        not_ready.push("draining");
    }
    let portals: Map<String, Value> = f
        .portals
        .iter()
        .map(|(n, up)| (n.clone(), json!(if *up { "up" } else { "down" })))
        .collect();
    if f.portals.iter().any(|(_, up)| !up) {
        degraded.push("portals");
    }
    body.insert("portals".into(), Value::Object(portals));
    if f.budgets_per_replica {
        degraded.push("redis");
    }
    body.insert(
        "budgets".into(),
        json!(if f.budgets_per_replica {
            "per_replica"
        } else {
            "shared"
        }),
    );
    if let Some((ok, state)) = &f.shared_state {
        if !ok {
            not_ready.push("shared_state");
        } else if state != "trusted" {
            degraded.push("shared_state");
        }
        body.insert("shared_state".into(), json!(state));
    }
    if let Some((at, why)) = &f.shared_state_lost {
        body.insert(
            "shared_state_lost".into(),
            json!({ "at": at, "reason": why }),
        );
    }
    let (code, status) = match (not_ready.is_empty(), degraded.is_empty()) {
        (false, _) if f.draining => (503, "draining"),
        (false, _) => (503, "not_ready"),
        (true, false) => (200, "degraded"),
        (true, true) => (200, "ready"),
    };
    body.insert("status".into(), json!(status));
    if !not_ready.is_empty() {
        body.insert("not_ready".into(), json!(not_ready));
    }
    if !degraded.is_empty() {
        body.insert("degraded".into(), json!(degraded));
    }
    (code, Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Facts {
        Facts {
            unbound: Some(vec![]),
            draining: false,
            portals: vec![("ehr".into(), true)],
            budgets_per_replica: false,
            shared_state: Some((true, "trusted".into())),
            shared_state_lost: None,
            reloaded_at: None,
        }
    }

    #[test]
    fn all_well_is_ready() {
        let (code, body) = judge(&healthy());
        assert_eq!((code, body["status"].as_str()), (200, Some("ready")));
        assert_eq!(body["listeners"], "bound");
    }

    #[test]
    fn a_portal_down_is_said_but_keeps_the_gateway_in_rotation() {
        let f = Facts {
            portals: vec![("ehr".into(), false)],
            ..healthy()
        };
        let (code, body) = judge(&f);
        assert_eq!(code, 200);
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["portals"]["ehr"], "down");
    }

    #[test]
    fn an_unbound_listener_distrusted_state_or_draining_is_not_ready() {
        let unbound = Facts {
            unbound: Some(vec!["127.0.0.1:8080".into()]),
            ..healthy()
        };
        let (code, body) = judge(&unbound);
        assert_eq!((code, body["status"].as_str()), (503, Some("not_ready")));
        assert_eq!(body["listeners"]["addresses"][0], "127.0.0.1:8080");
        let distrusted = Facts {
            shared_state: Some((false, "older snapshot".into())),
            ..healthy()
        };
        assert_eq!(judge(&distrusted).0, 503);
        let draining = Facts {
            draining: true,
            ..healthy()
        };
        let (code, body) = judge(&draining);
        assert_eq!((code, body["status"].as_str()), (503, Some("draining")));
    }

    #[test]
    fn redis_away_is_the_documented_degraded_mode_and_says_so() {
        let f = Facts {
            budgets_per_replica: true,
            shared_state: Some((true, "rechecking".into())),
            ..healthy()
        };
        let (code, body) = judge(&f);
        assert_eq!(code, 200);
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["degraded"], json!(["redis", "shared_state"]));
    }
}
