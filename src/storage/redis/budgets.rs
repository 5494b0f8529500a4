//! Budgets in Redis: every key of one request checked in one script (one round trip), so a
//! budget holds across replicas and restarts. The rule (GCRA) is `crate::budget::gcra`'s.

use super::sessions::{deadline, retried, RedisStore};
use crate::budget::gcra::Rate;

static SCRIPT: once_cell::sync::Lazy<redis::Script> = once_cell::sync::Lazy::new(|| {
    // Every key of one request in one round trip, in order, stopping at the first refusal
    // (as the in-process check does). Redis's clock, not the replica's: replicas with skewed
    // clocks still share one budget. Returns -1, or the wait in µs and the refusing key's index.
    redis::Script::new(
        "local t = redis.call('TIME')
         local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
         for i, key in ipairs(KEYS) do
           local interval = tonumber(ARGV[2 * i - 1])
           local tolerance = tonumber(ARGV[2 * i])
           local tat = tonumber(redis.call('GET', key) or now)
           if tat < now then tat = now end
           if tat - now > tolerance then return {tat - now - tolerance, i} end
           tat = tat + interval
           redis.call('SET', key, tat, 'PX', math.ceil((tat - now) / 1000) + 1000)
         end
         return {-1, 0}",
    )
});

/// Take one request from each key's budget, in order, stopping at the first refusal: `-1`,
/// or the wait in µs and the 1-based index of the refusing key. `Err` when Redis did not
/// answer (the caller falls back or fails closed).
pub async fn take(store: &RedisStore, keys: &[(&str, Rate)]) -> Result<(i64, usize), ()> {
    let mut conn = store.conn().await.map_err(|_| ())?;
    let mut call = SCRIPT.prepare_invoke();
    for (key, rate) in keys {
        call.key(format!("{}budget:{key}", store.prefix));
        call.arg(rate.interval).arg(rate.tolerance);
    }
    // After a broken connection, the request may be counted twice: on the strict side.
    retried!(call.invoke_async(&mut conn)).map_err(|_| ())
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
