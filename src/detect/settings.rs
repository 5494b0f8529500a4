//! The detector's settings: every threshold, weight and action band, with the defaults
//! `config/reference.toml` documents. Validated from `[detection]` by `config::validate`.

use std::collections::BTreeMap;

/// Thresholds: a signal scores 60 at its threshold, 90 at 1.5 times it (see `signals::ramp`).
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Patients exposed in 15 minutes: `short_factor` × the hourly baseline, kept in [min, max].
    pub short_min: f64,
    pub short_max: f64,
    pub short_factor: f64,
    /// Patients exposed over a shift (8 hours): `long_factor` × the hourly baseline, in [min, max].
    pub long_min: f64,
    pub long_max: f64,
    pub long_factor: f64,
    /// Consecutive record ids read with one constant step.
    pub enumeration_run: f64,
    /// Consecutive listing pages walked in order.
    pub crawl_pages: f64,
    /// Exports in one hour.
    pub exports_per_hour: f64,
    /// Refused or missing records (403/404) in 15 minutes.
    pub denied: f64,
    /// Megabytes of answers in 15 minutes (documents, images, archives).
    pub megabytes_short: f64,
    /// Page requests in one minute.
    pub pages_per_minute: f64,
    /// Below this coefficient of variation, 16 page gaps look machine-made.
    pub regular_timing_cv: f64,
    /// Page views with no static asset at all.
    pub no_assets_pages: f64,
    /// Distinct patients shown in listings (`[[records]] listing = true`) in 15 minutes: a
    /// list page shows 50 names at once, so this is wider than the above. (Over a day,
    /// listings count against the day budget's `listed`.)
    pub listed_short: f64,
}

/// Score bands (0-100) at which each action starts.
#[derive(Debug, Clone)]
pub struct Bands {
    pub alert: u8,
    pub step_up: u8,
    pub throttle: u8,
    pub suspend: u8,
}

/// What one role normally sees in a day: distinct patients whose records it opens, and
/// distinct patients its listings show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormalDay {
    pub records: f64,
    pub listed: f64,
}

/// Cumulative budgets per identity: a day (24 hours) and a week (7 days) of distinct
/// patients, each the normal amount plus an allowance past which the identity is suspended,
/// however slowly it went (a reader of the per-window thresholds stays under those).
#[derive(Debug, Clone)]
pub struct Budgets {
    pub roles: BTreeMap<String, NormalDay>,
    pub default: NormalDay,
    /// Patients beyond the normal day before suspension (alert at 55% of it).
    pub day_allowance: f64,
    /// Patients beyond the normal week before suspension.
    pub week_allowance: f64,
    /// A normal week is this many normal days (a ward's patients come back day after day).
    pub week_days: f64,
}

impl Budgets {
    /// The largest normal day of any role (what a shared workstation may see).
    pub fn busiest(&self) -> NormalDay {
        self.roles.values().fold(self.default, |m, v| NormalDay {
            records: m.records.max(v.records),
            listed: m.listed.max(v.listed),
        })
    }
}

impl Default for Budgets {
    fn default() -> Self {
        let day = |records, listed| NormalDay { records, listed };
        Self {
            roles: [
                ("nurse", day(40.0, 100.0)),
                ("physician", day(60.0, 150.0)),
                ("clerk", day(240.0, 450.0)),
                ("admin", day(30.0, 100.0)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            default: day(60.0, 150.0),
            day_allowance: 190.0,
            week_allowance: 475.0,
            week_days: 3.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DetectionConfig {
    pub enabled: bool,
    pub thresholds: Thresholds,
    /// Signal id -> weight (0-1) applied to its score; absent = 1.
    pub weights: BTreeMap<String, f64>,
    pub bands: Bands,
    /// Suspended sessions stay held this long unless the SOC releases them first.
    pub hold_minutes: u64,
    /// Throttled identities get one page per this many seconds.
    pub throttle_seconds: u64,
    /// Day and week budgets of distinct patients per identity.
    pub budgets: Budgets,
    /// Patients per hour a role is expected to see, while an identity has no baseline yet.
    pub role_priors: BTreeMap<String, f64>,
    pub default_prior: f64,
    /// Active hours before an identity's own baseline replaces its role's.
    pub warmup_hours: u32,
    /// Sources (one address, or an IPv6 /64) get thresholds this many times an identity's
    /// (1: a shared ward workstation sees its ward; raise it behind NAT or a VPN concentrator).
    pub source_factor: f64,
    /// Requests refused for a pending detector step-up before the identity is suspended.
    pub step_up_refusals: u32,
    /// Working hours of privileged accounts, in `[policy] time_zone`; outside = off-hours.
    pub working_hours: Option<crate::policy::window::TimeWindow>,
    /// Lower-case user-agent fragments of scripts and bots.
    pub scripted_agents: Vec<String>,
    /// Record identifiers no real care touches: any access is a top-severity alert.
    pub honeytokens: Vec<String>,
    /// Shared workstations, NAT, terminal servers: no source-address track there.
    pub shared_networks: Vec<ipnet::IpNet>,
    /// Per-portal settings (`[portal.detection]`), by portal name.
    pub portals: BTreeMap<String, PortalDetection>,
}

/// One portal's own detection settings.
#[derive(Debug, Clone, Default)]
pub struct PortalDetection {
    /// `false`: the portal's requests are not watched at all.
    pub enabled: bool,
    /// Signal weights replacing the global ones for this portal.
    pub weights: BTreeMap<String, f64>,
}

impl DetectionConfig {
    /// Whether requests to `portal` are watched.
    pub fn watches(&self, portal: &str) -> bool {
        self.enabled && self.portals.get(portal).is_none_or(|p| p.enabled)
    }

    /// A signal's weight on `portal`: the portal's own, else the global one, else 1.
    pub fn weight(&self, portal: &str, signal: &str) -> f64 {
        self.portals
            .get(portal)
            .and_then(|p| p.weights.get(signal))
            .or_else(|| self.weights.get(signal))
            .copied()
            .unwrap_or(1.0)
    }
}

impl Default for DetectionConfig {
    fn default() -> Self {
        let priors = [
            ("nurse", 15.0),
            ("physician", 20.0),
            ("clerk", 30.0),
            ("admin", 10.0),
        ];
        Self {
            enabled: true,
            thresholds: Thresholds {
                short_min: 40.0,
                short_max: 60.0,
                short_factor: 1.5,
                long_min: 80.0,
                long_max: 125.0,
                long_factor: 6.0,
                enumeration_run: 10.0,
                crawl_pages: 5.0,
                exports_per_hour: 3.0,
                denied: 25.0,
                megabytes_short: 200.0,
                pages_per_minute: 40.0,
                regular_timing_cv: 0.12,
                no_assets_pages: 60.0,
                listed_short: 400.0,
            },
            weights: BTreeMap::new(),
            bands: Bands {
                alert: 50,
                step_up: 70,
                throttle: 80,
                suspend: 90,
            },
            hold_minutes: 240,
            throttle_seconds: 10,
            budgets: Budgets::default(),
            role_priors: priors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            default_prior: 20.0,
            warmup_hours: 8,
            source_factor: 1.0,
            step_up_refusals: 10,
            working_hours: None,
            scripted_agents: [
                "curl/",
                "wget/",
                "python-requests",
                "python-urllib",
                "aiohttp",
                "httpx",
                "go-http-client",
                "okhttp",
                "java/",
                "libwww-perl",
                "httpie",
                "powershell",
                "scrapy",
                "headlesschrome",
                "phantomjs",
                "node-fetch",
                "axios/",
                "postmanruntime",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            honeytokens: Vec::new(),
            shared_networks: Vec::new(),
            portals: BTreeMap::new(),
        }
    }
}
