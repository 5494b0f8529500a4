//! The detector's settings, swapped whole by a reload (its tracks, baselines and holds stay).

use std::sync::Arc;

use super::{DetectionConfig, Detector};

/// The detector's settings with what is derived from them once.
pub(super) struct Tuning {
    pub cfg: DetectionConfig,
    pub honeytokens: Vec<u64>,
    /// The scripted agents' fragments, as one case-insensitive matcher.
    pub scripted: regex::Regex,
}

impl Tuning {
    pub fn new(cfg: DetectionConfig, pseudonyms: &super::pseudonym::Pseudonyms) -> Self {
        let honeytokens = cfg.honeytokens.iter().map(|h| pseudonyms.of(h)).collect();
        let alternatives: Vec<String> = cfg
            .scripted_agents
            .iter()
            .map(|a| regex::escape(a))
            .collect();
        let scripted = regex::RegexBuilder::new(&alternatives.join("|"))
            .case_insensitive(true)
            .build()
            .unwrap_or_else(|_| regex::Regex::new("$^").expect("a regex that never matches"));
        Self {
            cfg,
            honeytokens,
            scripted,
        }
    }
}

impl Detector {
    /// How many identities and sources are followed now.
    pub fn tracks(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("detector shard").len())
            .sum()
    }

    /// New settings for the next requests (a reload): thresholds, weights, honeytokens.
    pub fn retune(&self, cfg: DetectionConfig) {
        self.tuning
            .store(Arc::new(Tuning::new(cfg, &self.pseudonyms)));
    }
}
