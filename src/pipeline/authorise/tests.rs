//! Stage 4's decisions without sockets: what a request's facts are, and how a rule, the
//! session's level and the budgets turn into pass, deny, step-up or slow down.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::identity::session::{AuthLevel, ManualClock, SessionRecord};

/// Monday 2026-11-23, 10:00 in Paris.
const NOW: u64 = 1_795_424_400;

/// The shared rules, and a ward's notes that are never written from the gateway, though
/// break-glass may; small export and login budgets.
const MORE: &str = r#"
[[rule]]
name = "night-writes"
path = "/notes/**"
methods = ["POST"]
deny = true
break_glass = true

[budgets.export]
requests = 2
per = "hour"
burst = 2
[budgets.login]
requests = 2
per = "hour"
burst = 2
"#;

fn config() -> Config {
    crate::testing::sample_portal_config(&format!("{}{MORE}", crate::testing::SAMPLE_RULES), "", "")
}

use crate::testing::request;

/// Alice, signed in at `level` (each factor proven `age` seconds ago).
fn alice(level: AuthLevel, age: u64) -> SessionRecord {
    let at = Some(NOW - age);
    let ip = "10.1.2.3".parse().unwrap();
    let s = SessionRecord::new(
        "ehr",
        Some("alice".into()),
        level,
        ip,
        "t".into(),
        vec![],
        NOW,
    );
    SessionRecord {
        groups: vec!["nurses".into()],
        password_at: at,
        second_factor_at: at.filter(|_| level >= AuthLevel::SecondFactor),
        phishing_resistant_at: at.filter(|_| level >= AuthLevel::PhishingResistant),
        ..s
    }
}

fn budgets(c: &Config) -> Budgets {
    Budgets::new(c.budgets.clone(), None, 1, Arc::new(ManualClock::at(NOW)))
}

async fn decide(c: &Config, b: &Budgets, r: &Request, who: &Identity) -> Outcome {
    let portal = Portal::new(c.portals[0].clone());
    let f = facts(&portal, r, r.method.as_str(), who, NOW);
    run(c, b, &portal, &f, who).await
}

#[test]
fn the_facts_are_the_request_s_and_a_signed_in_session_s() {
    let c = config();
    let portal = Portal::new(c.portals[0].clone());
    let r = request("GET", "/?raw=view");
    let mut session = alice(AuthLevel::SecondFactor, 10);
    session.break_glass_until = Some(NOW + 60);
    let who = Identity::Session(Arc::new(session.clone()));
    let f = facts(&portal, &r, "GET", &who, NOW);
    assert_eq!(
        (f.host, f.method, f.path, f.query),
        ("ehr.local", "GET", "/index.php", Some("raw=view")),
        "the path is the front controller's, as the profile says the script reads it"
    );
    assert_eq!(
        (f.user, f.groups, f.now),
        (Some("alice"), &session.groups[..], NOW)
    );
    assert_eq!(f.ip, r.client.ip);
    assert!(f.break_glass);
    // A session the portal has not signed in yet is nobody: no user, no groups, no break-glass.
    session.level = AuthLevel::None;
    let who = Identity::Session(Arc::new(session));
    let f = facts(&portal, &r, "GET", &who, NOW);
    assert_eq!((f.user, f.groups.len(), f.break_glass), (None, 0, false));
}

#[tokio::test]
async fn a_denial_is_liftable_only_by_a_break_glass_rule_and_a_signed_in_user() {
    let c = config();
    let b = budgets(&c);
    let who = Identity::Session(Arc::new(alice(AuthLevel::SecondFactor, 10)));
    let admin = request("GET", "/admin/users");
    assert!(matches!(
        decide(&c, &b, &admin, &who).await,
        Outcome::Deny {
            liftable: false,
            ..
        }
    ));
    let note = request("POST", "/notes/1");
    assert!(matches!(
        decide(&c, &b, &note, &who).await,
        Outcome::Deny { liftable: true, .. }
    ));
    assert!(matches!(
        decide(&c, &b, &note, &Identity::Anonymous).await,
        Outcome::Deny {
            liftable: false,
            ..
        }
    ));
}

#[tokio::test]
async fn a_session_below_the_rule_s_level_or_asked_for_a_proof_steps_up() {
    let c = config();
    let b = budgets(&c);
    let export = request("GET", "/index.php?raw=ajax_export_patients_csv");
    let with = |s: SessionRecord| Identity::Session(Arc::new(s));
    let decided = |o: &Outcome| match o {
        Outcome::Pass(_) => "pass",
        Outcome::StepUp(_) => "step-up",
        Outcome::Deny { .. } => "deny",
        Outcome::Slow { .. } => "slow",
    };
    let app = with(alice(AuthLevel::SecondFactor, 10));
    assert_eq!(decided(&decide(&c, &b, &export, &app).await), "step-up");
    let stale = with(alice(AuthLevel::PhishingResistant, 301));
    assert_eq!(decided(&decide(&c, &b, &export, &stale).await), "step-up");
    let fresh = with(alice(AuthLevel::PhishingResistant, 10));
    assert_eq!(decided(&decide(&c, &b, &export, &fresh).await), "pass");
    // The SOC asked this session for a new proof: even a fresh passkey must prove it again.
    let mut asked = alice(AuthLevel::PhishingResistant, 10);
    asked.proof_at_us = Some((NOW as i64 - 10) * 1_000_000);
    asked.proof_wanted_after_us = Some((NOW as i64 - 5) * 1_000_000);
    assert_eq!(
        decided(&decide(&c, &b, &export, &with(asked)).await),
        "step-up"
    );
}

#[tokio::test]
async fn over_its_budget_a_request_is_slowed_with_a_whole_second_wait() {
    let c = config();
    let b = budgets(&c);
    let who = Identity::Session(Arc::new(alice(AuthLevel::PhishingResistant, 10)));
    let export = request("GET", "/index.php?raw=ajax_export_patients_csv");
    for _ in 0..2 {
        assert!(matches!(
            decide(&c, &b, &export, &who).await,
            Outcome::Pass(_)
        ));
    }
    match decide(&c, &b, &export, &who).await {
        Outcome::Slow {
            decision,
            retry_after,
        } => {
            assert_eq!(decision.budget, "export");
            // Two an hour: the next one in half an hour, rounded up to whole seconds.
            assert!((1790..=1800).contains(&retry_after), "{retry_after}");
        }
        other => panic!("not slowed: {other:?}"),
    }
}

#[tokio::test]
async fn logins_over_budget_are_refused_closing_the_connection_per_source_and_per_name() {
    let c = config();
    let b = budgets(&c);
    let ip: IpAddr = "10.9.9.9".parse().unwrap();
    for _ in 0..2 {
        assert_eq!(login_allowed(&b, Some(ip), None).await, Ok(()));
    }
    let refused = login_allowed(&b, Some(ip), Some("bob")).await.unwrap_err();
    assert_eq!((refused.status, refused.reason), (429, Reason::LoginBudget));
    assert!(refused.close, "the login's body may be unread");
    assert!(matches!(refused.offer, super::super::refusal::Offer::RetryAfter(s) if s > 1000));
    // Per name: bob from other addresses, without the source's budget (a body's login).
    for _ in 0..2 {
        assert_eq!(login_allowed(&b, None, Some("bob")).await, Ok(()));
    }
    assert_eq!(
        login_allowed(&b, None, Some("bob"))
            .await
            .unwrap_err()
            .reason,
        Reason::LoginBudget
    );
    assert_eq!(login_allowed(&b, None, Some("carol")).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_shared_budget_store_a_login_fails_closed() {
    let c = config();
    let redis = crate::testing::RedisServer::start();
    let locked = Arc::new(crate::identity::locks::LockedUsers::default());
    let store = redis.store(locked);
    let b = Budgets::new(
        c.budgets.clone(),
        Some(store),
        2,
        Arc::new(ManualClock::at(NOW)),
    );
    let ip: IpAddr = "10.9.9.9".parse().unwrap();
    assert_eq!(login_allowed(&b, Some(ip), Some("bob")).await, Ok(()));
    drop(redis);
    let refused = login_allowed(&b, Some(ip), Some("bob")).await.unwrap_err();
    assert_eq!(
        (refused.status, refused.reason, refused.close),
        (503, Reason::BudgetStoreUnavailable, true)
    );
}
