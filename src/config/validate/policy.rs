//! Validation of `[policy]`, `[[rule]]`, `[[privileged]]`, `[break_glass]`, `[budgets]` and
//! `[groups]` into the compiled [`crate::policy::PolicyConfig`] and [`BudgetConfig`].

use std::collections::BTreeMap;

use super::*;
use crate::config::file::{BudgetSection, FileConfig, RuleSection};
use crate::identity::session::AuthLevel;
use crate::policy::matcher::{Matcher, PathPattern, QueryCondition};
use crate::policy::window::TimeWindow;
use crate::policy::{BreakGlass, Excess, Outcome, Pack, PolicyConfig, Rule};

/// Budgets when `[budgets]` does not name them: generous for clinical work, tight for exports.
const DEFAULT_BUDGETS: &[(&str, u32, u64, u32)] = &[
    ("view", 300, 60, 100),
    ("search", 60, 60, 20),
    ("list", 60, 60, 20),
    ("file", 120, 60, 30),
    ("admin", 60, 60, 20),
    ("export", 10, 3600, 3),
    ("source", 1200, 60, 300),
    ("login", 10, 60, 5),
];

pub(super) fn level(v: &mut Validator<'_>, key: &str, raw: &str) -> AuthLevel {
    match raw {
        "public" => AuthLevel::None,
        "password" => AuthLevel::Password,
        "second_factor" => AuthLevel::SecondFactor,
        "phishing_resistant" => AuthLevel::PhishingResistant,
        other => {
            v.err(
                key,
                format!("unknown level `{other}`"),
                "use \"public\", \"password\", \"second_factor\" or \"phishing_resistant\" (a passkey)",
            );
            AuthLevel::SecondFactor
        }
    }
}

/// A path glob or regex, methods and query conditions, as rules and profiles write them.
pub(crate) fn matcher(
    key: &str,
    path: Option<&str>,
    path_regex: Option<&str>,
    methods: &[String],
    query: &BTreeMap<String, String>,
    case_insensitive: bool,
    err: &mut dyn FnMut(&str, String, &str),
) -> Matcher {
    let path = match (path, path_regex) {
        (Some(_), Some(_)) => {
            err(
                &format!("{key}.path_regex"),
                "both path and path_regex are set".into(),
                "keep one",
            );
            PathPattern::Any
        }
        (Some(p), None) => {
            if !p.starts_with('/')
                || p.contains("//")
                || p.contains("/./")
                || p.contains("/../")
                || p.contains('%')
                || p.contains('\\')
            {
                // Requests are matched after normalisation: such a pattern could never match.
                err(&format!("{key}.path"), format!("`{p}` can never match a normalised path"), "write the path as Vigie sees it after normalisation: starting with `/`, no `//`, `..`, `%` escapes or `\\`");
            }
            PathPattern::glob(p, case_insensitive).unwrap_or(PathPattern::Any)
        }
        (None, Some(r)) => PathPattern::regex(r, case_insensitive).unwrap_or_else(|e| {
            err(
                &format!("{key}.path_regex"),
                format!("invalid regex: {e}"),
                "see https://docs.rs/regex for the syntax",
            );
            PathPattern::Any
        }),
        (None, None) => PathPattern::Any,
    };
    let mut upper = Vec::new();
    for (i, m) in methods.iter().enumerate() {
        let m = m.to_ascii_uppercase();
        if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&m.as_str()) {
            err(&format!("{key}.methods[{i}]"), format!("`{m}` never reaches a portal"), "use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS (TRACE and CONNECT are refused before policy)");
        }
        upper.push(m);
    }
    let query = query
        .iter()
        .map(|(k, v)| QueryCondition::new(k, v))
        .collect();
    Matcher {
        path,
        methods: upper,
        query,
    }
}

impl Validator<'_> {
    fn window(&mut self, key: &str, hours: Option<&str>, days: &[String]) -> Option<TimeWindow> {
        match (hours, days.is_empty()) {
            (None, true) => None,
            (None, false) => match TimeWindow::parse("00:00-24:00", days) {
                Ok(w) => Some(w),
                Err(e) => {
                    self.err(
                        &format!("{key}.days"),
                        e,
                        "use mon, tue, wed, thu, fri, sat, sun",
                    );
                    None
                }
            },
            (Some(h), _) => match TimeWindow::parse(h, days) {
                Ok(w) => Some(w),
                Err(e) => {
                    self.err(&format!("{key}.hours"), e, "e.g. hours = \"07:00-20:00\", days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]");
                    None
                }
            },
        }
    }

    fn limit(&mut self, key: &str, b: &BudgetSection) -> Limit {
        let period = match b.per.as_str() {
            "second" => 1,
            "minute" => 60,
            "hour" => 3600,
            "day" => 86_400,
            other => {
                self.err(
                    &format!("{key}.per"),
                    format!("`{other}` is not a period"),
                    "use \"second\", \"minute\", \"hour\" or \"day\"",
                );
                60
            }
        };
        let requests = self.range(&format!("{key}.requests"), b.requests, 1, 1_000_000, "") as u32;
        let burst = self.range(
            &format!("{key}.burst"),
            b.burst.unwrap_or(b.requests),
            1,
            1_000_000,
            "",
        ) as u32;
        Limit {
            requests,
            period: Duration::from_secs(period),
            burst,
        }
    }

    pub(super) fn budgets(&mut self, sections: &BTreeMap<String, BudgetSection>) -> BudgetConfig {
        let mut classes = std::collections::HashMap::new();
        for (name, requests, period, burst) in DEFAULT_BUDGETS {
            classes.insert(
                name.to_string(),
                Limit {
                    requests: *requests,
                    period: Duration::from_secs(*period),
                    burst: *burst,
                },
            );
        }
        for (name, b) in sections {
            let limit = self.limit(&format!("budgets.{name}"), b);
            classes.insert(name.clone(), limit);
        }
        let source = classes.remove("source").expect("default");
        let login = classes.remove("login").expect("default");
        BudgetConfig {
            classes,
            source,
            login,
        }
    }

    pub(super) fn policy(
        &mut self,
        f: &FileConfig,
        portals: &[PortalConfig],
        budgets: &BudgetConfig,
        fresh_factor: Duration,
    ) -> PolicyConfig {
        let zone = zone_named(&f.policy.time_zone).unwrap_or_else(|e| {
            self.err(
                "policy.time_zone",
                format!("unknown time zone `{}`: {e}", f.policy.time_zone),
                "use an IANA name such as \"Europe/Paris\", or \"system\"",
            );
            jiff::tz::TimeZone::UTC
        });
        let mut rules = Vec::new();
        for (i, r) in f.rule.iter().enumerate() {
            rules.push(self.rule(i, r, portals, budgets));
        }
        let mut packs = Vec::new();
        for (i, p) in f.privileged.iter().enumerate() {
            let key = format!("privileged[{i}]");
            if p.groups.is_empty() {
                self.err(
                    &format!("{key}.groups"),
                    "no group named",
                    "list the privileged groups, e.g. [\"admin\"]",
                );
            }
            let on_excess = match p.on_excess.as_str() {
                "revoke_oldest" => Excess::RevokeOldest,
                "refuse" => Excess::Refuse,
                other => {
                    self.err(
                        &format!("{key}.on_excess"),
                        format!("unknown `{other}`"),
                        "use \"revoke_oldest\" or \"refuse\"",
                    );
                    Excess::RevokeOldest
                }
            };
            if !(p.budget_scale > 0.0 && p.budget_scale <= 1.0) {
                self.err(&format!("{key}.budget_scale"), format!("{} is out of range", p.budget_scale), "a privileged pack tightens budgets: use a factor above 0 and at most 1, e.g. 0.25");
            }
            let networks = self.networks(&format!("{key}.networks"), &p.networks);
            let window = self.window(&key, p.hours.as_deref(), &p.days);
            packs.push(Pack {
                name: p.name.clone(),
                groups: p.groups.clone(),
                level: level(self, &format!("{key}.level"), &p.level),
                idle_timeout: p.idle_timeout_minutes.map(|m| {
                    Duration::from_secs(
                        self.range(&format!("{key}.idle_timeout_minutes"), m, 1, 24 * 60, "") * 60,
                    )
                }),
                absolute_timeout: p.absolute_timeout_hours.map(|h| {
                    Duration::from_secs(
                        self.range(&format!("{key}.absolute_timeout_hours"), h, 1, 24 * 7, "")
                            * 3600,
                    )
                }),
                max_sessions: p
                    .max_sessions
                    .map(|n| self.range(&format!("{key}.max_sessions"), n, 1, 1000, "") as usize),
                on_excess,
                budget_scale: p.budget_scale,
                networks,
                window,
                export_within: self.range(
                    &format!("{key}.export_within_minutes"),
                    p.export_within_minutes,
                    1,
                    24 * 60,
                    "",
                ) * 60,
            });
        }
        let b = &f.break_glass;
        if !(1.0..=1000.0).contains(&b.budget_scale) {
            self.err(
                "break_glass.budget_scale",
                format!("{} is out of range", b.budget_scale),
                "use a factor from 1 to 1000",
            );
        }
        let break_glass = BreakGlass {
            duration: Duration::from_secs(
                self.range(
                    "break_glass.duration_minutes",
                    b.duration_minutes,
                    5,
                    24 * 60,
                    "",
                ) * 60,
            ),
            budget_scale: b.budget_scale,
            fresh: self.range("break_glass.fresh_minutes", b.fresh_minutes, 1, 60, "") * 60,
        };
        let config = PolicyConfig {
            fresh_factor: fresh_factor.as_secs(),
            rules,
            packs,
            zone,
            break_glass,
        };
        for warning in crate::policy::lint::shadowed(&config.rules) {
            self.warnings.push(warning);
        }
        config
    }

    fn rule(
        &mut self,
        i: usize,
        r: &RuleSection,
        portals: &[PortalConfig],
        budgets: &BudgetConfig,
    ) -> Rule {
        let key = format!("rule[{i}]");
        for (j, p) in r.portals.iter().enumerate() {
            if !portals.iter().any(|x| &x.name == p) {
                self.err(
                    &format!("{key}.portals[{j}]"),
                    format!("no portal is named `{p}`"),
                    "use the `name` of a [[portal]]",
                );
            }
        }
        let case_insensitive = portals
            .iter()
            .filter(|p| r.portals.is_empty() || r.portals.contains(&p.name))
            .any(|p| p.case_insensitive_paths);
        let mut errs = Vec::new();
        let matcher = matcher(
            &key,
            r.path.as_deref(),
            r.path_regex.as_deref(),
            &r.methods,
            &r.query,
            case_insensitive,
            &mut |k, m, h| errs.push((k.to_string(), m, h.to_string())),
        );
        for (k, m, h) in errs {
            self.err(&k, m, h);
        }
        if let Some(b) = &r.budget {
            if !budgets.classes.contains_key(b) {
                let known: Vec<&String> = budgets.classes.keys().collect();
                self.err(
                    &format!("{key}.budget"),
                    format!("no budget class `{b}`"),
                    format!("add [budgets.{b}] or use one of {known:?}"),
                );
            }
        }
        if r.break_glass && !r.deny {
            self.err(
                &format!("{key}.break_glass"),
                "break_glass lifts a denial, but the rule denies nothing",
                "add deny = true, or remove break_glass",
            );
        }
        let level = r
            .level
            .as_deref()
            .map(|l| level(self, &format!("{key}.level"), l));
        let within = r
            .within_minutes
            .map(|m| self.range(&format!("{key}.within_minutes"), m, 1, 24 * 60, "") * 60);
        if within.is_some() && level.is_none_or(|l| l < AuthLevel::SecondFactor) {
            self.err(
                &format!("{key}.within_minutes"),
                "a step-up window needs a factor level",
                "add level = \"second_factor\" or \"phishing_resistant\"",
            );
        }
        Rule {
            name: r.name.clone(),
            portals: r.portals.clone(),
            hosts: r.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            matcher,
            groups: r.groups.clone(),
            networks: self.networks(&format!("{key}.networks"), &r.networks),
            window: self.window(&key, r.hours.as_deref(), &r.days),
            outcome: Outcome {
                level,
                within,
                budget: r.budget.clone(),
                deny: r.deny,
                break_glass: r.break_glass,
            },
        }
    }

    pub(super) fn static_groups(
        &mut self,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> std::collections::HashMap<String, Vec<String>> {
        let mut by_user: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (group, users) in groups {
            for u in users {
                by_user.entry(u.clone()).or_default().push(group.clone());
            }
        }
        by_user
    }
}

/// The compiled policy's decisions, from configuration text (the policy itself reads no
/// configuration type).
#[cfg(test)]
mod tests;

/// The hospital's time zone: an IANA name, or `system`.
pub(super) fn zone_named(name: &str) -> Result<jiff::tz::TimeZone, jiff::Error> {
    match name {
        "system" => Ok(jiff::tz::TimeZone::system()),
        name => jiff::tz::TimeZone::get(name),
    }
}
