use super::*;
use crate::identity::session::{record, AuthLevel};

#[test]
fn only_a_proof_of_a_factor_meets_a_detector_step_up_to_the_microsecond() {
    let ip = IpAddr::from([127, 0, 0, 1]);
    let mut r = record(Some("n.q"), AuthLevel::SecondFactor, 1_000);
    // Enrolled (or restored from before `proof_at_us`): the level, but no proof.
    r.second_factor_at = Some(1_000);
    let who = Who::new(&r, "Firefox", false);
    assert_eq!(who.subject("ehr", &r, ip, 1_000).factor_at_us, 0);
    r.proof_at_us = Some(1_000_400_123);
    assert_eq!(
        who.subject("ehr", &r, ip, 1_000).factor_at_us,
        1_000_400_123
    );
}
