//! Events an attacker can repeat at will (a login flood refused by its budget) are kept once
//! per source and name and [`QUIET`], with how many were folded into that entry: a flood
//! cannot bury the trail, nor fill its queue. What a quiet time folded is written when it
//! ends (by the writer's rounds), so a last burst is counted too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

pub const QUIET: Duration = Duration::from_secs(10);

/// What was refused, repeatedly: a login over its budget (the name typed), or an admin API call
/// with no token the API accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Refused {
    Login(String),
    AdminToken,
}

struct Fold {
    /// When the last entry was written.
    at: Instant,
    /// Refusals since, not written yet.
    n: u64,
}

/// A fold per refusal and source.
type Folds = HashMap<(Refused, Option<IpAddr>), Fold>;

static FOLDS: Lazy<Mutex<Folds>> = Lazy::new(Default::default);

/// A login refused by its budget: an audit entry, or one more folded into the next.
pub fn login_refused(user: Option<&str>, client: Option<IpAddr>) {
    let what = Refused::Login(super::typed_name(user.unwrap_or("-")).to_string());
    if let Some(folded) = fold_at(&what, client, Instant::now()) {
        say(&what, client, folded);
    }
}

/// A call to the admin API without a token it knows: the same folding (someone guessing tokens
/// is seen, a flood does not fill the trail).
pub fn admin_token_refused(client: Option<IpAddr>) {
    if let Some(folded) = fold_at(&Refused::AdminToken, client, Instant::now()) {
        say(&Refused::AdminToken, client, folded);
    }
}

fn say(what: &Refused, client: Option<IpAddr>, folded: u64) {
    let client = client.map(tracing::field::display);
    match what {
        Refused::Login(user) => {
            tracing::warn!(target: "vigie::audit", event = "login", outcome = "login_budget", user = %user, client, folded)
        }
        Refused::AdminToken => {
            tracing::warn!(target: "vigie::audit", event = "admin_refused", reason = "no_token_accepted", client, folded, by = "admin_api")
        }
    }
}

/// `Some(n)` when an entry is due (`n` folded since the last one), `None` when this refusal
/// is folded into the next.
pub(super) fn fold_at(what: &Refused, client: Option<IpAddr>, now: Instant) -> Option<u64> {
    let mut folds = FOLDS.lock().unwrap_or_else(|e| e.into_inner());
    match folds.get_mut(&(what.clone(), client)) {
        Some(f) if now.duration_since(f.at) < QUIET => {
            f.n += 1;
            None
        }
        Some(f) => {
            f.at = now;
            Some(std::mem::take(&mut f.n))
        }
        None => {
            folds.insert((what.clone(), client), Fold { at: now, n: 0 });
            Some(0)
        }
    }
}

/// At a writer's round: the folds whose quiet time is over, written now (what, client, how
/// many); the idle ones forgotten.
pub(super) fn due_at(now: Instant) -> Vec<(Refused, Option<IpAddr>, u64)> {
    let mut folds = FOLDS.lock().unwrap_or_else(|e| e.into_inner());
    let mut due = Vec::new();
    folds.retain(|(what, client), f| {
        if now.duration_since(f.at) < QUIET {
            return true;
        }
        if f.n == 0 {
            return false;
        }
        due.push((what.clone(), *client, std::mem::take(&mut f.n)));
        f.at = now;
        true
    });
    due
}

/// Write what the quiet times that ended folded.
pub(super) fn write_due() {
    for (what, client, n) in due_at(Instant::now()) {
        say(&what, client, n);
    }
}
