use super::*;

#[test]
fn generation_is_deterministic() {
    let a = generate(50, 7);
    let b = generate(50, 7);
    assert_eq!(a.len(), 50);
    assert_eq!(a[49].id, 50);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_ne!(
        serde_json::to_string(&generate(50, 8)).unwrap(),
        serde_json::to_string(&a).unwrap()
    );
}
