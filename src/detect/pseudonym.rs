//! Patient identifiers never leave as they are: alerts, logs and shared state carry a keyed
//! hash (HMAC-SHA-256, truncated to 64 bits), stable for one key so an analyst can follow one
//! pseudonym across alerts, and useless without the key to find the patient.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub struct Pseudonyms {
    mac: Hmac<Sha256>,
}

impl Pseudonyms {
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: Hmac::new_from_slice(key).expect("HMAC takes any key length"),
        }
    }

    /// The pseudonym of a patient identifier. Not scoped by portal: the same record read
    /// through two routes of one portal is one patient. Zero means "none" in the detector.
    pub fn of(&self, id: &str) -> u64 {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("8 bytes")).max(1)
    }
}

/// How a pseudonym is shown: `p-` and 12 hex digits.
pub fn label(h: u64) -> String {
    format!("p-{:012x}", h >> 16)
}
