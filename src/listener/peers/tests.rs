use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_peer_gets_its_cap_and_its_place_back_as_connections_close() {
    let peers = Arc::new(Peers::new(3, 1000, vec![]));
    let a = ip("192.0.2.1");
    let mut held: Vec<Permit> = (0..3).map(|_| peers.admit(a).unwrap()).collect();
    assert_eq!(peers.admit(a).unwrap_err(), Refusal::PeerCap);
    // Another address is not affected.
    let other = peers.admit(ip("192.0.2.2")).unwrap();
    held.pop();
    let again = peers.admit(a).unwrap();
    assert_eq!(peers.held(a), 3);
    drop(held);
    drop(again);
    drop(other);
    assert!(peers.open().is_empty(), "closed peers leave the map");
}

#[test]
fn trusted_proxies_skip_the_cap_but_not_the_descriptor_reserve() {
    let peers = Arc::new(Peers::new(2, 5, vec!["10.0.0.0/8".parse().unwrap()]));
    let proxy = ip("10.1.2.3");
    let held: Vec<Permit> = (0..5).map(|_| peers.admit(proxy).unwrap()).collect();
    assert_eq!(peers.admit(proxy).unwrap_err(), Refusal::FdReserve);
    assert_eq!(held.len(), 5);
    // Below the cap, the reserve binds an untrusted peer too.
    let peers = Arc::new(Peers::new(100, 2, vec![]));
    let a = ip("2001:db8::1");
    let _held: Vec<Permit> = (0..2).map(|_| peers.admit(a).unwrap()).collect();
    assert_eq!(peers.admit(a).unwrap_err(), Refusal::FdReserve);
}
