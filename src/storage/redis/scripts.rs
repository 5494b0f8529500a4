//! The session store's Lua scripts: each write that a revocation, a lock or a parallel
//! sign-in could race with is one script, so Redis runs it whole, between other commands.
//!
//! Key layout (under the storage prefix): `session:<hash>` the record (JSON), `ended:<hash>`
//! its tombstone, `user:<name>` the set of a user's hashes, `locks` the lock hash,
//! `anonymous` the pre-login sessions by start (their cap), `generation` the data-loss counter ([`crate::storage::shared_state`]). Scripts touch
//! session keys named by the user's set, so Vigie needs one Redis (or one cluster slot).

use once_cell::sync::Lazy;
use redis::Script;

/// Lua shared by the scripts: end one session (delete it, leave its tombstone, tell the
/// other replicas), and the order of authentication levels.
const ENDING: &str = "
local function ending(prefix, hash, tomb_ttl, channel)
  local n = redis.call('DEL', prefix .. 'session:' .. hash)
  redis.call('SET', prefix .. 'ended:' .. hash, '1', 'EX', tomb_ttl)
  redis.call('PUBLISH', channel, hash)
  return n
end
local rank = {None = 0, Password = 1, SecondFactor = 2, PhishingResistant = 3}
";

/// KEYS: record, its tombstone, the user's set, locks, generation.
/// ARGV: json (version 1), ttl, user ('' for none), hash, replaced hash (''), cap level rank
/// plus one (0: no cap), cap max, evict oldest ('1'), tombstone ttl, channel, prefix, set ttl,
/// pre-login sessions at most (0: no cap), pre-login lifetime (s).
/// Returns {'stored', then each evicted session's hash and record...} or
/// {'lost'|'ended'|'locked'|'cap'}: the records go to the portal's logout; or {'wanted', µs}: the
/// replaced session was asked for a proof the new record does not carry yet.
pub static CREATE: Lazy<Script> = Lazy::new(|| {
    Script::new(&format!(
        "{ENDING}
local prefix, user, replaced = ARGV[11], ARGV[3], ARGV[5]
if redis.call('EXISTS', KEYS[5]) == 0 then return {{'lost'}} end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return {{'ended'}}
end
if user ~= '' and redis.call('HEXISTS', KEYS[4], user) == 1 then return {{'locked'}} end
if replaced ~= '' then
  local old = redis.call('GET', prefix .. 'session:' .. replaced)
  if not old then return {{'ended'}} end
  -- A step-up asked after the replaced copy was read: the caller writes it in and tries again.
  local wanted = string.match(old, '\"proof_wanted_after_us\":(%d+)')
  if wanted then
    local mine = string.match(ARGV[1], '\"proof_wanted_after_us\":(%d+)')
    if not mine or tonumber(mine) < tonumber(wanted) then return {{'wanted', wanted}} end
  end
end
local out = {{'stored'}}
-- Pre-login sessions: at most ARGV[13] (0: no cap), the oldest ended first, as in memory. The
-- sorted set holds each one's start (µs); those past their lifetime (ARGV[14] s) are gone already.
if user == '' and tonumber(ARGV[13]) > 0 then
  local z = prefix .. 'anonymous'
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now - tonumber(ARGV[14]) * 1000000)
  if replaced ~= '' then redis.call('ZREM', z, replaced) end
  local over = redis.call('ZCARD', z) + 1 - tonumber(ARGV[13])
  if over > 0 then
    for _, h in ipairs(redis.call('ZRANGE', z, 0, over - 1)) do
      local raw = redis.call('GET', prefix .. 'session:' .. h)
      if ending(prefix, h, ARGV[9], ARGV[10]) > 0 then
        table.insert(out, h)
        table.insert(out, raw)
      end
    end
    redis.call('ZREMRANGEBYRANK', z, 0, over - 1)
  end
  redis.call('ZADD', z, now, ARGV[4])
  redis.call('EXPIRE', z, ARGV[14])
end
local level = tonumber(ARGV[6])
if user ~= '' and level > 0 then
  local live = {{}}
  for _, h in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local raw = redis.call('GET', prefix .. 'session:' .. h)
    if not raw then
      redis.call('SREM', KEYS[3], h)
    elseif h ~= replaced then
      local r = cjson.decode(raw)
      if (rank[r.level] or 0) + 1 >= level then table.insert(live, {{r.created, h, raw}}) end
    end
  end
  local excess = #live + 1 - tonumber(ARGV[7])
  if excess > 0 then
    if ARGV[8] ~= '1' then return {{'cap'}} end
    table.sort(live, function(a, b) return a[1] < b[1] end)
    for i = 1, excess do
      ending(prefix, live[i][2], ARGV[9], ARGV[10])
      redis.call('SREM', KEYS[3], live[i][2])
      table.insert(out, live[i][2])
      table.insert(out, live[i][3])
    end
  end
end
if replaced ~= '' then
  ending(prefix, replaced, ARGV[9], ARGV[10])
  if user ~= '' then redis.call('SREM', KEYS[3], replaced) end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if user ~= '' then
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[12])
end
return out"
    ))
});

/// KEYS: record. ARGV: json (next version), ttl, version read.
/// Returns 1 written, 0 ended, 2 changed since read.
pub static UPDATE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        "local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if (cjson.decode(raw).version or 0) ~= tonumber(ARGV[3]) then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1",
    )
});

/// KEYS: record. ARGV: prefix, hash, tombstone ttl, channel. Returns the record it ended.
pub static REMOVE: Lazy<Script> = Lazy::new(|| {
    Script::new(&format!(
        "{ENDING}
local raw = redis.call('GET', KEYS[1])
ending(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
redis.call('ZREM', ARGV[1] .. 'anonymous', ARGV[2])
if raw then
  local user = cjson.decode(raw).user
  if type(user) == 'string' then redis.call('SREM', ARGV[1] .. 'user:' .. user, ARGV[2]) end
end
return raw"
    ))
});

/// KEYS: the user's set. ARGV: prefix, hash kept (''), tombstone ttl, channel, fingerprint
/// (''; only the session whose hash starts with it). Returns each live session it ended, as
/// its hash then its record.
pub static REMOVE_USER: Lazy<Script> = Lazy::new(|| {
    Script::new(&format!(
        "{ENDING}
local out = {{}}
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if h ~= ARGV[2] and (ARGV[5] == '' or string.sub(h, 1, #ARGV[5]) == ARGV[5]) then
    local raw = redis.call('GET', ARGV[1] .. 'session:' .. h)
    ending(ARGV[1], h, ARGV[3], ARGV[4])
    redis.call('SREM', KEYS[1], h)
    if raw then
      table.insert(out, h)
      table.insert(out, raw)
    end
  end
end
return out"
    ))
});

/// KEYS: a lease. ARGV: its holder, its lifetime (ms). Renews it if `holder` has it; 1 if so.
pub static RENEW_LEASE: Lazy<Script> = Lazy::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0",
    )
});
