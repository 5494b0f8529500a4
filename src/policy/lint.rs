//! Rules that can never decide anything: an earlier rule takes every request they would
//! (first match wins). Conservative: a rule is reported only when containment is certain.

use super::Rule;

/// One warning per shadowed rule, naming the rule that shadows it.
pub fn shadowed(rules: &[Rule]) -> Vec<String> {
    let mut out = Vec::new();
    for (j, later) in rules.iter().enumerate() {
        if let Some((i, earlier)) = rules[..j]
            .iter()
            .enumerate()
            .find(|(_, e)| covers(e, later))
        {
            out.push(format!(
                "rule[{j}] `{}` is never reached: rule[{i}] `{}` comes first and takes every request it would match; move it above, or narrow rule[{i}]",
                later.name, earlier.name
            ));
        }
    }
    out
}

fn subset<T: PartialEq>(narrow: &[T], wide: &[T]) -> bool {
    wide.is_empty() || (!narrow.is_empty() && narrow.iter().all(|x| wide.contains(x)))
}

/// Whether `wide` matches every request `narrow` matches.
fn covers(wide: &Rule, narrow: &Rule) -> bool {
    subset(&narrow.portals, &wide.portals)
        && subset(&narrow.hosts, &wide.hosts)
        && narrow.matcher.within(&wide.matcher)
        && subset(&narrow.groups, &wide.groups)
        && subset(&narrow.networks, &wide.networks)
        && (wide.window.is_none() || wide.window == narrow.window)
}

#[cfg(test)]
mod tests {
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
}
