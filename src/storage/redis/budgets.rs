//! Budgets in Redis: every key of one request checked in one script (one round trip), so a
//! budget holds across replicas and restarts. The rule (GCRA) is `crate::budget::gcra`'s.

use super::sessions::{deadline, retried, RedisStore};
use crate::budget::gcra::Rate;

static SCRIPT: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    // Every key of one request in one round trip, in order, stopping at the first refusal
    // (as the in-process check does). Redis's clock, not the replica's: replicas with skewed
    // clocks still share one budget. Each key asks for up to `want` tokens (a lease) and gets
    // as many as its budget has now, at least one. Returns {-1, 0, granted…}, or the wait in
    // µs, the refusing key's index and what the keys before it were granted.
    redis::Script::new(
        "local t = redis.call('TIME')
         local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
         local out = {-1, 0}
         for i, key in ipairs(KEYS) do
           local interval = tonumber(ARGV[3 * i - 2])
           local tolerance = tonumber(ARGV[3 * i - 1])
           local want = tonumber(ARGV[3 * i])
           local tat = tonumber(redis.call('GET', key) or now)
           if tat < now then tat = now end
           if tat - now > tolerance then
             out[1] = tat - now - tolerance
             out[2] = i
             return out
           end
           local n = math.min(want, math.floor((tolerance - (tat - now)) / interval) + 1)
           tat = tat + n * interval
           redis.call('SET', key, tat, 'PX', math.ceil((tat - now) / 1000) + 1000)
           out[i + 2] = n
         end
         return out",
    )
});

/// What Redis said of one request's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// `-1`, or the wait in µs before the refusing key has a token.
    pub wait: i64,
    /// The 1-based index of the refusing key (0 when none refused).
    pub refused: usize,
    /// Tokens granted to each key before the refusing one.
    pub granted: Vec<u32>,
}

/// Take up to `want` tokens (at least one) from each key's budget, in order, stopping at the
/// first refusal. `Err` when Redis did not answer (the caller falls back or fails closed).
pub async fn take(store: &RedisStore, keys: &[(&str, Rate, u32)]) -> Result<Taken, ()> {
    let mut conn = store.conn().await.map_err(|_| ())?;
    let mut call = SCRIPT.prepare_invoke();
    for (key, rate, want) in keys {
        call.key(format!("{}budget:{key}", store.prefix));
        call.arg(rate.interval)
            .arg(rate.tolerance)
            .arg((*want).max(1));
    }
    // After a broken connection, the request may be counted twice: on the strict side.
    let out: Vec<i64> = retried!(call.invoke_async(&mut conn)).map_err(|_| ())?;
    let (&wait, rest) = out.split_first().ok_or(())?;
    let (&refused, granted) = rest.split_first().ok_or(())?;
    Ok(Taken {
        wait,
        refused: refused as usize,
        granted: granted.iter().map(|&n| n.max(0) as u32).collect(),
    })
}

/// Start `key`'s budget afresh; whether it had spent some.
pub async fn forget(store: &RedisStore, key: &str) -> Result<bool, ()> {
    let mut conn = store.conn().await.map_err(|_| ())?;
    let removed: usize = deadline(redis::AsyncCommands::del(
        &mut conn,
        format!("{}budget:{key}", store.prefix),
    ))
    .await
    .map_err(|_| ())?;
    Ok(removed > 0)
}
