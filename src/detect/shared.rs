//! With the Redis backend, replicas share what the detector knows of an identity: the
//! patients it reached (one HyperLogLog per identity and time slot, so every replica counts
//! the union), the record rows it received, the holds, and the SOC's releases. A background
//! thread batches this every quarter second: requests never wait on Redis for detection, and
//! an identity spread over several replicas is counted as one within about a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub use super::windows::Counts;
use super::windows::{DAY_SLOT_US, LONG_SLOT_US, SHORT_SLOT_US};
use super::{Detector, Hold};

const EVERY: Duration = Duration::from_millis(250);
/// The shared windows: kind, slot length, slots in the window (as the tracks keep them).
const WINDOWS: [(char, i64, i64); 3] = [
    ('s', SHORT_SLOT_US, 3),
    ('l', LONG_SLOT_US, 8),
    ('d', DAY_SLOT_US, 3),
];

/// What this replica saw since the last sync, and hold changes to write.
#[derive(Default)]
pub struct Outbox {
    /// Track key -> (time, pseudonym or 0, record rows).
    events: HashMap<String, Vec<(i64, u64, u64)>>,
    holds: Vec<HoldChange>,
}

pub enum HoldChange {
    Put(String, Hold),
    Release(String, i64),
}

pub struct Shared {
    redis: crate::storage::redis::Redis,
    prefix: String,
    outbox: Mutex<Outbox>,
}

impl Shared {
    pub fn new(redis: crate::storage::redis::Redis, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_string(),
            outbox: Mutex::new(Outbox::default()),
        }
    }

    pub fn record(&self, key: &str, at_us: i64, pseudonym: u64, rows: u64) {
        let mut out = self.outbox.lock().expect("outbox");
        let events = out.events.entry(key.to_string()).or_default();
        // The same patient again in the same slot adds nothing a HyperLogLog would count.
        let repeat = rows == 0
            && events
                .last()
                .is_some_and(|l| l.1 == pseudonym && l.0 / SHORT_SLOT_US == at_us / SHORT_SLOT_US);
        // Bounded between two syncs, whatever the request rate.
        if !repeat && events.len() < 10_000 {
            events.push((at_us, pseudonym, rows));
        }
    }

    pub fn hold(&self, change: HoldChange) {
        let mut out = self.outbox.lock().expect("outbox");
        if out.holds.len() < 10_000 {
            out.holds.push(change);
        }
    }

    /// Keys of one identity share a hash tag, so a multi-key PFCOUNT works on a cluster too.
    fn key(&self, track: &str, kind: char, slot: i64) -> String {
        format!("{}det:{{{track}}}:{kind}:{slot}", self.prefix)
    }

    fn holds_key(&self) -> String {
        format!("{}det:holds", self.prefix)
    }

    fn released_key(&self) -> String {
        format!("{}det:released", self.prefix)
    }

    /// Start the sync thread; it ends when the detector is dropped.
    pub fn start(self: &Arc<Self>, detector: Weak<Detector>) {
        let me = self.clone();
        std::thread::Builder::new()
            .name("vigie-detect-sync".into())
            .spawn(move || {
                let mut conn = None;
                let mut said = false;
                while let Some(d) = detector.upgrade() {
                    if conn.is_none() {
                        conn = match me.redis.blocking(Duration::from_millis(500)) {
                            Ok(c) => {
                                said = false;
                                Some(c)
                            }
                            Err(e) => {
                                // Once per outage: each replica counts alone meanwhile.
                                if !std::mem::replace(&mut said, true) {
                                    tracing::warn!(error = %e, "detector: Redis unreachable; counting per replica until it is back");
                                }
                                None
                            }
                        };
                    }
                    match conn.as_mut() {
                        Some(c) => {
                            if let Err(e) = me.sync(c, &d) {
                                tracing::warn!(error = %e, "detector: Redis sync failed; counting per replica until it is back");
                                conn = None;
                            }
                        }
                        // Redis is away: each replica counts alone meanwhile, and nothing piles up.
                        None => me.outbox.lock().expect("outbox").events.clear(),
                    }
                    drop(d);
                    std::thread::sleep(EVERY);
                }
            })
            .expect("spawn the detector's sync thread");
    }

    fn sync(
        &self,
        conn: &mut crate::storage::redis::BlockingConn,
        d: &Detector,
    ) -> redis::RedisResult<()> {
        let out = std::mem::take(&mut *self.outbox.lock().expect("outbox"));
        let mut pipe = redis::pipe();
        for change in &out.holds {
            match change {
                HoldChange::Put(field, hold) => {
                    pipe.hset(
                        self.holds_key(),
                        field,
                        serde_json::to_string(hold).unwrap_or_default(),
                    )
                    .ignore();
                }
                HoldChange::Release(field, at) => {
                    pipe.hdel(self.holds_key(), field).ignore();
                    pipe.hset(self.released_key(), field, *at).ignore();
                    // The released identity starts again from nothing on every replica.
                    let mut evidence = Vec::new();
                    for (kind, slot_us, n) in WINDOWS {
                        for i in 0..n {
                            evidence.push(self.key(field, kind, at / slot_us - i));
                            evidence.push(self.key(
                                field,
                                kind.to_ascii_uppercase(),
                                at / slot_us - i,
                            ));
                        }
                    }
                    pipe.del(evidence).ignore();
                }
            }
        }
        let mut asked = Vec::new();
        for (track, events) in &out.events {
            let now = events.iter().map(|e| e.0).max().unwrap_or(0);
            // One PFADD and one INCRBY per slot, whatever the number of events.
            let mut adds: HashMap<(char, i64), (Vec<u64>, u64)> = HashMap::new();
            for &(at, h, rows) in events {
                for (kind, slot_us) in [
                    ('s', SHORT_SLOT_US),
                    ('l', LONG_SLOT_US),
                    ('d', DAY_SLOT_US),
                ] {
                    let entry = adds.entry((kind, at / slot_us)).or_default();
                    if h != 0 {
                        entry.0.push(h);
                    }
                    entry.1 += rows;
                }
            }
            for ((kind, slot), (hashes, rows)) in adds {
                let keep_s = match kind {
                    's' => 1200,
                    'l' => 9 * 3600,
                    _ => 25 * 3600,
                };
                let (sketch, count) = (
                    self.key(track, kind, slot),
                    self.key(track, kind.to_ascii_uppercase(), slot),
                );
                if !hashes.is_empty() {
                    pipe.pfadd(&sketch, hashes).ignore();
                    pipe.expire(&sketch, keep_s).ignore();
                }
                if rows > 0 {
                    pipe.incr(&count, rows).ignore();
                    pipe.expire(&count, keep_s).ignore();
                }
            }
            for (kind, slot_us, n) in WINDOWS {
                let slot = now / slot_us;
                let keys: Vec<String> = (0..n).map(|i| self.key(track, kind, slot - i)).collect();
                let rows: Vec<String> = (0..n)
                    .map(|i| self.key(track, kind.to_ascii_uppercase(), slot - i))
                    .collect();
                pipe.cmd("PFCOUNT").arg(&keys);
                pipe.mget(&rows);
            }
            asked.push((track.clone(), now));
        }
        pipe.hgetall(self.holds_key());
        pipe.hgetall(self.released_key());
        let mut replies: Vec<redis::Value> = pipe.query(conn)?;
        let released: HashMap<String, i64> =
            redis::from_redis_value(replies.pop().unwrap_or(redis::Value::Nil))?;
        let holds: HashMap<String, String> =
            redis::from_redis_value(replies.pop().unwrap_or(redis::Value::Nil))?;
        let mut it = replies.into_iter();
        for (track, now) in asked {
            let mut n = [0u64; 3];
            for slot in &mut n {
                let distinct: u64 =
                    redis::from_redis_value(it.next().unwrap_or(redis::Value::Nil)).unwrap_or(0);
                let rows: Vec<Option<u64>> =
                    redis::from_redis_value(it.next().unwrap_or(redis::Value::Nil))
                        .unwrap_or_default();
                *slot = distinct + rows.into_iter().flatten().sum::<u64>();
            }
            d.shared_counts(
                &track,
                Counts {
                    at_us: now,
                    short: n[0],
                    long: n[1],
                    day: n[2],
                },
            );
        }
        let holds = holds
            .into_iter()
            .filter_map(|(k, v)| Some((k, serde_json::from_str::<Hold>(&v).ok()?)))
            .collect();
        d.shared_holds(holds, released);
        Ok(())
    }
}
