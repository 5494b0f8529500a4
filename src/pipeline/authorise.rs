//! Stage 4, authorise: the policy's decision for the request ([`crate::policy`]), the
//! session's level against its requirement, then the budgets ([`crate::budget`]).

use super::identify::Identity;
use super::normalise::Request;
use super::route::Portal;
use crate::budget::gcra::Verdict;
use crate::budget::Budgets;
use crate::config::Config;
use crate::policy::{Decision, Facts};

/// What stage 4 decided.
#[derive(Debug)]
pub enum Outcome {
    Pass(Decision),
    /// Refused by a rule or a privileged pack; `liftable`: a break-glass would lift it.
    Deny {
        decision: Decision,
        liftable: bool,
    },
    /// The session must prove a (fresher, stronger) factor first.
    StepUp(Decision),
    /// Over budget: retry after this many seconds.
    Slow {
        decision: Decision,
        retry_after: u64,
    },
}

/// The facts of a request, from the request and the session.
pub fn facts<'a>(
    portal: &'a Portal,
    request: &'a Request,
    method: &'a str,
    identity: &'a Identity,
    now: u64,
) -> Facts<'a> {
    let s = identity.session().filter(|s| s.is_authenticated());
    Facts {
        host: &request.host,
        method,
        path: portal.config.policy_path(&request.target.path),
        query: request.target.query.as_deref(),
        user: s.and_then(|s| s.user.as_deref()),
        groups: s.map_or(&[], |s| &s.groups[..]),
        ip: request.client.ip,
        now,
        break_glass: s.is_some_and(|s| s.break_glass_active(now)),
    }
}

pub async fn run(
    config: &Config,
    budgets: &Budgets,
    portal: &Portal,
    f: &Facts<'_>,
    identity: &Identity,
) -> Outcome {
    let decision = config
        .policy
        .decide(&portal.config, config.second_factor.required, f);
    if let Some(deny) = &decision.deny {
        let liftable = deny.break_glass && f.user.is_some();
        return Outcome::Deny { decision, liftable };
    }
    if let Some(s) = identity.session().filter(|s| s.is_authenticated()) {
        if !decision.requirement.met_by(s, f.now) {
            return Outcome::StepUp(decision);
        }
    }
    match budgets
        .request(f.user, &decision.budget, decision.budget_scale, f.ip)
        .await
    {
        Verdict::Allow => Outcome::Pass(decision),
        Verdict::Deny { retry_after_us } => Outcome::Slow {
            decision,
            retry_after: retry_after_us.div_ceil(1_000_000).max(1),
        },
    }
}
