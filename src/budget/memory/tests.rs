use super::*;
use crate::config::Limit;
use std::time::Duration;

/// One request a second, no burst: a key checked at `t` is spent until `t` + 1 s.
fn one_a_second() -> Rate {
    let limit = Limit {
        requests: 1,
        period: Duration::from_secs(1),
        burst: 1,
    };
    Rate::new(&limit, 1.0, 1)
}

/// `n` keys that share one shard.
fn neighbours(n: usize) -> Vec<String> {
    let keys = (0..).map(|i| format!("c:view:user{i}"));
    keys.filter(|k| shard_of(k) == shard_of("c:view:user0"))
        .take(n)
        .collect()
}

fn held(m: &MemoryBudgets, key: &str) -> usize {
    m.shard(key).lock().unwrap().len()
}

#[test]
fn keys_spread_over_every_shard() {
    let mut per_shard = [0usize; SHARDS];
    for i in 0..16_000 {
        per_shard[shard_of(&format!("c:view:user{i}"))] += 1;
    }
    // 1,000 each if even: no shard gets less than half or more than twice that.
    assert!(
        per_shard.iter().all(|&n| (500..=2000).contains(&n)),
        "{per_shard:?}"
    );
}

#[test]
fn a_full_shard_forgets_what_has_expired_and_only_that() {
    let m = MemoryBudgets::with_cap(4);
    let rate = one_a_second();
    let k = neighbours(6);
    let t = 1_000_000_000;
    for key in &k[..3] {
        assert_eq!(m.check(key, rate, t), Verdict::Allow);
    }
    assert_eq!(m.check(&k[3], rate, t + 500_000), Verdict::Allow);
    assert_eq!(held(&m, &k[0]), 4);
    // At the cap, a key already held is checked without forgetting anything.
    assert!(matches!(
        m.check(&k[3], rate, t + 1_000_000),
        Verdict::Deny { .. }
    ));
    assert_eq!(held(&m, &k[0]), 4);
    // A new key at the cap: the three spent until exactly now are forgotten (a forgotten key
    // and an expired one decide the same), the one still spent is kept.
    assert_eq!(m.check(&k[4], rate, t + 1_000_000), Verdict::Allow);
    assert_eq!(held(&m, &k[0]), 2);
    assert!(matches!(
        m.check(&k[3], rate, t + 1_000_000),
        Verdict::Deny { .. }
    ));
    // Under the cap nothing is forgotten.
    assert_eq!(m.check(&k[5], rate, t + 9_000_000), Verdict::Allow);
    assert_eq!(held(&m, &k[0]), 3);
}
