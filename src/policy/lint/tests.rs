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
