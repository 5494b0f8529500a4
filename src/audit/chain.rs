//! The audit trail made tamper-evident. Each writer (one per process, so one per replica) keeps
//! its own chain: entry n's MAC, under the key ring, commits to entry n-1's MAC, so an entry
//! edited, removed or moved breaks the chain where it happened, and someone who can write the
//! store but does not hold the key ring cannot mend it. The newest entries have nothing after
//! them to betray their removal: signed checkpoints ([`super::signing`]), also published to
//! the logs, say how far each chain had reached. Pruning past the retention leaves an anchor
//! (MACed too) saying where a chain now starts, so removing its oldest entries is caught too.
//!
//! Pure: [`Verifier`] reads entries in chain order and reports every break.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::Entry;
use crate::factors::crypto::KeyRing;

const ENTRY: &str = "vigie/audit-chain/v1";
const ANCHOR: &str = "vigie/audit-anchor/v1";
/// What the first entry of a chain commits to.
pub const GENESIS: &str = "-";

/// Where an entry sits in its chain, and its MAC (`KEYID:HEX`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub chain: String,
    pub seq: i64,
    pub mac: String,
}

/// The bytes an entry's MAC covers: every stored field, its place and its predecessor's MAC,
/// as one JSON array (unambiguous; `fields` serialise with sorted keys, as every store
/// gives them back).
fn material(chain: &str, seq: i64, prev: &str, e: &Entry) -> Vec<u8> {
    let parts =
        serde_json::json!([chain, seq, prev, e.id, e.at_us, e.level, e.event, e.user, e.fields]);
    parts.to_string().into_bytes()
}

/// The MAC under the ring's current key.
fn mac(keys: &KeyRing, purpose: &str, data: &[u8]) -> String {
    keys.digests(purpose, data).swap_remove(0)
}

/// Whether `stored` is the MAC of `data` under any key of the ring (constant time per key).
fn matches(keys: &KeyRing, purpose: &str, data: &[u8], stored: &str) -> bool {
    keys.digests(purpose, data)
        .iter()
        .any(|d| bool::from(d.as_bytes().ct_eq(stored.as_bytes())))
}

/// A writer's chain: its name, and the last entry stored.
#[derive(Debug, Clone)]
pub struct Chainer {
    chain: String,
    seq: i64,
    last: String,
}

impl Chainer {
    pub fn new(chain: String) -> Self {
        Self {
            chain,
            seq: 0,
            last: GENESIS.into(),
        }
    }

    /// A chain name for this process: the host, when it started, and a random tag (two
    /// processes on one host never share a chain).
    pub fn name_for_this_process() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let started = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        format!("{host}/{started}/{:04x}", rand::random::<u16>())
    }

    pub fn name(&self) -> &str {
        &self.chain
    }

    /// The last entry stored: its number and MAC (`None` before the first).
    pub fn head(&self) -> Option<(i64, &str)> {
        (self.seq > 0).then_some((self.seq, self.last.as_str()))
    }

    /// The links `entries` take, in order, without moving on: [`Chainer::commit`] once they
    /// are stored (a refused write is linked again, the same way, when retried).
    pub fn links(&self, keys: &KeyRing, entries: &[Entry]) -> Vec<Link> {
        let (mut seq, mut prev) = (self.seq, self.last.clone());
        entries
            .iter()
            .map(|e| {
                seq += 1;
                let mac = mac(keys, ENTRY, &material(&self.chain, seq, &prev, e));
                prev.clone_from(&mac);
                Link {
                    chain: self.chain.clone(),
                    seq,
                    mac,
                }
            })
            .collect()
    }

    pub fn commit(&mut self, last: &Link) {
        self.seq = last.seq;
        self.last.clone_from(&last.mac);
    }
}

/// Where a pruned chain now starts: its last removed entry, MACed so it cannot be moved on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub chain: String,
    pub seq: i64,
    pub mac: String,
    pub tag: String,
}

impl Anchor {
    pub fn new(keys: &KeyRing, removed: &Link) -> Self {
        Self {
            chain: removed.chain.clone(),
            seq: removed.seq,
            mac: removed.mac.clone(),
            tag: mac(keys, ANCHOR, &Self::material(removed)),
        }
    }

    fn material(l: &Link) -> Vec<u8> {
        serde_json::json!([l.chain, l.seq, l.mac])
            .to_string()
            .into_bytes()
    }

    fn genuine(&self, keys: &KeyRing) -> bool {
        let link = Link {
            chain: self.chain.clone(),
            seq: self.seq,
            mac: self.mac.clone(),
        };
        matches(keys, ANCHOR, &Self::material(&link), &self.tag)
    }
}

/// How far a chain had reached, signed (see [`super::signing`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub chain: String,
    pub seq: i64,
    pub mac: String,
    pub at_us: i64,
    /// The signing public key, base64 (raw Ed25519).
    pub signer: String,
    /// Base64.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes the signature covers.
    pub fn material(chain: &str, seq: i64, mac: &str, at_us: i64) -> Vec<u8> {
        serde_json::json!(["vigie/audit-checkpoint/v1", chain, seq, mac, at_us])
            .to_string()
            .into_bytes()
    }
}

/// One break in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The entry does not match its MAC: edited, or moved from elsewhere in the chain.
    Altered { chain: String, seq: i64, id: String },
    /// Entries `from..=to` are missing from the middle of the chain.
    Removed { chain: String, from: i64, to: i64 },
    /// The chain's oldest entries are missing, and no anchor of a pruning says why.
    HeadRemoved { chain: String, first: i64 },
    /// An anchor was not written by a holder of the key ring.
    ForgedAnchor { chain: String },
    /// A checkpoint names an entry the store no longer has: the newest entries were removed.
    Truncated {
        chain: String,
        checkpoint: i64,
        last: Option<i64>,
    },
    /// A checkpoint's entry is there with another MAC.
    CheckpointMismatch { chain: String, seq: i64 },
    /// A checkpoint's signature is wrong, or made by a key not in the key directory.
    BadCheckpoint {
        chain: String,
        seq: i64,
        why: String,
    },
    /// An entry without a (whole) link, dated after chaining began: inserted, or stripped.
    Unlinked { id: String },
    /// A break-glass record the chain does not vouch for, or that differs from its entry.
    BreakGlass { id: String, why: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Altered { chain, seq, id } => write!(f, "chain {chain}: entry #{seq} (id {id}) does not match its MAC: it was edited, or moved from another place"),
            Problem::Removed { chain, from, to } if from == to => write!(f, "chain {chain}: entry #{from} was removed"),
            Problem::Removed { chain, from, to } => write!(f, "chain {chain}: entries #{from} to #{to} were removed"),
            Problem::HeadRemoved { chain, first } => write!(f, "chain {chain}: starts at entry #{first}, and no pruning anchor accounts for the entries before it: they were removed"),
            Problem::ForgedAnchor { chain } => write!(f, "chain {chain}: its pruning anchor does not match its MAC (written without the key ring)"),
            Problem::Truncated { chain, checkpoint, last: Some(last) } => write!(f, "chain {chain}: a checkpoint vouches for entry #{checkpoint}, the store ends at #{last}: the newest entries were removed"),
            Problem::Truncated { chain, checkpoint, last: None } => write!(f, "chain {chain}: a checkpoint vouches for entry #{checkpoint}, the store has no entry of this chain: it was removed"),
            Problem::CheckpointMismatch { chain, seq } => write!(f, "chain {chain}: entry #{seq} differs from what its checkpoint signed"),
            Problem::BadCheckpoint { chain, seq, why } => write!(f, "chain {chain}: the checkpoint at #{seq} is not trusted: {why}"),
            Problem::Unlinked { id } => write!(f, "entry {id} has no link but is dated after the chain began: it was inserted, or its link stripped"),
            Problem::BreakGlass { id, why } => write!(f, "break-glass record {id}: {why}"),
        }
    }
}

/// One chain as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainSummary {
    pub chain: String,
    pub first: i64,
    pub last: i64,
    pub entries: u64,
    /// The newest checkpoint that matched, and the entries after it (nothing vouches for them
    /// yet: removing them is caught only once a later checkpoint names them).
    pub checkpoint: Option<i64>,
    pub unconfirmed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub chains: Vec<ChainSummary>,
    /// Entries written before the chain existed (no link): not covered.
    pub unchained: u64,
    /// Every break found, in the order of the chains.
    pub problems: Vec<Problem>,
    /// What limits the check without being a break (checkpoints of an unknown signer).
    pub warnings: Vec<String>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a chained `break_glass` entry says of its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlassClaim {
    /// When the entry was written (the record follows within moments).
    pub at_us: i64,
    pub user: Option<String>,
    pub session: String,
    pub until: i64,
    pub portal: Option<String>,
}

/// Reads entries in (chain, seq) order ([`super::AuditRecords::page`]) and checks each link.
pub struct Verifier<'a> {
    keys: &'a KeyRing,
    /// When the oldest linked entry was written: an unlinked one dated after it is not from
    /// before the chain.
    linked_since: Option<i64>,
    /// Break-glass records the chain vouches for, by id.
    pub glass: HashMap<String, GlassClaim>,
    anchors: HashMap<String, Anchor>,
    /// Trusted checkpoints by chain and number.
    checkpoints: HashMap<String, BTreeMap<i64, Checkpoint>>,
    current: Option<(ChainSummary, String)>,
    report: Report,
}

impl<'a> Verifier<'a> {
    /// `checkpoints` must already be the trusted ones ([`super::signing::trusted`]).
    pub fn new(
        keys: &'a KeyRing,
        anchors: Vec<Anchor>,
        checkpoints: Vec<Checkpoint>,
        linked_since: Option<i64>,
    ) -> Self {
        let mut by_chain: HashMap<String, BTreeMap<i64, Checkpoint>> = HashMap::new();
        for cp in checkpoints {
            by_chain
                .entry(cp.chain.clone())
                .or_default()
                .insert(cp.seq, cp);
        }
        let mut report = Report::default();
        let mut kept = HashMap::new();
        for a in anchors {
            match a.genuine(keys) {
                true => {
                    kept.insert(a.chain.clone(), a);
                }
                false => report
                    .problems
                    .push(Problem::ForgedAnchor { chain: a.chain }),
            }
        }
        Self {
            keys,
            linked_since,
            glass: HashMap::new(),
            anchors: kept,
            checkpoints: by_chain,
            current: None,
            report,
        }
    }

    /// The next entry, at `cursor` (its raw place: a chain name without a whole link shows).
    pub fn feed(&mut self, cursor: &super::Cursor, e: &Entry) {
        let Some(link) = &e.link else {
            let after_chaining = self.linked_since.is_some_and(|t| e.at_us >= t);
            match cursor.0.is_empty() && !after_chaining {
                true => self.report.unchained += 1,
                false => self
                    .report
                    .problems
                    .push(Problem::Unlinked { id: e.id.clone() }),
            }
            return;
        };
        if e.event == "break_glass" {
            if let Some(record) = e.fields.get("record").and_then(|r| r.as_str()) {
                let text = |k: &str| e.fields.get(k).and_then(|v| v.as_str()).map(str::to_string);
                self.glass.insert(
                    record.to_string(),
                    GlassClaim {
                        at_us: e.at_us,
                        user: e.user.clone(),
                        session: text("session").unwrap_or_default(),
                        until: e.fields.get("until").and_then(|v| v.as_i64()).unwrap_or(-1),
                        portal: text("portal"),
                    },
                );
            }
        }
        if self
            .current
            .as_ref()
            .is_none_or(|(c, _)| c.chain != link.chain)
        {
            self.close();
            let prev = match self.anchors.get(&link.chain) {
                Some(a) => (a.seq, a.mac.clone()),
                None => (0, GENESIS.to_string()),
            };
            let summary = ChainSummary {
                chain: link.chain.clone(),
                first: link.seq,
                last: prev.0,
                entries: 0,
                checkpoint: None,
                unconfirmed: 0,
            };
            self.current = Some((summary, prev.1));
        }
        let (summary, prev) = self.current.as_mut().expect("set above");
        let gap = link.seq > summary.last + 1;
        if gap {
            self.report.problems.push(match summary.entries {
                0 => Problem::HeadRemoved {
                    chain: link.chain.clone(),
                    first: link.seq,
                },
                _ => Problem::Removed {
                    chain: link.chain.clone(),
                    from: summary.last + 1,
                    to: link.seq - 1,
                },
            });
        }
        // After a gap the predecessor is unknown: the removal is the break reported.
        let material = material(&link.chain, link.seq, prev, e);
        if !gap && !matches(self.keys, ENTRY, &material, &link.mac) {
            self.report.problems.push(Problem::Altered {
                chain: link.chain.clone(),
                seq: link.seq,
                id: e.id.clone(),
            });
        }
        if let Some(cp) = self
            .checkpoints
            .get(&link.chain)
            .and_then(|c| c.get(&link.seq))
        {
            match bool::from(cp.mac.as_bytes().ct_eq(link.mac.as_bytes())) {
                true => summary.checkpoint = Some(link.seq),
                false => self.report.problems.push(Problem::CheckpointMismatch {
                    chain: link.chain.clone(),
                    seq: link.seq,
                }),
            }
        }
        summary.last = link.seq;
        summary.entries += 1;
        prev.clone_from(&link.mac);
    }

    /// The chain just read: a checkpoint past its end means its newest entries were removed.
    fn close(&mut self) {
        let Some((mut summary, _)) = self.current.take() else {
            return;
        };
        if let Some((newest, _)) = self
            .checkpoints
            .remove(&summary.chain)
            .and_then(|c| c.into_iter().next_back())
        {
            if newest > summary.last {
                self.report.problems.push(Problem::Truncated {
                    chain: summary.chain.clone(),
                    checkpoint: newest,
                    last: Some(summary.last),
                });
            }
        }
        summary.unconfirmed =
            (summary.last - summary.checkpoint.unwrap_or(summary.first - 1)).max(0) as u64;
        self.report.chains.push(summary);
    }

    pub fn finish(mut self) -> Report {
        self.close();
        // Checkpoints of chains with no entry left: removed whole, unless pruned past them.
        let mut gone: Vec<(String, i64)> = self
            .checkpoints
            .iter()
            .filter_map(|(chain, cps)| cps.keys().next_back().map(|s| (chain.clone(), *s)))
            .filter(|(chain, seq)| self.anchors.get(chain).is_none_or(|a| a.seq < *seq))
            .collect();
        gone.sort();
        for (chain, checkpoint) in gone {
            self.report.problems.push(Problem::Truncated {
                chain,
                checkpoint,
                last: None,
            });
        }
        self.report
    }
}
