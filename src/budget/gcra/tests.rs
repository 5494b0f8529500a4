use super::*;
use std::time::Duration;

fn limit(requests: u32, secs: u64, burst: u32) -> Limit {
    Limit {
        requests,
        period: Duration::from_secs(secs),
        burst,
    }
}

/// Run `n` requests at `now`, return how many pass.
fn burst(tat: &mut Option<u64>, now: u64, n: usize, rate: Rate) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let (v, next) = check(*tat, now, rate);
        *tat = Some(next);
        ok += usize::from(v == Verdict::Allow);
    }
    ok
}

#[test]
fn exact_burst_then_the_sustained_rate() {
    // 60 per minute, bursts of 10.
    let rate = Rate::new(&limit(60, 60, 10), 1.0, 1);
    assert_eq!(
        rate,
        Rate {
            interval: 1_000_000,
            tolerance: 9_000_000
        }
    );
    let mut tat = None;
    assert_eq!(
        burst(&mut tat, 1_000_000_000, 15, rate),
        10,
        "exactly the burst"
    );
    let (v, _) = check(tat, 1_000_000_000, rate);
    assert_eq!(
        v,
        Verdict::Deny {
            retry_after_us: 1_000_000
        },
        "one interval to wait"
    );
    assert_eq!(
        burst(&mut tat, 1_000_999_999, 1, rate),
        0,
        "not a millisecond early"
    );
    assert_eq!(burst(&mut tat, 1_001_000_000, 1, rate), 1, "on time");
    // An hour later: a full burst again, no more.
    assert_eq!(burst(&mut tat, 4_600_000_000, 20, rate), 10);
}

#[test]
fn over_a_long_run_the_rate_holds() {
    let rate = Rate::new(&limit(5, 3600, 2), 1.0, 1);
    let mut tat = None;
    let mut passed = 0;
    // One try per second for ten hours.
    for s in 0..36_000u64 {
        passed += burst(&mut tat, s * 1_000_000, 1, rate);
    }
    assert!(
        (50..=52).contains(&passed),
        "{passed} in 10 h at 5/h with burst 2"
    );
}

#[test]
fn scaling_and_replica_shares() {
    let l = limit(100, 60, 20);
    let quarter = Rate::new(&l, 0.25, 1);
    assert_eq!(quarter.interval, 2_400_000);
    assert_eq!(quarter.tolerance, 2_400_000 * 4, "burst 5");
    let half_each = Rate::new(&l, 1.0, 2);
    assert_eq!(half_each.interval, 1_200_000);
    assert_eq!(half_each.tolerance, 1_200_000 * 9, "burst 10");
    // A tiny budget never becomes zero: one request is always possible eventually.
    let tiny = Rate::new(&limit(1, 86_400, 1), 0.25, 4);
    assert_eq!(tiny.tolerance, 0);
    assert!(tiny.interval >= 86_400_000_000);
    // A high limit keeps its rate: a million a second is one request per microsecond.
    let fast = Rate::new(&limit(1_000_000, 1, 1_000_000), 1.0, 1);
    assert_eq!(fast.interval, 1);
}
