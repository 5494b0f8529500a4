//! `vigie explain`: the decision for one described request, and why, for hospital IT.

use std::fmt::Write;

use super::{Decision, Facts};
use crate::identity::session::AuthLevel;

fn level(l: AuthLevel) -> &'static str {
    match l {
        AuthLevel::None => "public",
        AuthLevel::Password => "password",
        AuthLevel::SecondFactor => "second_factor",
        AuthLevel::PhishingResistant => "phishing_resistant",
    }
}

/// A readable account of `d` for `f` on `portal`.
pub fn render(
    portal: &str,
    f: &Facts,
    d: &Decision,
    budget: Option<&crate::config::Limit>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "request   {} {}{} on portal `{portal}` (host {})",
        f.method,
        f.path,
        f.query.map_or(String::new(), |q| format!("?{q}")),
        f.host
    );
    let _ = writeln!(
        out,
        "who       {} groups [{}] from {}",
        f.user.unwrap_or("(anonymous)"),
        f.groups.join(", "),
        f.ip
    );
    let verdict = match &d.deny {
        Some(deny) if deny.break_glass => format!("DENY (by {}; break-glass may lift it)", deny.by),
        Some(deny) => format!("DENY (by {})", deny.by),
        None => "ALLOW".into(),
    };
    let _ = writeln!(out, "decision  {verdict}");
    let _ = writeln!(
        out,
        "rule      {}",
        d.rule.as_deref().unwrap_or("(none matched: defaults)")
    );
    let within = d
        .requirement
        .within
        .map_or(String::new(), |w| format!(", proven within {} min", w / 60));
    let _ = writeln!(out, "requires  {}{within}", level(d.requirement.level));
    let scale = if (d.budget_scale - 1.0).abs() > f64::EPSILON {
        format!(" x{}", d.budget_scale)
    } else {
        String::new()
    };
    let limit = budget.map_or(String::new(), |l| {
        format!(
            ": {} per {} s, burst {}",
            l.requests,
            l.period.as_secs(),
            l.burst
        )
    });
    let _ = writeln!(out, "budget    {}{limit}{scale}", d.budget);
    if let Some(p) = &d.pack {
        let _ = writeln!(out, "privileged pack `{p}` applies");
    }
    out
}
