//! Access policy: what a request needs and may do. Rules from config match host, the
//! normalised path, method, query parameters (read as the portal reads them), groups, source
//! networks and working hours; the first match in file order decides the level required, the
//! step-up window, the budget class, or a denial. Privileged accounts get a stricter pack on
//! top; a break-glass session may lift the denials marked as liftable. Pure: no I/O, the clock
//! comes in [`Facts`].

pub mod lint;
pub mod matcher;
pub mod window;

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use jiff::tz::TimeZone;

use crate::factors::rules::Requirement;
use crate::identity::session::AuthLevel;
use matcher::{Matcher, QueryReading};
use window::TimeWindow;

/// Where the gateway's own security settings live; changing factors needs a fresh one.
pub const ACCOUNT_PATH: &str = "/.vigie/account";
/// Where a user asks for break-glass; it needs a fresh phishing-resistant factor.
pub const BREAK_GLASS_PATH: &str = "/.vigie/break-glass";
/// Budget class of requests no rule or profile class names.
pub const DEFAULT_CLASS: &str = "view";
/// The class whose requests privileged packs put behind a fresh step-up.
pub const EXPORT_CLASS: &str = "export";

/// What a rule decides when it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The level required (`None`: the default, second factor).
    pub level: Option<AuthLevel>,
    /// The factor at that level must be this recent (seconds).
    pub within: Option<u64>,
    pub budget: Option<String>,
    pub deny: bool,
    /// A denial a break-glass session may lift.
    pub break_glass: bool,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Portal names; empty = every portal.
    pub portals: Vec<String>,
    /// Lower-case host names; empty = any.
    pub hosts: Vec<String>,
    pub matcher: Matcher,
    /// Any of these groups; empty = anyone (anonymous included).
    pub groups: Vec<String>,
    /// From one of these networks; empty = anywhere.
    pub networks: Vec<IpNet>,
    /// Only inside this window; `None` = always.
    pub window: Option<TimeWindow>,
    pub outcome: Outcome,
}

/// What happens to a new session past a privileged account's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excess {
    RevokeOldest,
    Refuse,
}

/// The policy pack of privileged accounts.
#[derive(Debug, Clone)]
pub struct Pack {
    pub name: String,
    pub groups: Vec<String>,
    pub level: AuthLevel,
    pub idle_timeout: Option<Duration>,
    pub absolute_timeout: Option<Duration>,
    pub max_sessions: Option<usize>,
    pub on_excess: Excess,
    /// Budgets are multiplied by this (below 1: tighter).
    pub budget_scale: f64,
    pub networks: Vec<IpNet>,
    pub window: Option<TimeWindow>,
    /// Exports need a factor at the pack's level this recent (seconds).
    pub export_within: u64,
}

#[derive(Debug, Clone)]
pub struct BreakGlass {
    pub duration: Duration,
    /// Budgets of a break-glass session are multiplied by this.
    pub budget_scale: f64,
    /// The phishing-resistant factor asked for must be this recent (seconds).
    pub fresh: u64,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// How recent a factor must be to change factors (`second_factor.fresh_minutes`).
    pub fresh_factor: u64,
    pub rules: Vec<Rule>,
    pub packs: Vec<Pack>,
    pub zone: TimeZone,
    pub break_glass: BreakGlass,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            fresh_factor: 300,
            rules: Vec::new(),
            packs: Vec::new(),
            zone: TimeZone::UTC,
            break_glass: BreakGlass {
                duration: Duration::from_secs(30 * 60),
                budget_scale: 10.0,
                fresh: 300,
            },
        }
    }
}

/// The facts a decision is made from.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub user: Option<&'a str>,
    pub groups: &'a [String],
    pub ip: IpAddr,
    /// Unix seconds.
    pub now: u64,
    /// The session is in break-glass.
    pub break_glass: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule, or `privileged:<pack>` for a pack's network or hours limit.
    pub by: String,
    /// Break-glass may lift it.
    pub break_glass: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The rule that decided, `None` for the default.
    pub rule: Option<String>,
    pub requirement: Requirement,
    pub budget: String,
    pub deny: Option<Denial>,
    /// The privileged pack that applied.
    pub pack: Option<String>,
    /// Budget multiplier (pack, break-glass).
    pub budget_scale: f64,
}

impl PolicyConfig {
    /// The privileged pack for these groups (the first listed that applies).
    pub fn pack_for(&self, groups: &[String]) -> Option<&Pack> {
        self.packs
            .iter()
            .find(|p| p.groups.iter().any(|g| groups.contains(g)))
    }

    /// Decide for one request on `portal`.
    pub fn decide(&self, portal: &PortalView, second_factor: bool, f: &Facts) -> Decision {
        if !portal.holds_sessions {
            return Decision {
                rule: None,
                requirement: Requirement::PUBLIC,
                budget: DEFAULT_CLASS.into(),
                deny: None,
                pack: None,
                budget_scale: 1.0,
            };
        }
        let reading = portal.reading;
        let base = if second_factor {
            Requirement::SECOND_FACTOR
        } else {
            Requirement::PASSWORD
        };
        let rule = self
            .rules
            .iter()
            .find(|r| r.applies(portal, f, reading, &self.zone));
        let outcome = rule.map(|r| &r.outcome);
        let mut requirement = match outcome.and_then(|o| o.level) {
            Some(level) => Requirement {
                level,
                within: None,
            },
            None => base,
        };
        if let Some(w) = outcome.and_then(|o| o.within) {
            requirement.within = Some(w);
        }
        if f.path.starts_with(ACCOUNT_PATH) {
            requirement = requirement.max(Requirement {
                level: AuthLevel::SecondFactor,
                within: Some(self.fresh_factor),
            });
        }
        if f.path.starts_with(BREAK_GLASS_PATH) {
            requirement = requirement.max(Requirement {
                level: AuthLevel::PhishingResistant,
                within: Some(self.break_glass.fresh),
            });
        }
        let budget = outcome
            .and_then(|o| o.budget.clone())
            .unwrap_or_else(|| portal.class.to_string());
        let mut deny = outcome.filter(|o| o.deny).map(|o| Denial {
            by: rule.map_or_else(String::new, |r| r.name.clone()),
            break_glass: o.break_glass,
        });
        let mut budget_scale = 1.0;
        let pack = f.user.and_then(|_| self.pack_for(f.groups));
        if let Some(p) = pack {
            requirement = requirement.max(Requirement {
                level: p.level,
                within: None,
            });
            if budget == EXPORT_CLASS {
                requirement = requirement.max(Requirement {
                    level: p.level,
                    within: Some(p.export_within),
                });
            }
            budget_scale = p.budget_scale;
            let off_network =
                !p.networks.is_empty() && !p.networks.iter().any(|n| n.contains(&f.ip));
            let off_hours = p
                .window
                .as_ref()
                .is_some_and(|w| !w.contains(f.now, &self.zone));
            if deny.is_none() && (off_network || off_hours) {
                deny = Some(Denial {
                    by: format!("privileged:{}", p.name),
                    break_glass: true,
                });
            }
        }
        if f.break_glass {
            if deny.as_ref().is_some_and(|d| d.break_glass) {
                deny = None;
            }
            budget_scale *= self.break_glass.budget_scale;
        }
        Decision {
            rule: rule.map(|r| r.name.clone()),
            requirement,
            budget,
            deny,
            pack: pack.map(|p| p.name.clone()),
            budget_scale,
        }
    }
}

/// What the policy knows of the portal a request is for. The caller reads it from the portal's
/// configuration (`PortalConfig::policy_view`): the policy decides from facts
/// and depends on no configuration type.
#[derive(Debug, Clone, Copy)]
pub struct PortalView<'a> {
    pub name: &'a str,
    /// The gateway holds sessions for it (a profile, or gateway-owned logins): rules apply.
    pub holds_sessions: bool,
    /// How it reads a query parameter given twice.
    pub reading: QueryReading,
    /// The request's endpoint class, from the portal's profile.
    pub class: &'a str,
}

impl Rule {
    fn applies(
        &self,
        portal: &PortalView,
        f: &Facts,
        reading: QueryReading,
        zone: &TimeZone,
    ) -> bool {
        (self.portals.is_empty() || self.portals.iter().any(|p| p == portal.name))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h == f.host))
            && self.matcher.matches(f.method, f.path, f.query, reading)
            && (self.groups.is_empty() || self.groups.iter().any(|g| f.groups.contains(g)))
            && (self.networks.is_empty() || self.networks.iter().any(|n| n.contains(&f.ip)))
            && self.window.as_ref().is_none_or(|w| w.contains(f.now, zone))
    }
}
