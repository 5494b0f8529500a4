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

#[tokio::test]
async fn a_refusal_is_counted_under_the_budget_that_refused() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let mut c = config();
    c.source.burst = 3;
    let b = Budgets::new(c, None, 1, clock.clone());
    // Counters are process-wide and only grow: other tests can add to them, never take away.
    let count = |label| METRICS.budget_rejections.with_label_values(&[label]).get();
    let (exports, sources) = (count("export"), count("source"));
    let ip: IpAddr = "10.0.0.7".parse().unwrap();
    for _ in 0..2 {
        let _ = b.request(Some("alice"), "export", 1.0, ip).await;
    }
    assert!(matches!(
        b.request(Some("alice"), "export", 1.0, ip).await,
        Verdict::Deny { .. }
    ));
    assert!(
        count("export") > exports,
        "the identity's export budget refused"
    );
    // The three exports spent the source's burst of 3: the address's own budget refuses now.
    assert!(matches!(
        b.request(Some("bob"), "view", 1.0, ip).await,
        Verdict::Deny { .. }
    ));
    assert!(count("source") > sources, "the address's budget refused");
    let logins = count("login");
    for _ in 0..3 {
        assert_eq!(b.login_user("alice").await.unwrap(), Verdict::Allow);
    }
    assert!(count("login") == logins, "an allowed login is no refusal");
    assert!(matches!(
        b.login_user("alice").await.unwrap(),
        Verdict::Deny { .. }
    ));
    assert!(count("login") > logins, "the login budget refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_lifting_a_throttle_gives_the_full_login_budget_back_in_memory_and_in_redis() {
    let redis = crate::testing::RedisServer::start();
    let locked = Arc::new(crate::identity::locks::LockedUsers::default());
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let shared = Budgets::new(config(), Some(redis.store(locked)), 2, clock.clone());
    let embedded = Budgets::new(config(), None, 1, clock);
    for b in [&embedded, &shared] {
        assert!(
            !b.forget_login_user("alice").await.unwrap(),
            "nothing spent yet"
        );
        for _ in 0..3 {
            assert_eq!(b.login_user("alice").await.unwrap(), Verdict::Allow);
        }
        assert!(matches!(
            b.login_user("alice").await.unwrap(),
            Verdict::Deny { .. }
        ));
        assert!(
            b.forget_login_user("alice").await.unwrap(),
            "she had spent some"
        );
        for _ in 0..3 {
            assert_eq!(b.login_user("alice").await.unwrap(), Verdict::Allow);
        }
    }
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

mod leases {
    use super::super::lease::{cap, Leases, Plan, LIFE};
    use super::*;

    fn rate(requests: u32, burst: u32) -> Rate {
        Rate::new(
            &Limit {
                requests,
                period: Duration::from_secs(60),
                burst,
            },
            1.0,
            1,
        )
    }

    #[test]
    fn a_lease_is_at_most_a_tenth_of_the_burst_and_none_under_twenty() {
        assert_eq!(cap(rate(300, 100)), 10);
        assert_eq!(cap(rate(1200, 300)), 30);
        assert_eq!(cap(rate(10, 19)), 1);
        assert_eq!(cap(rate(100_000, 100_000)), 64);
    }

    #[test]
    fn an_ordinary_pace_never_leases_and_a_hot_key_grows_then_shrinks() {
        let l = Leases::default();
        let r = rate(300, 100);
        let key = [("c:view:dr.martin", r)];
        // A clinician: a request every two seconds asks for one token each time.
        for i in 0..5 {
            let now = i * 2 * LIFE;
            assert_eq!(l.plan(&key, now), Plan::Ask(vec![Some(1)]));
            l.granted("c:view:dr.martin", r, 1, now);
        }
        // A crawler: every lease spent within its life, so the next one doubles, up to the cap.
        let mut now = 100 * LIFE;
        let mut asked = Vec::new();
        for _ in 0..60 {
            match l.plan(&key, now) {
                Plan::Ask(p) if p[0].is_none() => {}
                Plan::Ask(p) => {
                    let n = p[0].unwrap();
                    asked.push(n);
                    l.granted("c:view:dr.martin", r, n, now);
                }
                refused => panic!("{refused:?}"),
            }
            now += 1_000;
        }
        assert_eq!(asked, vec![1, 2, 4, 8, 10, 10, 10, 10, 10]);
        // A lease that expires unspent: the next is half.
        l.granted("c:view:dr.martin", r, 10, now);
        assert_eq!(l.plan(&key, now + 2 * LIFE), Plan::Ask(vec![Some(5)]));
        // Another rate (break-glass scales it): the lease is not used for it.
        l.granted("c:view:dr.martin", r, 10, now);
        let other = [("c:view:dr.martin", rate(3000, 1000))];
        assert_eq!(l.plan(&other, now), Plan::Ask(vec![Some(1)]));
        // A refusal is kept until its wait is over, and spends nothing meanwhile.
        let src = ("src:10.0.0.1", rate(1200, 300));
        l.granted(src.0, src.1, 1, now);
        l.refused("c:view:dr.martin", r, 5_000_000, now);
        let both = [src, key[0]];
        let refused = Plan::Refused {
            index: 1,
            retry_after_us: 4_000_000,
        };
        assert_eq!(l.plan(&both, now + 1_000_000), refused);
        // Then: the address's lease, spent but slowly, keeps its size; the unspent one halves.
        assert_eq!(
            l.plan(&both, now + 5_000_000),
            Plan::Ask(vec![Some(1), Some(2)])
        );
    }

    #[test]
    fn a_lease_ends_exactly_at_its_life_and_a_spent_one_keeps_its_size() {
        let l = Leases::default();
        let r = rate(300, 100);
        let t = 1_000 * LIFE;
        // Four tokens, one spent now: three left until exactly t + LIFE.
        l.granted("a", r, 4, t);
        assert_eq!(l.plan(&[("a", r)], t + LIFE - 1), Plan::Ask(vec![None]));
        assert_eq!(l.plan(&[("a", r)], t + LIFE), Plan::Ask(vec![Some(1)]));
        // A lease of four spent within its life, then left to expire: its size is kept.
        let key = [("b", r)];
        l.granted("b", r, 1, t);
        assert_eq!(l.plan(&key, t + 1), Plan::Ask(vec![Some(2)]));
        l.granted("b", r, 2, t + 1);
        assert_eq!(l.plan(&key, t + 2), Plan::Ask(vec![None]));
        assert_eq!(l.plan(&key, t + 3), Plan::Ask(vec![Some(4)]));
        l.granted("b", r, 4, t + 3);
        for i in 4..7 {
            assert_eq!(l.plan(&key, t + i), Plan::Ask(vec![None]));
        }
        assert_eq!(l.plan(&key, t + 3 + LIFE), Plan::Ask(vec![Some(4)]));
        // A refusal ends exactly at its wait.
        l.refused("c", r, 5_000, t);
        assert!(matches!(
            l.plan(&[("c", r)], t + 4_999),
            Plan::Refused { .. }
        ));
        assert_eq!(l.plan(&[("c", r)], t + 5_000), Plan::Ask(vec![Some(1)]));
    }

    #[test]
    fn past_the_soft_cap_keys_unused_for_a_minute_are_forgotten() {
        use super::super::lease::SOFT_CAP;
        let l = Leases::default();
        let r = rate(300, 100);
        for i in 0..SOFT_CAP - 1 {
            l.granted(&format!("k{i}"), r, 1, 0);
        }
        l.granted("recent", r, 1, 30_000_000);
        assert_eq!(l.len(), SOFT_CAP, "nothing forgotten under the cap");
        // A minute after their lease ended (exactly), the old keys go; the recent one stays.
        l.granted("new", r, 1, LIFE + 60_000_000);
        assert_eq!(l.len(), 2);
    }
}

/// Two replicas sharing a real Redis hammer one hot identity: together they get exactly the
/// budget (a lease spends its tokens in Redis when it is taken), and ask Redis far less often
/// than once a request; a small budget is still asked one request at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_leasing_a_hot_key_get_the_budget_exactly_with_fewer_round_trips() {
    let redis = crate::testing::RedisServer::start();
    let mut cfg = config();
    let hour = |requests, burst| Limit {
        requests,
        period: Duration::from_secs(3600),
        burst,
    };
    cfg.classes.insert("view".into(), hour(200, 200));
    cfg.classes.insert("export".into(), hour(2, 19));
    cfg.source = hour(1_000_000, 1_000_000);
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let locked = Arc::new(crate::identity::locks::LockedUsers::default());
    let replica = || {
        Arc::new(Budgets::new(
            cfg.clone(),
            Some(redis.store(locked.clone())),
            2,
            clock.clone(),
        ))
    };
    let (a, b) = (replica(), replica());
    let calls = || -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut redis.conn())
            .unwrap();
        info.lines()
            .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let before = calls();
    let run = |b: Arc<Budgets>, class: &'static str| {
        tokio::spawn(async move {
            let mut allowed = 0;
            for _ in 0..300 {
                if b.request(Some("crawler"), class, 1.0, ip).await == Verdict::Allow {
                    allowed += 1;
                }
            }
            allowed
        })
    };
    let (x, y) = (run(a.clone(), "view"), run(b.clone(), "view"));
    let allowed = x.await.unwrap() + y.await.unwrap();
    let used = calls() - before;
    assert_eq!(allowed, 200, "the budget, exactly, across both replicas");
    assert!(used <= 40, "{used} round trips for 600 requests");
    let before = calls();
    let (x, y) = (run(a, "export"), run(b, "export"));
    let allowed = x.await.unwrap() + y.await.unwrap();
    assert_eq!(allowed, 19, "the export burst, exactly");
    assert_eq!(
        calls() - before,
        21,
        "a small budget: once a request it allows, and once a replica for the refusal"
    );
}

#[tokio::test]
async fn a_reload_applies_new_limits_and_keeps_what_was_spent() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let b = Budgets::new(config(), None, 1, clock.clone());
    assert!(!b.degraded(), "no shared store to lose: never degraded");
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(
        b.request(Some("alice"), "export", 1.0, ip).await,
        Verdict::Allow
    );
    // The burst drops from 2 to 1: the export already made uses it up.
    let mut tighter = config();
    tighter.classes.get_mut("export").unwrap().burst = 1;
    b.retune(tighter);
    assert!(matches!(
        b.request(Some("alice"), "export", 1.0, ip).await,
        Verdict::Deny { .. }
    ));
    assert_eq!(
        b.request(Some("bob"), "export", 1.0, ip).await,
        Verdict::Allow,
        "a newcomer gets the new burst"
    );
    assert!(matches!(
        b.request(Some("bob"), "export", 1.0, ip).await,
        Verdict::Deny { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_is_reported_and_its_return_too() {
    let mut redis = crate::testing::RedisServer::start();
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let locked = Arc::new(crate::identity::locks::LockedUsers::default());
    let b = Budgets::new(config(), Some(redis.store(locked)), 2, clock.clone());
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    // The alerts the SOC gets: one when Redis goes, one when it is back, none in between.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let _guard = {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_default(
            tracing_subscriber::registry().with(crate::testing::Capture(seen.clone())),
        )
    };
    let alerts = || {
        let seen = seen.lock().unwrap();
        let alert = |e: &&crate::audit::Entry| e.event.starts_with("budget_store");
        seen.iter()
            .filter(alert)
            .map(|e| e.event.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        b.request(Some("alice"), "view", 1.0, ip).await,
        Verdict::Allow
    );
    assert!(!b.degraded());
    redis.stop();
    // Views go on at this replica's share; readiness and the admin API say budgets are local.
    assert_eq!(
        b.request(Some("alice"), "view", 1.0, ip).await,
        Verdict::Allow
    );
    assert!(b.degraded(), "Redis is gone");
    assert_eq!(alerts(), ["budget_store_down"]);
    redis.restart();
    // Within the retry delay Redis is not asked again, so an outage costs one timeout a second.
    clock.advance(Duration::from_micros(RETRY_REDIS_US / 2));
    let _ = b.request(Some("bob"), "view", 1.0, ip).await;
    assert!(b.degraded(), "Redis was asked again before the retry delay");
    clock.advance(Duration::from_micros(RETRY_REDIS_US / 2 + 1));
    let mut back = false;
    for _ in 0..50 {
        let _ = b.request(Some("bob"), "view", 1.0, ip).await;
        if !b.degraded() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        clock.advance(Duration::from_micros(RETRY_REDIS_US + 1));
    }
    assert!(back, "Redis answered again: shared budgets restored");
    assert_eq!(alerts(), ["budget_store_down", "budget_store_back"]);
}
