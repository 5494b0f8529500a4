//! Stage 4, authorise: the policy's decision for the request ([`crate::policy`]), the
//! session's level against its requirement, then the budgets ([`crate::budget`]); again once a
//! form body is read; and the budgets of login attempts.

use pingora::Result;

use super::identify::Identity;
use super::normalise::Request;
use super::refusal::{Reason, Refusal};
use super::route::Portal;
use super::{Gateway, RequestCtx};
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
    let view = portal.config.policy_view(f);
    let decision = config
        .policy
        .decide(&view, config.second_factor.required, f);
    if let Some(deny) = &decision.deny {
        let liftable = deny.break_glass && f.user.is_some();
        return Outcome::Deny { decision, liftable };
    }
    if let Some(s) = identity.session().filter(|s| s.is_authenticated()) {
        // The SOC's step-up holds even in break-glass: an analyst asked for it knowingly.
        if s.proof_wanted() || !decision.requirement.met_by(s, f.now) {
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

/// Login attempts are budgeted per source (every login POST made before the password, whatever
/// its body, before the portal sees it) and per user name (once the body is read). Fails
/// closed when the shared budget store is down. `Err`: the refusal (it closes the connection:
/// the login's body may be unread).
pub async fn login_allowed(
    budgets: &Budgets,
    ip: Option<std::net::IpAddr>,
    user: Option<&str>,
) -> std::result::Result<(), Refusal> {
    let mut verdict = Ok(Verdict::Allow);
    if let Some(ip) = ip {
        verdict = budgets.login_source(ip).await;
    }
    if let (Ok(Verdict::Allow), Some(user)) = (&verdict, user) {
        verdict = budgets.login_user(user).await;
    }
    match verdict {
        Ok(Verdict::Allow) => Ok(()),
        Ok(Verdict::Deny { retry_after_us }) => {
            // A flood is one entry per source, name and ten seconds, with how many it folds.
            crate::audit::login_refused(user, ip);
            let seconds = retry_after_us.div_ceil(1_000_000);
            Err(Refusal {
                close: true,
                ..Refusal::slowed(Reason::LoginBudget, seconds)
            })
        }
        Err(_) => Err(Refusal::framing(503, Reason::BudgetStoreUnavailable)),
    }
}

impl Gateway {
    /// Stage 4 again once a form body is read: a PHP portal reads routing parameters from
    /// the body as well as the query (`$_REQUEST`, the body winning), so `raw=export` posted in
    /// a form must meet the same rule, requirement and budget as in a URL (threat model 24).
    /// Refused before the portal gets the last byte.
    pub(super) async fn authorise_body(&self, ctx: &mut RequestCtx, method: &str) -> Result<()> {
        // The body as PHP reads it (urlencoded or multipart, any size, its limits), by the one
        // reader; only the names rules and the profile read.
        let Some(reader) = ctx.interception.reader.as_ref() else {
            return Ok(());
        };
        let post = reader.post().clone();
        self.authorise_post(ctx, method, post).await
    }

    /// Stage 4 on the body's parameters `post` (all of it, or the part an upload sends on
    /// before its end), the password left out. Each verdict replaces the last: a budget is
    /// charged again only when the decision names another.
    pub(super) async fn authorise_post(
        &self,
        ctx: &mut RequestCtx,
        method: &str,
        mut post: crate::http::Vars,
    ) -> Result<()> {
        let (Some(portal), Some(request), Some(first)) = (
            ctx.portal().cloned(),
            ctx.request().cloned(),
            ctx.decision.clone(),
        ) else {
            return Ok(());
        };
        if let Some(p) = portal.config.profile.as_deref() {
            post.map.remove(p.login.password_field.as_bytes());
        }
        if post.map.is_empty() {
            return Ok(());
        }
        let merged = super::intercept::with_form(request.target.query.as_deref(), &post.to_query());
        let now = self.sessions.now();
        let mut facts = facts(&portal, &request, method, &ctx.identity, now);
        facts.query = Some(&merged);
        let view = portal.config.policy_view(&facts);
        let config = &ctx.live.config;
        let required = config.second_factor.required;
        let again = config.policy.decide(&view, required, &facts);
        if again.deny.is_some() && first.deny.is_none() {
            let liftable =
                again.deny.as_ref().is_some_and(|d| d.break_glass) && facts.user.is_some();
            ctx.decision = Some(again);
            return ctx.refuse(Refusal::denied(liftable, request.target.to_uri()));
        }
        if let Some(s) = ctx.identity.session().filter(|s| s.is_authenticated()) {
            if !again.requirement.met_by(s, now) {
                return ctx.refuse(Refusal::new(401, Reason::SecondFactorRequired));
            }
        }
        if again.budget != first.budget {
            let verdict = self
                .budgets
                .request(
                    facts.user,
                    &again.budget,
                    again.budget_scale,
                    request.client.ip,
                )
                .await;
            if let crate::budget::gcra::Verdict::Deny { retry_after_us } = verdict {
                let seconds = retry_after_us.div_ceil(1_000_000);
                return ctx.refuse(Refusal::slowed(Reason::OverBudget, seconds));
            }
        }
        ctx.decision = Some(again);
        Ok(())
    }

    /// A login attempt seen in the request head: the source's budget, and the user's when the
    /// query names one.
    pub(super) async fn login_attempt(
        &self,
        ip: std::net::IpAddr,
        user: Option<&str>,
    ) -> std::result::Result<(), Refusal> {
        login_allowed(&self.budgets, Some(ip), user).await
    }

    /// A login in a request body, once read: the user's budget, before the portal gets the
    /// last byte (the source's was charged with the head).
    pub(super) async fn login_budget(&self, ctx: &mut RequestCtx, user: &str) -> Result<()> {
        let head_counted = ctx.interception.prelogin_login;
        let ip = ctx.request().map(|r| r.client.ip).filter(|_| !head_counted);
        match login_allowed(&self.budgets, ip, Some(user)).await {
            Ok(()) => Ok(()),
            Err(refusal) => ctx.refuse(refusal),
        }
    }
}

#[cfg(test)]
mod tests;
