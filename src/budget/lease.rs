//! Leases: a replica takes several of a hot key's tokens from Redis in one call and spends
//! them locally, so a busy identity (or a hospital's one NAT address) does not cost a round
//! trip per request. Taken tokens are spent in Redis at once: replicas together never get more
//! than the budget gives, only earlier; a lease lives [`LIFE`] and what is left then is lost
//! (on the strict side), so a budget holds over any window to within one second of its rate.
//!
//! A refusal is kept too, until the wait Redis gave: tokens only come back with time, so no
//! replica can make one come sooner, and a client hammering past its budget costs no round
//! trip either. A request refused so spends nothing.
//!
//! A lease grows only for a key this replica spends fast: it starts at one token (exactly
//! today's one call per request), doubles each time a lease is used up within its life, halves
//! when one expires unspent, and never exceeds a tenth of the burst ([`cap`]). A clinician's
//! ordinary pace never leases, so never loses a token; a small budget (exports, burst under
//! 20) is always checked one request at a time.

use std::collections::HashMap;
use std::sync::Mutex;

use super::gcra::Rate;

/// How long leased tokens may be spent (µs).
pub const LIFE: u64 = 1_000_000;
/// The most tokens one lease carries.
const MAX: u32 = 64;
/// Past this many keys, those unused for a minute are forgotten.
pub(super) const SOFT_CAP: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Lease {
    rate: Rate,
    left: u32,
    until_us: u64,
    /// The size the next lease asks for.
    size: u32,
    /// Redis refused this key until then (µs).
    denied_until: u64,
}

impl Lease {
    /// No token, no refusal: what a key this replica has not leased starts from.
    fn new(rate: Rate) -> Self {
        Lease {
            rate,
            left: 0,
            until_us: 0,
            size: 1,
            denied_until: 0,
        }
    }
}

/// What a request needs, by [`Leases::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Key `index` was refused and has no token before the wait is over.
    Refused { index: usize, retry_after_us: u64 },
    /// For each key, in order: `None` when a token was spent from this replica's lease, else
    /// how many tokens to ask Redis for.
    Ask(Vec<Option<u32>>),
}

#[derive(Default)]
pub struct Leases {
    map: Mutex<HashMap<String, Lease>>,
}

/// The largest lease a rate allows: a tenth of its burst, at least one.
pub fn cap(rate: Rate) -> u32 {
    let burst = rate.tolerance / rate.interval.max(1) + 1;
    (burst / 10).clamp(1, u64::from(MAX)) as u32
}

impl Leases {
    pub fn plan(&self, keys: &[(&str, Rate)], now: u64) -> Plan {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for (index, (key, rate)) in keys.iter().enumerate() {
            if let Some(l) = map
                .get(*key)
                .filter(|l| l.rate == *rate && now < l.denied_until)
            {
                let retry_after_us = l.denied_until - now;
                return Plan::Refused {
                    index,
                    retry_after_us,
                };
            }
        }
        let ask = keys
            .iter()
            .map(|(key, rate)| match map.get_mut(*key) {
                Some(l) if l.rate == *rate && l.left > 0 && now < l.until_us => {
                    l.left -= 1;
                    None
                }
                Some(l) if l.rate == *rate => {
                    if now < l.until_us {
                        // Used up within its life: this key is hot here.
                        l.size = (l.size.saturating_mul(2)).min(cap(*rate));
                    } else if l.left > 0 {
                        l.size = (l.size / 2).max(1);
                    }
                    Some(l.size.min(cap(*rate)))
                }
                _ => Some(1),
            })
            .collect();
        Plan::Ask(ask)
    }

    /// Redis refused `key`: it has no token for `wait_us`.
    pub fn refused(&self, key: &str, rate: Rate, wait_us: u64, now: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let l = map
            .entry(key.to_string())
            .or_insert_with(|| Lease::new(rate));
        if l.rate != rate {
            *l = Lease::new(rate);
        }
        l.denied_until = now + wait_us;
    }

    /// How many keys are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    /// Redis granted `granted` tokens of `key` (one of them spent by this request now).
    pub fn granted(&self, key: &str, rate: Rate, granted: u32, now: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SOFT_CAP {
            map.retain(|_, l| l.until_us.max(l.denied_until) + 60_000_000 > now);
        }
        let size = map
            .get(key)
            .filter(|l| l.rate == rate)
            .map_or(1, |l| l.size);
        map.insert(
            key.to_string(),
            Lease {
                rate,
                left: granted.saturating_sub(1),
                until_us: now + LIFE,
                size,
                denied_until: 0,
            },
        );
    }
}
