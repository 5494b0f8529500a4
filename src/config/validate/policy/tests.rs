//! Rule matching, table-driven, including the path and query tricks of threat model 23-26.

use std::net::IpAddr;

use crate::config::Config;
use crate::factors::rules::Requirement;
use crate::identity::session::AuthLevel;
use crate::policy::*;
use crate::testing::SAMPLE_RULES as RULES;

fn config(portal_extra: &str, rules: &str) -> Config {
    crate::testing::sample_portal_config(rules, portal_extra, "")
}

fn facts<'a>(
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    groups: &'a [String],
    ip: &str,
    now: u64,
) -> Facts<'a> {
    Facts {
        host: "ehr.local",
        method,
        path,
        query,
        user: Some("alice"),
        groups,
        ip: ip.parse::<IpAddr>().unwrap(),
        now,
        break_glass: false,
    }
}

/// Monday 2026-11-23, 10:00 in Paris.
const MONDAY_10: u64 = 1_795_424_400;

fn decide(c: &Config, f: &Facts) -> Decision {
    c.policy.decide(&c.portals[0].policy_view(f), true, f)
}

#[test]
fn normalisation_bypasses_meet_the_admin_rule_or_are_refused() {
    let c = config("case_insensitive_paths = true", RULES);
    // Each spelling is read as the admin path and meets the rule: none may be refused (a
    // refusal here would hide the spelling from the rule), none may miss it.
    for raw in [
        "/admin/users",
        "//admin/users",
        "/ADMIN/users",
        "/%61dmin/users",
        "/admin;x/users",
        "/pub/%2e%2e/admin/users",
        "/admin/x/..;/users",
        "http://ehr.local/admin/users",
    ] {
        let t = crate::http::normalise_target(raw)
            .unwrap_or_else(|e| panic!("{raw} refused by normalisation: {e:?}"));
        let d = decide(
            &c,
            &facts(
                "GET",
                &t.path,
                t.query.as_deref(),
                &[],
                "10.0.0.1",
                MONDAY_10,
            ),
        );
        assert_eq!(d.rule.as_deref(), Some("admin-area"), "{raw} -> {}", t.path);
        assert!(d.deny.is_some(), "{raw}");
    }
    for refused in [
        "/%2561dmin/users",
        "/admin%2fusers",
        "\\admin\\users",
        "/%c0%afadmin",
    ] {
        assert!(crate::http::normalise_target(refused).is_err(), "{refused}");
    }
}

#[test]
fn query_tricks_are_classified_as_the_portal_reads_them() {
    let c = config("", RULES);
    let none: [String; 0] = [];
    for (query, export) in [
        ("m=dPpatients&raw=ajax_export_patients_csv", true),
        ("raw=ajax%5Fexport%5Fpatients%5Fcsv", true),
        ("raw=view&raw=ajax_export_patients_csv", true),
        ("raw=ajax_export_patients_csv&raw=view", false),
        ("RAW=ajax_export_patients_csv", false),
        ("raw[]=ajax_export_patients_csv", false),
    ] {
        let d = decide(
            &c,
            &facts(
                "GET",
                "/index.php",
                Some(query),
                &none,
                "10.0.0.1",
                MONDAY_10,
            ),
        );
        assert_eq!(d.rule.as_deref() == Some("export"), export, "{query}");
        assert_eq!(
            d.budget == "export",
            export,
            "{query}: the profile's class agrees"
        );
        if export {
            assert_eq!(
                d.requirement,
                Requirement {
                    level: AuthLevel::PhishingResistant,
                    within: Some(300)
                }
            );
        }
    }
}

#[test]
fn methods_hours_networks_and_defaults() {
    let c = config("", RULES);
    let none: [String; 0] = [];
    // HEAD is GET for matching; POST at night is denied, liftable by break-glass.
    let head = decide(
        &c,
        &facts(
            "HEAD",
            "/index.php",
            Some("raw=ajax_export_patients_csv"),
            &none,
            "10.0.0.1",
            MONDAY_10,
        ),
    );
    assert_eq!(head.rule.as_deref(), Some("export"));
    let night = MONDAY_10 + 12 * 3600;
    let post = decide(
        &c,
        &facts("POST", "/index.php", None, &none, "10.0.0.1", night),
    );
    assert_eq!(
        post.deny,
        Some(Denial {
            by: "no-writes-from-outside".into(),
            break_glass: true
        })
    );
    let day = decide(
        &c,
        &facts("POST", "/index.php", None, &none, "10.0.0.1", MONDAY_10),
    );
    assert_eq!(day.deny, None);
    assert_eq!(day.rule, None, "no rule: the defaults");
    assert_eq!(day.requirement, Requirement::SECOND_FACTOR);
    assert_eq!(day.budget, "view");
    let mut glass = facts("POST", "/index.php", None, &none, "10.0.0.1", night);
    glass.break_glass = true;
    let lifted = decide(&c, &glass);
    assert_eq!(lifted.deny, None, "break-glass lifts a liftable denial");
    assert_eq!(lifted.budget_scale, 10.0);
    let mut admin = facts("GET", "/admin/x", None, &none, "10.0.0.1", MONDAY_10);
    admin.break_glass = true;
    assert!(decide(&c, &admin).deny.is_some(), "but not a hard one");
    let public = decide(
        &c,
        &facts(
            "GET",
            "/static/bench-1k.txt",
            None,
            &none,
            "10.0.0.1",
            MONDAY_10,
        ),
    );
    assert_eq!(public.requirement.level, AuthLevel::None);
    assert_eq!(public.budget, "file");
}

#[test]
fn privileged_packs_tighten_everything() {
    let pack = r#"
[[privileged]]
name = "admins"
groups = ["admin"]
networks = ["10.20.0.0/16"]
hours = "07:00-20:00"
days = ["mon", "tue", "wed", "thu", "fri"]
export_within_minutes = 2
"#;
    let c = config("", pack);
    let admin = vec!["admin".to_string()];
    let inside = decide(
        &c,
        &facts("GET", "/index.php", None, &admin, "10.20.1.1", MONDAY_10),
    );
    assert_eq!(inside.pack.as_deref(), Some("admins"));
    assert_eq!(
        inside.requirement.level,
        AuthLevel::PhishingResistant,
        "passkey by default"
    );
    assert_eq!(inside.budget_scale, 0.25);
    assert_eq!(inside.deny, None);
    let export = decide(
        &c,
        &facts(
            "GET",
            "/index.php",
            Some("raw=ajax_export_patients_csv"),
            &admin,
            "10.20.1.1",
            MONDAY_10,
        ),
    );
    assert_eq!(
        export.requirement.within,
        Some(120),
        "exports behind a fresh step-up"
    );
    let outside = decide(
        &c,
        &facts("GET", "/index.php", None, &admin, "192.0.2.1", MONDAY_10),
    );
    assert_eq!(
        outside.deny,
        Some(Denial {
            by: "privileged:admins".into(),
            break_glass: true
        })
    );
    let sunday = decide(
        &c,
        &facts(
            "GET",
            "/index.php",
            None,
            &admin,
            "10.20.1.1",
            MONDAY_10 - 86_400,
        ),
    );
    assert!(sunday.deny.is_some(), "outside working days");
    let nurse = vec!["nurse".to_string()];
    let other = decide(
        &c,
        &facts("GET", "/index.php", None, &nurse, "192.0.2.1", MONDAY_10),
    );
    assert_eq!((other.pack, other.deny), (None, None));
}

#[test]
fn a_rule_for_some_portals_or_hosts_applies_there_only() {
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let lab = format!(
        "hosts = [\"ehr.local\"]\n\n[[portal]]\nname = \"lab\"\nhosts = [\"lab.local\"]\nupstream = \"127.0.0.1:2\"\nprofile = \"{}\"\n",
        profile.display()
    );
    let rules = "[[rule]]\nname = \"lab-only\"\nportals = [\"lab\"]\npath = \"/results/**\"\ndeny = true\n\n[[rule]]\nname = \"by-host\"\nhosts = [\"EHR.local\"]\npath = \"/hosted\"\ndeny = true\n";
    let c = config(&lab, rules);
    let none: [String; 0] = [];
    let on = |portal: usize, host: &'static str, path: &'static str| {
        let mut f = facts("GET", path, None, &none, "10.0.0.1", MONDAY_10);
        f.host = host;
        let by = c
            .policy
            .decide(&c.portals[portal].policy_view(&f), true, &f)
            .deny;
        by.map(|d| d.by)
    };
    assert_eq!(
        on(1, "lab.local", "/results/1").as_deref(),
        Some("lab-only")
    );
    assert_eq!(on(0, "ehr.local", "/results/1"), None, "another portal");
    assert_eq!(
        on(0, "ehr.local", "/hosted").as_deref(),
        Some("by-host"),
        "host names are read without case"
    );
    assert_eq!(on(1, "lab.local", "/hosted"), None, "another host");
}
