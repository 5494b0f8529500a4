use super::*;

fn hash(i: u64) -> u64 {
    // SplitMix64: uniform 64-bit values, as pseudonyms are.
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn small_sets_are_exact_and_repeats_do_not_count() {
    let mut d = Distinct::default();
    for i in 0..20 {
        assert!(d.insert(hash(i)));
        assert!(!d.insert(hash(i)));
    }
    assert_eq!(union_count([&d]), 20);
    assert!(d.contains_exactly(hash(3)));
}

#[test]
fn large_sets_stay_within_the_sketch_error() {
    for n in [100u64, 1_000, 10_000, 100_000] {
        let mut d = Distinct::default();
        for i in 0..n {
            d.insert(hash(i));
        }
        let est = union_count([&d]) as f64;
        let err = (est - n as f64).abs() / n as f64;
        assert!(err < 0.2, "n={n} est={est} err={err}");
        assert_eq!(d.heap_bytes(), 256);
    }
}

#[test]
fn unions_count_overlaps_once() {
    let (mut a, mut b) = (Distinct::default(), Distinct::default());
    for i in 0..30 {
        a.insert(hash(i));
    }
    for i in 20..50 {
        b.insert(hash(i));
    }
    assert_eq!(union_count([&a, &b]), 50, "both exact: exact union");
    for i in 50..500 {
        b.insert(hash(i));
    }
    let est = union_count([&a, &b]) as f64;
    assert!((est - 500.0).abs() / 500.0 < 0.2, "{est}");
}
