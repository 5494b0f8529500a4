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
mod tests;
