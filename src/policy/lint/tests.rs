use super::*;
use crate::policy::matcher::{Matcher, PathPattern, QueryCondition};
use crate::policy::Outcome;

fn rule(name: &str, path: Option<&str>, query: &[(&str, &str)], groups: &[&str]) -> Rule {
    Rule {
        name: name.into(),
        portals: vec![],
        hosts: vec![],
        matcher: Matcher {
            path: path.map_or(PathPattern::Any, |p| PathPattern::glob(p, false).unwrap()),
            methods: vec![],
            query: query
                .iter()
                .map(|(k, v)| QueryCondition::new(k, v))
                .collect(),
        },
        groups: groups.iter().map(|g| g.to_string()).collect(),
        networks: vec![],
        window: None,
        outcome: Outcome::default(),
    }
}

#[test]
fn a_broad_rule_first_shadows_the_narrow_one() {
    let rules = vec![
        rule("all-index", Some("/index.php"), &[], &[]),
        rule(
            "export",
            Some("/index.php"),
            &[("raw", "ajax_export*")],
            &["admin"],
        ),
        rule("api", Some("/api/**"), &[], &[]),
    ];
    let w = shadowed(&rules);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("rule[1] `export`") && w[0].contains("rule[0] `all-index`"));
    // In the right order nothing is shadowed.
    let ok = vec![rules[1].clone(), rules[0].clone(), rules[2].clone()];
    assert!(shadowed(&ok).is_empty());
    // A group-limited rule does not shadow one for everybody.
    let g = vec![
        rule("admins", None, &[], &["admin"]),
        rule("all", None, &[], &[]),
    ];
    assert!(shadowed(&g).is_empty());
}

#[test]
fn a_rule_for_some_hours_shadows_only_a_rule_for_the_same_hours() {
    let at = |name: &str, hours: Option<&str>| Rule {
        window: hours.map(|h| crate::policy::window::TimeWindow::parse(h, &[]).unwrap()),
        ..rule(name, Some("/index.php"), &[], &[])
    };
    let night = || at("night", Some("20:00-07:00"));
    // At night only: the all-day rule after it still decides by day.
    assert!(shadowed(&[night(), at("always", None)]).is_empty());
    // The same hours, or a narrower rule after one for all hours: never reached.
    assert_eq!(
        shadowed(&[night(), at("night-too", Some("20:00-07:00"))]).len(),
        1
    );
    assert_eq!(shadowed(&[at("always", None), night()]).len(), 1);
    // Other hours are not covered.
    assert!(shadowed(&[night(), at("day", Some("08:00-18:00"))]).is_empty());
}
