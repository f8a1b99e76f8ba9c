//! The Lua scripts that move entries atomically: a keyed push, the reliable fetch, the
//! start of a held job, a settle that writes an entry back counted, and the orphan reaper.

use ::redis::Script;

pub(super) struct Scripts {
    pub(super) push: Script,
    pub(super) fetch: Script,
    pub(super) start: Script,
    pub(super) settle: Script,
    pub(super) reap: Script,
}

pub(super) const PUSH: &str = r#"
-- A job with a deduplication key. KEYS: ready, delayed, dedup
-- ARGV: entry, run_at, now, ttl_seconds, id
if not redis.call('SET', KEYS[3], ARGV[5], 'NX', 'EX', ARGV[4]) then return 0 end
if tonumber(ARGV[2]) <= tonumber(ARGV[3]) then
  redis.call('LPUSH', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
"#;

pub(super) const FETCH: &str = r#"
-- KEYS: held, workers, inflight, then ready/delayed pairs
-- ARGV: now, limit, worker, wall_now, promote_batch, start
-- The first `start` entries leased go straight to in-flight (they run at once), the
-- rest to held.
local now, limit, start = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
local out = {}
for i = 4, #KEYS, 2 do
  local ready, delayed = KEYS[i], KEYS[i + 1]
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
  if #due > 0 then
    redis.call('ZREM', delayed, unpack(due))
    redis.call('LPUSH', ready, unpack(due))
  end
  local got = redis.call('RPOP', ready, limit - #out)
  if got then
    for _, e in ipairs(got) do
      out[#out + 1] = e
      if #out <= start then
        redis.call('LPUSH', KEYS[3], e)
      else
        redis.call('LPUSH', KEYS[1], e)
      end
    end
  end
  if #out >= limit then break end
end
return out
"#;

pub(super) const START: &str = r#"
-- Held jobs about to run. KEYS: held, inflight. ARGV: their entries.
-- For each: 1 when it moved to in-flight, 0 when it was no longer held (recovered).
local out = {}
for i, e in ipairs(ARGV) do
  -- Held jobs start oldest first, and the oldest sit at the tail.
  if redis.call('LREM', KEYS[1], -1, e) == 1 then
    redis.call('LPUSH', KEYS[2], e)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"#;

pub(super) const SETTLE: &str = r#"
-- A retry, a release or a dead letter. KEYS: inflight, ready, delayed, dead, reasons, held
-- ARGV: leased entry, how (retry|release|dead), entry to write, run_at, now,
--       wake channel, id, reason
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0
  and redis.call('LREM', KEYS[6], 1, ARGV[1]) == 0 then return 0 end
if ARGV[2] == 'dead' then
  redis.call('LPUSH', KEYS[4], ARGV[3])
  redis.call('HSET', KEYS[5], ARGV[7], ARGV[8])
elseif tonumber(ARGV[4]) <= tonumber(ARGV[5]) then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('PUBLISH', ARGV[6], '1')
else
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
end
return 1
"#;

pub(super) const REAP: &str = r#"
-- KEYS: workers, reasons. ARGV: cutoff (wall ms), prefix, budget, reason
-- Returns how many entries moved, then `queue|id|ended` of each it dead-lettered.
-- A job the dead worker had started counts that delivery; one it only held does not.
local prefix, budget = ARGV[2], tonumber(ARGV[3])
local moved = 0
local dead = {}
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 16)
for _, w in ipairs(gone) do
  for _, list in ipairs({'held', 'inflight'}) do
    local from = prefix .. ':' .. list .. ':' .. w
    local charge = list == 'inflight' and 1 or 0
    while moved < budget do
      local e = redis.call('RPOP', from)
      if not e then break end
      local ended, max, rest = string.match(e, '^v1|(%d+)|(%d+)|(.*)$')
      local queue = rest and string.match(rest, '^%-?%d+|([^|]*)|')
      if queue then
        local n = tonumber(ended) + charge
        local again = 'v1|' .. n .. '|' .. max .. '|' .. rest
        if charge == 1 and n >= tonumber(max) then
          local id = string.match(rest, '^%-?%d+|[^|]*|([^|]*)|')
          redis.call('HSET', KEYS[2], id, ARGV[4])
          redis.call('LPUSH', prefix .. ':dead:' .. queue, again)
          table.insert(dead, queue .. '|' .. id .. '|' .. n)
        else
          redis.call('RPUSH', prefix .. ':ready:' .. queue, again)
        end
      else
        redis.call('LPUSH', prefix .. ':unreadable', e)
      end
      moved = moved + 1
    end
  end
  if redis.call('LLEN', prefix .. ':held:' .. w) == 0
    and redis.call('LLEN', prefix .. ':inflight:' .. w) == 0 then
    redis.call('ZREM', KEYS[1], w)
  end
end
table.insert(dead, 1, tostring(moved))
return dead
"#;
