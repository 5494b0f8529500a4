//! In-process budget state: the embedded backend, and each replica's fallback when Redis is
//! gone. Sharded so concurrent requests rarely wait on one lock; bounded by forgetting keys
//! whose state has expired (an expired key and a missing one decide the same).

use std::collections::HashMap;
use std::sync::Mutex;

use super::gcra::{self, Rate, Verdict};

const SHARDS: usize = 16;
/// Past this many keys in a shard, expired ones are dropped.
const SHARD_SOFT_CAP: usize = 50_000;

pub struct MemoryBudgets {
    shards: Vec<Mutex<HashMap<String, u64>>>,
    /// [`SHARD_SOFT_CAP`]; smaller in tests.
    soft_cap: usize,
}

impl Default for MemoryBudgets {
    fn default() -> Self {
        Self::with_cap(SHARD_SOFT_CAP)
    }
}

/// The shard of `key`. FNV-1a: cheap and good enough to spread keys.
fn shard_of(key: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % SHARDS
}

impl MemoryBudgets {
    fn with_cap(soft_cap: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            soft_cap,
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, u64>> {
        &self.shards[shard_of(key)]
    }

    /// Forget `key`'s spending; whether it had any.
    pub fn forget(&self, key: &str) -> bool {
        let mut map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key).is_some()
    }

    pub fn check(&self, key: &str, rate: Rate, now: u64) -> Verdict {
        let mut map = self.shard(key).lock().unwrap_or_else(|p| p.into_inner());
        let (verdict, tat) = gcra::check(map.get(key).copied(), now, rate);
        if map.len() >= self.soft_cap && !map.contains_key(key) {
            map.retain(|_, t| *t > now);
        }
        map.insert(key.to_string(), tat);
        verdict
    }
}

#[cfg(test)]
mod tests;
