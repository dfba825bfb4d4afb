"""The Lua scripts behind `RedisLimiter`. Redis runs a script with nothing else interleaved, so
each acquire, settle and state read is one atomic step across every replica.

Every script names all its keys in KEYS (window keys are computed by the caller from its clock)
and all of one key's names share the hash tag `{key_id}`, so a Redis Cluster keeps them in one
slot. The first four KEYS are always the key's lease ledger:

    leases     sorted set: lease id → expiry (ms)         in flight = its size
    costs      hash: lease id → reserved cost (nano-USD)
    reserved   integer: the sum of `costs`
    lapsed     sorted set: lease id → forget-at (ms)      leases that expired unsettled

ARGV[1] is the caller's now (ms) and ARGV[2] the forget-at time of a lease lapsing now. Money is
integer nano-USD; Lua compares numbers as doubles, exact up to 2^53 nano-USD (about 9 million
USD), far above any budget. An empty string as a limit means "no limit".
"""

from __future__ import annotations

_COMMON = """
local function prune(leases, costs, reserved, lapsed, now_ms, forget_ms)
  local gone = redis.call('ZRANGEBYSCORE', leases, '-inf', now_ms)
  for _, id in ipairs(gone) do
    local cost = redis.call('HGET', costs, id)
    if cost then redis.call('DECRBY', reserved, cost) end
    redis.call('HDEL', costs, id)
    redis.call('ZADD', lapsed, forget_ms, id)
  end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now_ms)
  redis.call('ZREMRANGEBYSCORE', lapsed, '-inf', now_ms)
end
local function count(key)
  return tonumber(redis.call('GET', key) or '0')
end
local function limit(value)
  if value == '' then return nil end
  return tonumber(value)
end
prune(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
"""

# KEYS[5..9]: minute requests, day requests, minute tokens, spent total, spent this period.
# ARGV[3..15]: lease id, lease expiry (ms), rpm, rpd, tpm, max concurrent, budget total,
# budget this period, tokens, cost, minute-key TTL, day-key TTL, ledger TTL (seconds).
# Answers "ok", the name of the refusing limit, or "spend_unknown" when a budget needs a spent
# amount Redis does not hold yet (the caller reads it from the usage log and tries again).
ACQUIRE = (
    _COMMON
    + """
local budget_total, budget_period = limit(ARGV[9]), limit(ARGV[10])
if (budget_total and redis.call('EXISTS', KEYS[8]) == 0)
    or (budget_period and redis.call('EXISTS', KEYS[9]) == 0) then
  return 'spend_unknown'
end
local rpm, rpd, tpm, most = limit(ARGV[5]), limit(ARGV[6]), limit(ARGV[7]), limit(ARGV[8])
local tokens, cost = tonumber(ARGV[11]), tonumber(ARGV[12])
if rpm and count(KEYS[5]) >= rpm then return 'rpm' end
if rpd and count(KEYS[6]) >= rpd then return 'rpd' end
if tpm and count(KEYS[7]) + tokens > tpm then return 'tpm' end
if most and redis.call('ZCARD', KEYS[1]) >= most then return 'concurrent' end
local committed = count(KEYS[3]) + cost
if budget_total and count(KEYS[8]) + committed > budget_total then return 'budget_total' end
if budget_period and count(KEYS[9]) + committed > budget_period then
  return 'budget_period'
end
redis.call('INCR', KEYS[5])
redis.call('EXPIRE', KEYS[5], ARGV[13])
redis.call('INCR', KEYS[6])
redis.call('EXPIRE', KEYS[6], ARGV[14])
redis.call('INCRBY', KEYS[7], ARGV[11])
redis.call('EXPIRE', KEYS[7], ARGV[13])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[12])
redis.call('INCRBY', KEYS[3], ARGV[12])
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[15]) end
return 'ok'
"""
)

# KEYS[5..8]: this minute's tokens, spent total, spent this day, spent this month.
# ARGV[3..7]: lease id, real tokens minus the estimate, "1" if the estimate was counted in this
# same minute (so an over-estimate can be given back), real cost, minute-key TTL.
# Spent amounts are added to only where Redis holds them; one it does not hold is read from
# the usage log when next needed, and that log will hold this request.
# Answers 1 when the lease was settled now, 0 when it had been already.
SETTLE = (
    _COMMON
    + """
if redis.call('ZREM', KEYS[1], ARGV[3]) == 1 then
  local reserved = redis.call('HGET', KEYS[2], ARGV[3])
  if reserved then redis.call('DECRBY', KEYS[3], reserved) end
  redis.call('HDEL', KEYS[2], ARGV[3])
elseif redis.call('ZREM', KEYS[4], ARGV[3]) == 0 then
  return 0
end
local extra = tonumber(ARGV[4])
if extra > 0 then
  redis.call('INCRBY', KEYS[5], ARGV[4])
  redis.call('EXPIRE', KEYS[5], ARGV[7])
elseif extra < 0 and ARGV[5] == '1' then
  local give_back = math.min(-extra, count(KEYS[5]))
  if give_back > 0 then redis.call('DECRBY', KEYS[5], string.format('%d', give_back)) end
end
for i = 6, 8 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCRBY', KEYS[i], ARGV[6]) end
end
return 1
"""
)

# ARGV[3..4]: the renewed expiry (ms), ledger TTL (seconds); ARGV[5..]: the lease ids to renew.
# Only leases still in `leases` are renewed (ZADD XX): one that lapsed in the meantime may have
# had its slot taken by another request, and renewing it would put the key over its limit.
# Answers how many were renewed.
RENEW = (
    _COMMON
    + """
local renewed = 0
for i = 5, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[3], ARGV[i])
end
for i = 1, 4 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
return renewed
"""
)

# KEYS[5..9] as for ACQUIRE. Answers the three window counts, the number in flight, and the
# reserved, spent-total and spent-this-period amounts (the last two nil when not held).
STATE = (
    _COMMON
    + """
return {count(KEYS[5]), count(KEYS[6]), count(KEYS[7]), redis.call('ZCARD', KEYS[1]),
        redis.call('GET', KEYS[3]) or '0', redis.call('GET', KEYS[8]),
        redis.call('GET', KEYS[9])}
"""
)
