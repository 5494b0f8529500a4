//! The generic cell rate algorithm: one number of state per key (the theoretical arrival time
//! of the next request). Pure arithmetic in microseconds (milliseconds would cap any key at
//! 1000 requests a second); the stores keep the state.

use crate::config::Limit;

/// A limit as GCRA parameters, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Time between two requests at the sustained rate.
    pub interval: u64,
    /// How far ahead of time a burst may run.
    pub tolerance: u64,
}

impl Rate {
    /// `limit` scaled by `scale` (a privileged pack tightens, break-glass loosens), and
    /// divided between `share` replicas when each must enforce its part alone.
    pub fn new(limit: &Limit, scale: f64, share: u32) -> Rate {
        let share = f64::from(share.max(1));
        let requests = (f64::from(limit.requests) * scale / share).max(1e-3);
        let burst = (f64::from(limit.burst) * scale / share).round().max(1.0);
        let interval = ((limit.period.as_micros() as f64) / requests)
            .ceil()
            .max(1.0) as u64;
        Rate {
            interval,
            tolerance: interval * (burst as u64 - 1),
        }
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refused; the next request fits after this many microseconds.
    Deny {
        retry_after_us: u64,
    },
}

/// Decide at `now` given the stored arrival time (`None`: never seen); returns the verdict
/// and the arrival time to store (unchanged when refused).
pub fn check(tat: Option<u64>, now: u64, rate: Rate) -> (Verdict, u64) {
    let tat = tat.unwrap_or(now).max(now);
    let ahead = tat - now;
    if ahead > rate.tolerance {
        let retry_after_us = ahead - rate.tolerance;
        return (Verdict::Deny { retry_after_us }, tat);
    }
    (Verdict::Allow, tat + rate.interval)
}

#[cfg(test)]
mod tests;
