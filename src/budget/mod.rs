//! Budgets: GCRA limits per identity and endpoint class, per source address, and on login
//! attempts per user name and per source. In process (embedded) or in Redis (one atomic
//! script per check, so a budget holds across replicas and restarts). When Redis is
//! unreachable, requests fall back to a per-replica share of each budget and the gateway
//! says so (`/readyz`, metrics, an alert in the log); login budgets fail closed instead.

pub mod gcra;
pub mod lease;
pub mod memory;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::{BudgetConfig, Limit};
use crate::identity::session::Clock;
use crate::metrics::METRICS;
use crate::storage::redis::sessions::RedisStore;
use gcra::{Rate, Verdict};
use memory::MemoryBudgets;

/// After a Redis failure, the fallback is used this long (µs) before Redis is tried again, so an
/// outage does not add a timeout to every request.
const RETRY_REDIS_US: u64 = 1_000_000;

/// A budget could not be checked and the caller must fail closed (logins during an outage).
#[derive(Debug, thiserror::Error)]
#[error("the shared budget store is unavailable")]
pub struct Unavailable;

pub struct Budgets {
    /// Swapped whole by a reload; the counts in memory and Redis are kept.
    config: arc_swap::ArcSwap<BudgetConfig>,
    memory: MemoryBudgets,
    redis: Option<Arc<RedisStore>>,
    /// Tokens of hot keys this replica took from Redis ahead (requests only, not logins).
    leases: lease::Leases,
    replicas: u32,
    /// Until when (µs) Redis is skipped after a failure.
    skip_redis_until: AtomicU64,
    degraded: AtomicBool,
    clock: Arc<dyn Clock>,
}

impl Budgets {
    pub fn new(
        config: BudgetConfig,
        redis: Option<Arc<RedisStore>>,
        replicas: u32,
        clock: Arc<dyn Clock>,
    ) -> Self {
        if redis.is_some() {
            METRICS.store_up.with_label_values(&["redis"]).set(1);
        }
        Self {
            config: arc_swap::ArcSwap::from_pointee(config),
            memory: MemoryBudgets::default(),
            redis,
            leases: lease::Leases::default(),
            replicas,
            skip_redis_until: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
            clock,
        }
    }

    /// New limits for the next requests (a reload); what each key has spent is kept.
    pub fn retune(&self, config: BudgetConfig) {
        self.config.store(Arc::new(config));
    }

    /// Whether budgets are currently enforced per replica because Redis is unreachable.
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    fn set_degraded(&self, on: bool) {
        if self.degraded.swap(on, Ordering::Relaxed) != on {
            METRICS.budget_degraded.set(i64::from(on));
            METRICS
                .store_up
                .with_label_values(&["redis"])
                .set(i64::from(!on));
            if on {
                tracing::error!(target: "vigie::alert", severity = "high", event = "budget_store_down", replicas = self.replicas, "Redis unreachable: budgets fall back to a per-replica share; logins fail closed");
            } else {
                tracing::warn!(target: "vigie::alert", severity = "low", event = "budget_store_back", "Redis reachable again: shared budgets restored");
            }
        }
    }

    /// Check `keys` in order (each with its limit and scale), stopping at the first refusal;
    /// returns the verdict and the index of the refusing key. `strict`: an unreachable Redis
    /// is an error (fail closed) instead of the per-replica fallback.
    pub async fn check(
        &self,
        keys: &[(&str, &Limit, f64)],
        strict: bool,
    ) -> Result<(Verdict, usize), Unavailable> {
        let now = self.clock.now_us();
        let Some(redis) = &self.redis else {
            return Ok(self.check_memory(keys, 1, now));
        };
        if now >= self.skip_redis_until.load(Ordering::Relaxed) {
            match self.redis_check(redis, keys, !strict, now).await {
                Ok((v, asked)) => {
                    // Served from leases, Redis said nothing of its health.
                    if asked {
                        self.set_degraded(false);
                    }
                    return Ok(v);
                }
                Err(()) => {
                    self.skip_redis_until
                        .store(now + RETRY_REDIS_US, Ordering::Relaxed);
                    self.set_degraded(true);
                }
            }
        }
        if strict {
            return Err(Unavailable);
        }
        Ok(self.check_memory(keys, self.replicas, now))
    }

    fn check_memory(&self, keys: &[(&str, &Limit, f64)], share: u32, now: u64) -> (Verdict, usize) {
        for (i, (key, limit, scale)) in keys.iter().enumerate() {
            let v = self.memory.check(key, Rate::new(limit, *scale, share), now);
            if v != Verdict::Allow {
                return (v, i);
            }
        }
        (Verdict::Allow, 0)
    }

    /// One round trip for the keys this replica holds no lease of (none when it holds all);
    /// whether Redis was asked. `lease`: hot keys may take several tokens ahead; logins always
    /// take exactly one.
    async fn redis_check(
        &self,
        redis: &RedisStore,
        keys: &[(&str, &Limit, f64)],
        lease: bool,
        now: u64,
    ) -> Result<((Verdict, usize), bool), ()> {
        let rates: Vec<(&str, Rate)> = keys
            .iter()
            .map(|(key, limit, scale)| (*key, Rate::new(limit, *scale, 1)))
            .collect();
        let plan = match lease {
            true => match self.leases.plan(&rates, now) {
                lease::Plan::Ask(plan) => plan,
                lease::Plan::Refused {
                    index,
                    retry_after_us,
                } => return Ok(((Verdict::Deny { retry_after_us }, index), false)),
            },
            false => vec![Some(1); rates.len()],
        };
        // The keys to ask Redis for, with their index among `keys`.
        let ask: Vec<(usize, (&str, Rate, u32))> = rates
            .iter()
            .zip(&plan)
            .enumerate()
            .filter_map(|(i, ((key, rate), want))| want.map(|w| (i, (*key, *rate, w))))
            .collect();
        if ask.is_empty() {
            return Ok(((Verdict::Allow, 0), false));
        }
        let call: Vec<(&str, Rate, u32)> = ask.iter().map(|(_, k)| *k).collect();
        let taken = crate::storage::redis::budgets::take(redis, &call).await?;
        if lease {
            for ((_, (key, rate, _)), &n) in ask.iter().zip(&taken.granted) {
                self.leases.granted(key, *rate, n, now);
            }
        }
        let verdict = match ask.get(taken.refused.wrapping_sub(1)) {
            Some((index, (key, rate, _))) if taken.wait >= 0 => {
                let retry_after_us = taken.wait as u64;
                if lease {
                    self.leases.refused(key, *rate, retry_after_us, now);
                }
                (Verdict::Deny { retry_after_us }, *index)
            }
            _ if taken.wait >= 0 => (
                Verdict::Deny {
                    retry_after_us: taken.wait as u64,
                },
                0,
            ),
            _ => (Verdict::Allow, 0),
        };
        Ok((verdict, true))
    }

    /// A request: its source address's budget, then the identity's budget for the class (one
    /// round trip with Redis).
    pub async fn request(
        &self,
        user: Option<&str>,
        class: &str,
        scale: f64,
        ip: IpAddr,
    ) -> Verdict {
        let source = format!("src:{}", source_of(ip));
        let identity = user.map(|u| format!("c:{class}:{u}"));
        let config = self.config.load_full();
        let mut keys: Vec<(&str, &Limit, f64)> = vec![(&source, &config.source, 1.0)];
        if let (Some(key), Some(limit)) = (&identity, config.classes.get(class)) {
            keys.push((key, limit, scale));
        }
        match self.check(&keys, false).await {
            Ok((v @ Verdict::Deny { .. }, i)) => {
                let label = if i == 0 { "source" } else { class };
                METRICS.budget_rejections.with_label_values(&[label]).inc();
                v
            }
            _ => Verdict::Allow,
        }
    }

    /// A login attempt from `ip` (before the user name is known). Fails closed.
    pub async fn login_source(&self, ip: IpAddr) -> Result<Verdict, Unavailable> {
        self.login_check(&format!("login:ip:{}", source_of(ip)))
            .await
    }

    /// A login attempt as `user`, from anywhere. Fails closed.
    pub async fn login_user(&self, user: &str) -> Result<Verdict, Unavailable> {
        self.login_check(&format!("login:u:{user}")).await
    }

    /// After IT lifts a throttle: `user` starts again with a full login budget. Whether it had
    /// spent some (an error: Redis could not be reached).
    pub async fn forget_login_user(&self, user: &str) -> Result<bool, Unavailable> {
        let key = format!("login:u:{user}");
        let local = self.memory.forget(&key);
        let Some(redis) = &self.redis else {
            return Ok(local);
        };
        let removed = crate::storage::redis::budgets::forget(redis, &key)
            .await
            .map_err(|_| Unavailable)?;
        Ok(local || removed)
    }

    async fn login_check(&self, key: &str) -> Result<Verdict, Unavailable> {
        let limit = self.config.load().login;
        let (v, _) = self.check(&[(key, &limit, 1.0)], true).await?;
        if v != Verdict::Allow {
            METRICS
                .budget_rejections
                .with_label_values(&["login"])
                .inc();
        }
        Ok(v)
    }
}

/// The unit a source budget counts: an IPv4 address, or an IPv6 /64 (one subscriber's or
/// site's prefix: a client rotating addresses inside it is still one source).
pub fn source_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests;
