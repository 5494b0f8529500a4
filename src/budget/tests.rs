use super::*;
use crate::identity::session::ManualClock;
use std::time::Duration;

fn config() -> BudgetConfig {
    let mut classes = std::collections::HashMap::new();
    let l = |requests, secs, burst| Limit {
        requests,
        period: Duration::from_secs(secs),
        burst,
    };
    classes.insert("view".to_string(), l(60, 60, 10));
    classes.insert("export".to_string(), l(5, 3600, 2));
    BudgetConfig {
        classes,
        source: l(1000, 60, 500),
        login: l(5, 60, 3),
    }
}

#[tokio::test]
async fn exact_allowance_then_refusal_with_the_wait() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let b = Budgets::new(config(), None, 1, clock.clone());
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    for _ in 0..2 {
        assert_eq!(
            b.request(Some("alice"), "export", 1.0, ip).await,
            Verdict::Allow
        );
    }
    // 5 per hour: the third export waits 12 minutes.
    assert_eq!(
        b.request(Some("alice"), "export", 1.0, ip).await,
        Verdict::Deny {
            retry_after_us: 720_000_000
        }
    );
    assert_eq!(
        b.request(Some("bob"), "export", 1.0, ip).await,
        Verdict::Allow,
        "per identity"
    );
    assert_eq!(
        b.request(Some("alice"), "view", 1.0, ip).await,
        Verdict::Allow,
        "per class"
    );
    clock.advance(Duration::from_secs(720));
    assert_eq!(
        b.request(Some("alice"), "export", 1.0, ip).await,
        Verdict::Allow
    );
    // A privileged pack at a quarter: one export (burst 2 x 0.25 rounds to 1).
    assert_eq!(
        b.request(Some("root"), "export", 0.25, ip).await,
        Verdict::Allow
    );
    assert!(matches!(
        b.request(Some("root"), "export", 0.25, ip).await,
        Verdict::Deny { .. }
    ));
}

#[test]
fn ipv6_sources_count_by_64() {
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(source_of(a), source_of(b));
    assert_ne!(source_of(a), source_of(c));
    assert_eq!(source_of("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
}

#[tokio::test]
async fn logins_are_limited_per_name_and_per_source() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let b = Budgets::new(config(), None, 1, clock.clone());
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    for i in 0..3 {
        // Spread across sources, one name: the name's budget bites.
        let ip: IpAddr = format!("10.0.1.{i}").parse().unwrap();
        assert_eq!(b.login_source(ip).await.unwrap(), Verdict::Allow);
        assert_eq!(b.login_user("alice").await.unwrap(), Verdict::Allow);
    }
    assert!(matches!(
        b.login_user("alice").await.unwrap(),
        Verdict::Deny { .. }
    ));
    // Many names from one source: the source's budget bites.
    for _ in 0..3 {
        assert_eq!(b.login_source(a).await.unwrap(), Verdict::Allow);
    }
    assert!(matches!(
        b.login_source(a).await.unwrap(),
        Verdict::Deny { .. }
    ));
    // Time restores them.
    clock.advance(Duration::from_secs(60));
    assert_eq!(b.login_user("alice").await.unwrap(), Verdict::Allow);
}
