//! `vigie explain`: the decision for one described request, and why, for hospital IT.

use std::fmt::Write;

use vigie::config::Config;
use vigie::identity::session::AuthLevel;
use vigie::policy::{Decision, Facts};

/// A request as `vigie explain` describes it.
pub struct Described<'a> {
    pub method: &'a str,
    /// A path with its query, or a full URL (whose host picks the portal).
    pub url: &'a str,
    pub user: Option<&'a str>,
    pub groups: &'a [String],
    pub ip: std::net::IpAddr,
    /// Unix seconds.
    pub now: u64,
    pub break_glass: bool,
}

/// `--time`: RFC 3339 or unix seconds.
pub fn parse_time(t: &str) -> Option<u64> {
    t.parse::<u64>().ok().or_else(|| {
        t.parse::<jiff::Timestamp>()
            .ok()
            .map(|ts| ts.as_second() as u64)
    })
}

/// The decision for a described request, as the gateway would take it: the target is
/// normalised first, the portal chosen by host, the path read through the profile.
pub fn explain(config: &Config, r: &Described) -> String {
    let target = match vigie::http::normalise_target(r.url) {
        Ok(t) => t,
        Err(e) => {
            return format!(
                "decision  REFUSED before policy: `{}` is not a request target the gateway accepts ({e:?})\n",
                r.url
            )
        }
    };
    let host = target
        .authority
        .as_deref()
        .map(|a| a.split(':').next().unwrap_or(a).to_string())
        .unwrap_or_else(|| "*".into());
    let router = vigie::pipeline::route::Router::new(&config.portals);
    let Some(portal) = router.select(&host) else {
        return format!("decision  REFUSED: no portal answers for host `{host}` (404)\n");
    };
    let facts = Facts {
        host: &host,
        method: r.method,
        path: portal.config.policy_path(&target.path),
        query: target.query.as_deref(),
        user: r.user,
        groups: r.groups,
        ip: r.ip,
        now: r.now,
        break_glass: r.break_glass,
    };
    let view = portal.config.policy_view(&facts);
    let decision = config
        .policy
        .decide(&view, config.second_factor.required, &facts);
    let limit = config.budgets.classes.get(&decision.budget);
    let mut out = render(&portal.config.name, &facts, &decision, limit);
    if let Some(profile) = &portal.config.profile {
        out.push_str(&pre_login(profile, r.method, &target));
    }
    out
}

/// What the pre-login wall answers the same request from someone not yet past the password.
fn pre_login(
    profile: &vigie::config::PortalProfile,
    method: &str,
    target: &vigie::http::Target,
) -> String {
    let query = target.query.as_deref();
    let answer = if method == profile.login.method && target.path == profile.login.path {
        "the portal's login request: counted as a login attempt, read strictly (a plain form of the profile's fields), its answer judged by the profile".to_string()
    } else if profile
        .prelogin
        .allows(profile.query_reading, method, &target.path, query)
    {
        "reaches the portal (on the profile's [prelogin] allowlist)".to_string()
    } else if matches!(method, "GET" | "HEAD") {
        format!(
            "sign-in wall: 303 to `{}`, the portal never sees it",
            profile.prelogin.login_page
        )
    } else {
        "sign-in wall: 401, the portal never sees it".to_string()
    };
    format!("pre-login {answer}\n")
}

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
    budget: Option<&vigie::config::Limit>,
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
