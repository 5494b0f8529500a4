//! The server-side session: who, how well proven, since when, and the vaulted portal cookies.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::token::SessionId;
use super::vault::VaultedCookie;

/// How well the person behind a session has proven who they are. Ordered: higher is stronger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuthLevel {
    /// No login yet: the session only holds the portal's pre-login cookies.
    None,
    /// The portal accepted the password.
    Password,
    /// A second factor (TOTP, recovery code) was proven.
    SecondFactor,
    /// A phishing-resistant factor (WebAuthn) was proven.
    PhishingResistant,
}

impl AuthLevel {
    pub fn label(self) -> &'static str {
        match self {
            AuthLevel::None => "none",
            AuthLevel::Password => "password",
            AuthLevel::SecondFactor => "second_factor",
            AuthLevel::PhishingResistant => "phishing_resistant",
        }
    }
}

/// One session, as every replica sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    #[serde(skip, default = "placeholder_id")]
    pub id: SessionId,
    pub portal: String,
    /// `None` until the portal accepts a login.
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub level: AuthLevel,
    /// Unix seconds at which the password, and a second factor, were last proven.
    pub password_at: Option<u64>,
    pub second_factor_at: Option<u64>,
    /// When a passkey was last proven in this session (step-up to phishing-resistant).
    #[serde(default)]
    pub phishing_resistant_at: Option<u64>,
    /// When a factor the user already had was last proven here (unix µs): what a detector
    /// step-up asks for. Finer than the seconds above, so a proof given within the second
    /// the step-up began still counts; an enrollment never sets it (a stolen session could
    /// bind its own factor).
    #[serde(default)]
    pub proof_at_us: Option<i64>,
    /// A SOC analyst asked this session for a new proof of a factor (unix µs): it goes on once
    /// `proof_at_us` is past this. Kept in the record, so every replica asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_wanted_after_us: Option<i64>,
    /// How the last second factor was proven (`totp`, `passkey`, `recovery`, `enroll`):
    /// a recovery code gets the user in, but does not let them change their factors.
    #[serde(default)]
    pub factor_method: Option<String>,
    /// The last proof was of the user's strongest kind when it was given (a passkey, or the
    /// app of a user without passkeys): fixed then, so removing the stronger factors later
    /// does not raise what this session may change.
    #[serde(default)]
    pub strongest_proof: bool,
    /// A session opened with a recovery code made its one replacement factor: it changes
    /// nothing more (see [`crate::factors::rules::factor_rights`]) until a new proof.
    #[serde(default)]
    pub lost_replaced: bool,
    /// When this session passed the enrollment proof (invitation or trusted network).
    #[serde(default)]
    pub enroll_proof_at: Option<u64>,
    /// The invitation was a reset: the user's old factors go when the new one is bound.
    #[serde(default)]
    pub reset_pending: bool,
    /// A TOTP secret being enrolled, sealed: it becomes a factor once a code from it is typed.
    #[serde(default)]
    pub pending_totp: Option<Vec<u8>>,
    /// New recovery codes, sealed, until the user says they kept them (or a while after the
    /// page first showed them: see [`crate::pipeline`]'s codes page).
    #[serde(default)]
    pub fresh_codes: Option<Vec<u8>>,
    /// When the codes page first showed them (unix seconds).
    #[serde(default)]
    pub codes_shown_at: Option<u64>,
    /// Break-glass: until when (unix seconds), and the reason the user wrote.
    #[serde(default)]
    pub break_glass_until: Option<u64>,
    #[serde(default)]
    pub break_glass_reason: Option<String>,
    /// The audit record of this break-glass (its id), which its end names for the review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass_record: Option<String>,
    /// Where a shared store keeps the vault and the break-glass reason, sealed (see
    /// [`crate::storage::redis::sessions`]); `None` in a live record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// A privileged pack applies (such sessions get no outage grace).
    #[serde(default)]
    pub privileged: bool,
    /// A privileged pack's shorter timeouts (seconds), when one applies.
    #[serde(default)]
    pub idle_limit: Option<u64>,
    #[serde(default)]
    pub absolute_limit: Option<u64>,
    pub created: u64,
    pub last_seen: u64,
    pub client_ip: IpAddr,
    pub user_agent: String,
    pub vault: Vec<VaultedCookie>,
    /// Bumped by the store at every write: a write-back applies only to the version it read,
    /// so a stale copy never overwrites a newer one (or brings an ended session back).
    #[serde(default)]
    pub version: u64,
}

fn placeholder_id() -> SessionId {
    SessionId([0; 32])
}

/// Session lifetimes, from config.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
    /// Pre-login sessions (vault only) live briefly: they exist for the login form.
    pub anonymous: Duration,
}

impl SessionRecord {
    /// A fresh record with a new id: the one place every field starts from.
    pub fn new(
        portal: &str,
        user: Option<String>,
        level: AuthLevel,
        client_ip: IpAddr,
        user_agent: String,
        vault: Vec<VaultedCookie>,
        now: u64,
    ) -> Self {
        SessionRecord {
            id: SessionId::random(),
            portal: portal.to_string(),
            password_at: (level >= AuthLevel::Password && user.is_some()).then_some(now),
            user,
            groups: Vec::new(),
            level,
            second_factor_at: None,
            phishing_resistant_at: None,
            proof_at_us: None,
            proof_wanted_after_us: None,
            break_glass_record: None,
            factor_method: None,
            lost_replaced: false,
            strongest_proof: false,
            enroll_proof_at: None,
            reset_pending: false,
            pending_totp: None,
            fresh_codes: None,
            codes_shown_at: None,
            break_glass_until: None,
            break_glass_reason: None,
            sealed: None,
            privileged: false,
            idle_limit: None,
            absolute_limit: None,
            created: now,
            last_seen: now,
            client_ip,
            user_agent,
            vault,
            version: 0,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.level > AuthLevel::None && self.user.is_some()
    }

    /// Whether the session has timed out at `now` (unix seconds).
    pub fn expired(&self, now: u64, life: &Lifetimes) -> bool {
        if !self.is_authenticated() {
            return now.saturating_sub(self.created) >= life.anonymous.as_secs();
        }
        let idle = self.idle_limit.unwrap_or(life.idle.as_secs());
        let absolute = self.absolute_limit.unwrap_or(life.absolute.as_secs());
        now.saturating_sub(self.last_seen) >= idle || now.saturating_sub(self.created) >= absolute
    }

    /// Whether the session is in break-glass at `now`.
    pub fn break_glass_active(&self, now: u64) -> bool {
        self.break_glass_until.is_some_and(|t| now < t)
    }

    /// The SOC asked for a new proof and none was given since.
    pub fn proof_wanted(&self) -> bool {
        self.proof_wanted_after_us
            .is_some_and(|after| self.proof_at_us.unwrap_or(0) < after)
    }
}

/// The time source, injectable so timeouts are tested without sleeping.
pub trait Clock: Send + Sync {
    /// Unix seconds.
    fn now(&self) -> u64;
    /// Unix microseconds (budgets need sub-second time).
    fn now_us(&self) -> u64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        self.now_us() / 1_000_000
    }
    fn now_us(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
}

/// A clock tests move by hand (microsecond resolution).
#[derive(Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// At unix second `t`.
    pub fn at(t: u64) -> Self {
        Self(AtomicU64::new(t * 1_000_000))
    }
    /// Jump to unix microsecond `us` (the simulator's timeline).
    pub fn set_us(&self, us: u64) {
        self.0.store(us, Ordering::SeqCst);
    }
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now_us() / 1_000_000
    }
    fn now_us(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
pub(crate) fn record(user: Option<&str>, level: AuthLevel, now: u64) -> SessionRecord {
    SessionRecord::new(
        "p",
        user.map(str::to_string),
        level,
        IpAddr::from([127, 0, 0, 1]),
        String::new(),
        vec![],
        now,
    )
}

#[cfg(test)]
mod tests;
