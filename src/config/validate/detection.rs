//! `[detection]` and `[alerts]`: the detector's thresholds, weights and action bands, and
//! the alert sinks.

use std::time::Duration;

use super::Validator;
use crate::alerts::WebhookSettings;
use crate::alerts::{Facility, SinkSettings, SyslogFormat, SyslogSettings, SyslogTransport};
use crate::config::file::{AlertsSection, DetectionSection};
use crate::config::StorageConfig;
use crate::detect::DetectionConfig;

const SIGNALS: &[&str] = &[
    "honeytoken",
    "patients_short",
    "patients_long",
    "patients_day",
    "patients_week",
    "listed_short",
    "listed_day",
    "enumeration",
    "paging_crawl",
    "oversized_page",
    "exports",
    "machine_timing",
    "fast",
    "scripted_agent",
    "new_network",
    "off_hours",
    "denied",
    "no_assets",
    "volume",
    "step_up_ignored",
];

impl Validator<'_> {
    pub(super) fn detection(&mut self, f: &DetectionSection) -> DetectionConfig {
        let mut d = DetectionConfig {
            enabled: f.enabled,
            ..DetectionConfig::default()
        };
        if !f.enabled {
            self.warnings.push("[detection] enabled = false: bulk exports and enumerations of patient records raise no alert".into());
        }
        d.hold_minutes = self.range(
            "detection.hold_minutes",
            f.hold_minutes,
            1,
            10_080,
            " (up to a week)",
        );
        d.throttle_seconds =
            self.range("detection.throttle_seconds", f.throttle_seconds, 1, 600, "");
        d.warmup_hours = self.range("detection.warmup_hours", f.warmup_hours, 0, 1000, "") as u32;
        d.step_up_refusals = self.range(
            "detection.step_up_refusals",
            f.step_up_refusals,
            1,
            1000,
            "",
        ) as u32;
        d.source_factor = self.positive("detection.source_factor", f.source_factor, 100.0);
        d.default_prior = self.positive("detection.default_prior", f.default_prior, 10_000.0);
        if let Some(hours) = &f.working_hours {
            match crate::policy::window::TimeWindow::parse(hours, &f.working_days) {
                Ok(w) => d.working_hours = Some(w),
                Err(e) => self.err("detection.working_hours", e, "e.g. working_hours = \"07:00-20:00\", working_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]"),
            }
        } else if !f.working_days.is_empty() {
            self.err(
                "detection.working_days",
                "working_days without working_hours",
                "set working_hours too, e.g. \"07:00-20:00\"",
            );
        }
        d.honeytokens = f
            .honeytokens
            .iter()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
        d.shared_networks = self.networks("detection.shared_networks", &f.shared_networks);
        if let Some(agents) = &f.scripted_agents {
            d.scripted_agents = agents.iter().map(|a| a.to_ascii_lowercase()).collect();
        }
        let t = &mut d.thresholds;
        for (name, value) in &f.thresholds {
            let slot = match name.as_str() {
                "short_min" => &mut t.short_min,
                "short_max" => &mut t.short_max,
                "short_factor" => &mut t.short_factor,
                "long_min" => &mut t.long_min,
                "long_max" => &mut t.long_max,
                "long_factor" => &mut t.long_factor,
                "enumeration_run" => &mut t.enumeration_run,
                "crawl_pages" => &mut t.crawl_pages,
                "exports_per_hour" => &mut t.exports_per_hour,
                "denied" => &mut t.denied,
                "megabytes_short" => &mut t.megabytes_short,
                "pages_per_minute" => &mut t.pages_per_minute,
                "regular_timing_cv" => &mut t.regular_timing_cv,
                "no_assets_pages" => &mut t.no_assets_pages,
                "listed_short" => &mut t.listed_short,
                other => {
                    self.err(
                        &format!("detection.thresholds.{other}"),
                        format!("unknown threshold `{other}`"),
                        "see config/reference.toml for the thresholds and their defaults",
                    );
                    continue;
                }
            };
            if !(value.is_finite() && *value > 0.0 && *value <= 1_000_000.0) {
                self.err(
                    &format!("detection.thresholds.{name}"),
                    format!("{value} is out of range"),
                    "use a positive number",
                );
                continue;
            }
            *slot = *value;
        }
        if t.short_min > t.short_max || t.long_min > t.long_max {
            self.err(
                "detection.thresholds",
                "a minimum is above its maximum",
                "keep short_min <= short_max and long_min <= long_max",
            );
        }
        d.weights = self.weights("detection.weights", &f.weights);
        let b = &mut d.bands;
        for (name, v) in &f.actions {
            let slot = match name.as_str() {
                "alert" => &mut b.alert,
                "step_up" => &mut b.step_up,
                "throttle" => &mut b.throttle,
                "suspend" => &mut b.suspend,
                other => {
                    self.err(&format!("detection.actions.{other}"), format!("unknown action `{other}`"), "actions: alert, step_up, throttle, suspend (a score from 1 to 101; 101 = never)");
                    continue;
                }
            };
            match u8::try_from(*v) {
                Ok(v) if (1..=101).contains(&v) => *slot = v,
                _ => self.err(
                    &format!("detection.actions.{name}"),
                    format!("{v} is out of range"),
                    "use a score from 1 to 101 (101 = never)",
                ),
            }
        }
        if !(b.alert <= b.step_up && b.step_up <= b.throttle && b.throttle <= b.suspend) {
            self.err(
                "detection.actions",
                "the bands are out of order",
                "keep alert <= step_up <= throttle <= suspend",
            );
        }
        for (role, prior) in &f.role_priors {
            let v = self.positive(&format!("detection.role_priors.{role}"), *prior, 10_000.0);
            d.role_priors.insert(role.clone(), v);
        }
        d.budgets = self.patient_budgets(&f.budgets);
        d
    }

    fn patient_budgets(
        &mut self,
        f: &crate::config::file::BudgetsSection,
    ) -> crate::detect::settings::Budgets {
        use crate::detect::settings::{Budgets, NormalDay};
        let normal =
            |v: &mut Self, key: &str, s: crate::config::file::NormalDaySection| NormalDay {
                records: v.positive(&format!("{key}.records"), s.records, 1_000_000.0),
                listed: v.positive(&format!("{key}.listed"), s.listed, 1_000_000.0),
            };
        let mut b = Budgets {
            roles: Default::default(),
            default: normal(self, "detection.budgets.default", f.default),
            day_allowance: self.positive(
                "detection.budgets.day_allowance",
                f.day_allowance,
                1_000_000.0,
            ),
            week_allowance: self.positive(
                "detection.budgets.week_allowance",
                f.week_allowance,
                1_000_000.0,
            ),
            week_days: self.positive("detection.budgets.week_days", f.week_days, 7.0),
        };
        if f.roles.is_empty() {
            b.roles = Budgets::default().roles;
        }
        for (role, day) in &f.roles {
            let v = normal(self, &format!("detection.budgets.roles.{role}"), *day);
            b.roles.insert(role.clone(), v);
        }
        b
    }

    fn weights(
        &mut self,
        key: &str,
        given: &std::collections::BTreeMap<String, f64>,
    ) -> std::collections::BTreeMap<String, f64> {
        let mut out = std::collections::BTreeMap::new();
        for (name, w) in given {
            if !SIGNALS.contains(&name.as_str()) {
                self.err(
                    &format!("{key}.{name}"),
                    format!("unknown signal `{name}`"),
                    format!("signals: {}", SIGNALS.join(", ")),
                );
            } else if !(0.0..=1.0).contains(w) {
                self.err(
                    &format!("{key}.{name}"),
                    format!("{w} is out of range"),
                    "use 0 (ignore the signal) to 1 (full weight)",
                );
            } else {
                out.insert(name.clone(), *w);
            }
        }
        out
    }

    /// `[portal.detection]` of each portal, by name.
    pub(super) fn portal_detection(
        &mut self,
        portals: &[crate::config::file::PortalSection],
    ) -> std::collections::BTreeMap<String, crate::detect::settings::PortalDetection> {
        portals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let weights = self.weights(
                    &format!("portal[{i}].detection.weights"),
                    &p.detection.weights,
                );
                let settings = crate::detect::settings::PortalDetection {
                    enabled: p.detection.enabled.unwrap_or(true),
                    weights,
                };
                (p.name.clone(), settings)
            })
            .collect()
    }

    fn positive(&mut self, key: &str, v: f64, max: f64) -> f64 {
        if v.is_finite() && v > 0.0 && v <= max {
            v
        } else {
            self.err(
                key,
                format!("{v} is out of range"),
                format!("use a number above 0, at most {max}"),
            );
            1.0
        }
    }

    pub(super) fn alerts(&mut self, f: &AlertsSection, storage: &StorageConfig) -> SinkSettings {
        let mut s = SinkSettings {
            jsonl: f.jsonl.as_ref().map(|p| self.base.join(p)),
            store: f.store.unwrap_or(true).then(|| storage.database.clone()),
            ..SinkSettings::default()
        };
        let days = self.range(
            "alerts.retention_days",
            f.retention_days.unwrap_or(365),
            0,
            36_500,
            " (0: kept for ever; 180 to 365 suits most retention policies)",
        );
        s.retention = (days > 0).then(|| std::time::Duration::from_secs(days * 86_400));
        if let Some(sys) = &f.syslog {
            let transport = match sys.transport.as_str() {
                "udp" => SyslogTransport::Udp,
                "tcp" => SyslogTransport::Tcp,
                other => {
                    self.err(
                        "alerts.syslog.transport",
                        format!("unknown transport `{other}`"),
                        "use \"udp\" or \"tcp\" (RFC 6587 octet counting)",
                    );
                    SyslogTransport::Udp
                }
            };
            let format = match sys.format.as_str() {
                "json" => SyslogFormat::Json,
                "cef" => SyslogFormat::Cef,
                other => {
                    self.err(
                        "alerts.syslog.format",
                        format!("unknown format `{other}`"),
                        "use \"json\" (ECS) or \"cef\" (ArcSight Common Event Format)",
                    );
                    SyslogFormat::Json
                }
            };
            let facility = Facility::from_name(&sys.facility).unwrap_or_else(|| {
                self.err(
                    "alerts.syslog.facility",
                    format!("unknown facility `{}`", sys.facility),
                    "use auth, authpriv or local0 to local7",
                );
                Facility::Authpriv
            });
            if sys
                .address
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                self.err(
                    "alerts.syslog.address",
                    format!("`{}` is not host:port", sys.address),
                    "e.g. \"siem.hospital.local:514\"",
                );
            }
            s.syslog = Some(SyslogSettings {
                address: sys.address.clone(),
                transport,
                facility,
                format,
                app_name: sys.app_name.clone(),
                ..SyslogSettings::default()
            });
        }
        if let Some(w) = &f.webhook {
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                self.err(
                    "alerts.webhook.url",
                    "the URL is not http(s)",
                    "e.g. \"https://siem.hospital.local/hooks/vigie\"",
                );
            }
            let mut headers = Vec::new();
            for (name, value) in &w.headers {
                let value = match value.strip_prefix("env:") {
                    Some(var) => match std::env::var(var) {
                        Ok(v) => v,
                        Err(_) => {
                            self.err(
                                &format!("alerts.webhook.headers.{name}"),
                                format!("environment variable `{var}` is not set"),
                                "export it before starting Vigie, or write the value",
                            );
                            continue;
                        }
                    },
                    None => value.clone(),
                };
                headers.push((name.clone(), value));
            }
            s.webhook = Some(WebhookSettings {
                url: w.url.clone(),
                headers,
                timeout: Duration::from_secs(self.range(
                    "alerts.webhook.timeout_seconds",
                    w.timeout_seconds,
                    1,
                    300,
                    "",
                )),
                max_attempts: self.range("alerts.webhook.max_attempts", w.max_attempts, 1, 50, "")
                    as u32,
                backoff_base: Duration::from_millis(self.range(
                    "alerts.webhook.backoff_ms",
                    w.backoff_ms,
                    10,
                    60_000,
                    "",
                )),
                ..WebhookSettings::default()
            });
        }
        s
    }
}

#[cfg(test)]
mod tests;
