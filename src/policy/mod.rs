//! Access policy: what a request needs from its session. For now the second-factor
//! requirement and each portal's step-up rules; the rule engine of the policy issue grows
//! here behind the same function, so the pipeline does not change.

use crate::config::{PortalConfig, SecondFactorConfig};
use crate::factors::rules::Requirement;
use crate::identity::session::AuthLevel;

/// Where the gateway's own security settings live; changing factors needs a fresh one.
pub const ACCOUNT_PATH: &str = "/.vigie/account";

/// The requirement for `path` (normalised) and `query` on `portal`.
pub fn requirement(
    portal: &PortalConfig,
    factors: &SecondFactorConfig,
    path: &str,
    query: Option<&str>,
) -> Requirement {
    if !portal.holds_sessions() {
        return Requirement {
            level: AuthLevel::None,
            within: None,
        };
    }
    let mut need = if factors.required {
        Requirement::SECOND_FACTOR
    } else {
        Requirement::PASSWORD
    };
    if path.starts_with(ACCOUNT_PATH) {
        need = need.max(Requirement {
            level: AuthLevel::SecondFactor,
            within: Some(factors.fresh_window.as_secs()),
        });
    }
    for rule in &portal.step_up {
        let query_ok = rule.query.as_ref().is_none_or(|(k, v)| {
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .any(|(qk, qv)| qk == *k && qv == *v)
        });
        if path.starts_with(&rule.path) && query_ok {
            need = need.max(Requirement {
                level: rule.level,
                within: rule.within.map(|d| d.as_secs()),
            });
        }
    }
    need
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, LoginMode, StepUpRule};
    use std::time::Duration;

    fn factors() -> SecondFactorConfig {
        let text = "[[listener]]\naddress = \"127.0.0.1:1\"\n[[portal]]\nname = \"p\"\nupstream = \"127.0.0.1:1\"\n";
        Config::demo_from_toml(std::path::Path::new("t.toml"), text)
            .unwrap()
            .second_factor
    }

    #[test]
    fn second_factor_then_step_up_rules() {
        let sf = factors();
        let mut p = PortalConfig::for_tests("p", &["*"]);
        assert_eq!(
            requirement(&p, &sf, "/", None).level,
            AuthLevel::None,
            "no sessions"
        );
        p.login = LoginMode::Gateway {
            user_header: "X-Remote-User".into(),
            groups_header: "X-Remote-Groups".into(),
        };
        assert_eq!(
            requirement(&p, &sf, "/index.php", None),
            Requirement::SECOND_FACTOR
        );
        p.step_up.push(StepUpRule {
            path: "/index.php".into(),
            query: Some(("raw".into(), "ajax_export_patients_csv".into())),
            level: AuthLevel::SecondFactor,
            within: Some(Duration::from_secs(300)),
        });
        let fresh = Requirement {
            level: AuthLevel::SecondFactor,
            within: Some(300),
        };
        for q in [
            "raw=ajax_export_patients_csv",
            "m=x&raw=ajax_export_patients_csv",
            "raw=other&raw=ajax_export_patients_csv",
            "raw=ajax%5Fexport%5Fpatients%5Fcsv",
        ] {
            assert_eq!(requirement(&p, &sf, "/index.php", Some(q)), fresh, "{q}");
        }
        assert_eq!(
            requirement(&p, &sf, "/index.php", Some("raw=x")),
            Requirement::SECOND_FACTOR
        );
        let account = requirement(&p, &sf, ACCOUNT_PATH, None);
        assert_eq!(account.within, Some(sf.fresh_window.as_secs()));
        let mut off = sf.clone();
        off.required = false;
        assert_eq!(requirement(&p, &off, "/", None), Requirement::PASSWORD);
    }
}
