package store

import "github.com/redis/go-redis/v9"

// All keys share the hash tag of the prefix ("{pimbot}:..."), so every script touches one
// Redis Cluster slot. KEYS[1] is always the due set, which routes the script to that slot.

// commitScript applies transitions, one after the other, each on its own: version checks,
// fence, open-lock checks and abuse limits first (nothing of that transition is written if
// any fails), then every write. Several jobs' transitions share one round trip (a group
// commit) without sharing their fate. ARGV[1] is the key prefix, ARGV[2] a JSON array of
// transactions; the answer is one result per transaction, in order.
var commitScript = redis.NewScript(`
local P = ARGV[1]
local function apply(tx)
local puts = tx.puts or {}
if tx.fence then
  -- The outcome of a claimed job counts only while that claim still holds the lease: a
  -- replica that stalled past its lease (and was taken over) writes nothing.
  if redis.call('HGET', P .. 'fence', tx.fence.id) ~= tx.fence.token then return {'FENCED', tx.fence.id} end
end
for _, p in ipairs(puts) do
  local cur = tonumber(redis.call('HGET', P .. 'req:' .. p.id, 'v')) or 0
  if cur ~= p.expect then return {'CONFLICT', p.id} end
end
for _, l in ipairs(tx.lock or {}) do
  local holder = redis.call('HGET', P .. 'open', l.key)
  if holder and holder ~= l.id then
    return {'DUPLICATE', holder, redis.call('HGET', P .. 'req:' .. holder, 'd') or ''}
  end
end
if tx.limits then
  local L = tx.limits
  if L.maxOpen > 0 and redis.call('SCARD', P .. 'wait:' .. L.user) >= L.maxOpen then
    return {'LIMIT_OPEN', tostring(L.maxOpen)}
  end
  if L.perMinute > 0 then
    local k = P .. 'rl:' .. L.user .. ':' .. L.minute
    local c = tonumber(redis.call('GET', k)) or 0
    if c >= L.perMinute then return {'LIMIT_RATE', tostring(L.perMinute)} end
    redis.call('INCR', k)
    redis.call('EXPIRE', k, 120)
  end
end
for _, p in ipairs(puts) do
  local k = P .. 'req:' .. p.id
  redis.call('HSET', k, 'v', p.expect + 1, 'd', p.data)
  if p.terminal then redis.call('EXPIRE', k, tx.retention) else redis.call('PERSIST', k) end
  -- wait:<user> holds the user's requests that wait (MFA, approval or start time): what
  -- max_pending counts. Derived from every write, so no transition can forget it.
  if p.waiting then redis.call('SADD', P .. 'wait:' .. p.user, p.id) else redis.call('SREM', P .. 'wait:' .. p.user, p.id) end
  if p.expect == 0 then
    local uk = P .. 'user:' .. p.user
    redis.call('ZADD', uk, p.created, p.id)
    redis.call('ZREMRANGEBYSCORE', uk, '-inf', p.created - tx.retention * 1000)
    redis.call('EXPIRE', uk, tx.retention)
  end
end
for _, l in ipairs(tx.lock or {}) do
  redis.call('HSET', P .. 'open', l.key, l.id)
end
for _, l in ipairs(tx.unlock or {}) do
  -- Only the holder unlocks: a late unlock of an old request never frees a newer one's key.
  if redis.call('HGET', P .. 'open', l.key) == l.id then
    redis.call('HDEL', P .. 'open', l.key)
  end
end
local function ack(id, token)
  if redis.call('HGET', P .. 'fence', id) ~= token then return end -- taken over: its new holder acks
  redis.call('HDEL', P .. 'fence', id)
  redis.call('ZREM', P .. 'lease', id)
  if not redis.call('ZSCORE', KEYS[1], id) then redis.call('HDEL', P .. 'job', id) end
end
for _, a in ipairs(tx.ack or {}) do ack(a.id, a.token) end
for _, id in ipairs(tx.unschedule or {}) do
  redis.call('ZREM', KEYS[1], id)
  if not redis.call('ZSCORE', P .. 'lease', id) then redis.call('HDEL', P .. 'job', id) end
end
for _, j in ipairs(tx.schedule or {}) do
  redis.call('ZADD', KEYS[1], j.due, j.id)
  redis.call('HSET', P .. 'job', j.id, j.body)
  if j.order then
    -- notify jobs by request and surface, scored by version (store/order.go)
    redis.call('ZADD', P .. 'nq:' .. j.order, j.seq, j.id)
    redis.call('EXPIRE', P .. 'nq:' .. j.order, tx.retention)
  end
end
for _, a in ipairs(tx.audit or {}) do
  redis.call('XADD', P .. 'audit', 'MAXLEN', '~', tx.auditMax, '*', 'r', a)
end
return {'OK'}
end
local out = {}
for i, tx in ipairs(cjson.decode(ARGV[2])) do out[i] = apply(tx) end
return out
`)

// claimScript leases due jobs (and jobs whose lease ran out) to the caller and returns,
// for each, its id, body, the request record it concerns and whether it was taken over.
// Each claimed job records the claim's fencing token; only that token may ack, retry or
// release the job, or commit its outcome, until another claim takes it over.
// ARGV: prefix, now (ms), limit, lease deadline (ms), fencing token.
var claimScript = redis.NewScript(`
local P = ARGV[1]
local now, limit, leaseUntil, token = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local out = {}
local function add(id, takenOver)
  local body = redis.call('HGET', P .. 'job', id)
  if not body then
    redis.call('ZREM', P .. 'lease', id)
    redis.call('HDEL', P .. 'fence', id)
    return
  end
  redis.call('ZADD', P .. 'lease', leaseUntil, id)
  redis.call('HSET', P .. 'fence', id, token)
  local rid = string.match(id, '^[^:]+:([^:]+)')
  local req = ''
  if string.sub(id, 1, 7) ~= 'notify:' and rid then
    req = redis.call('HGET', P .. 'req:' .. rid, 'd') or ''
  end
  table.insert(out, {id, body, req, takenOver})
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'lease', '-inf', now, 'LIMIT', 0, limit)) do
  add(id, '1')
end
local offset = 0
while #out < limit do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', offset, limit)
  if #due == 0 then break end
  for _, id in ipairs(due) do
    if #out >= limit then break end
    if redis.call('ZSCORE', P .. 'lease', id) then
      offset = offset + 1 -- running elsewhere: it stays due and runs after that run is done
    else
      redis.call('ZREM', KEYS[1], id)
      add(id, '0')
    end
  end
end
return out
`)

// retryScript moves a leased job back to the due set at a later time with a new body, if the
// caller's claim still holds it (0 otherwise: the job was taken over).
// ARGV: prefix, id, due (ms), body, fencing token.
var retryScript = redis.NewScript(`
local P = ARGV[1]
if redis.call('HGET', P .. 'fence', ARGV[2]) ~= ARGV[5] then return 0 end
redis.call('HDEL', P .. 'fence', ARGV[2])
redis.call('ZREM', P .. 'lease', ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('HSET', P .. 'job', ARGV[2], ARGV[4])
end
return 1
`)

// releaseScript hands leased jobs back, due at once, where the caller's claim still holds
// them. ARGV: prefix, due (ms), then pairs of id and fencing token.
var releaseScript = redis.NewScript(`
local P = ARGV[1]
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', P .. 'fence', id) == token then
    redis.call('HDEL', P .. 'fence', id)
    if redis.call('ZREM', P .. 'lease', id) == 1 then
      redis.call('ZADD', KEYS[1], 'NX', ARGV[2], id)
    end
  end
end
return 1
`)

// deadScript moves a job that cannot be decoded (a poison row) out of the queue into the
// dead-letter hash, with why, if the caller's claim still holds it.
// ARGV: prefix, id, fencing token, record (JSON).
var deadScript = redis.NewScript(`
local P = ARGV[1]
if redis.call('HGET', P .. 'fence', ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HDEL', P .. 'fence', ARGV[2])
redis.call('ZREM', P .. 'lease', ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', P .. 'job', ARGV[2])
redis.call('HSET', P .. 'dead', ARGV[2], ARGV[4])
return 1
`)

// listScript reads a user's newest requests in one round trip. ARGV: prefix, user id, limit.
var listScript = redis.NewScript(`
local P = ARGV[1]
local ids = redis.call('ZREVRANGE', P .. 'user:' .. ARGV[2], 0, tonumber(ARGV[3]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local d = redis.call('HGET', P .. 'req:' .. id, 'd')
  if d then table.insert(out, d) end
end
return out
`)

// nextDueScript returns the earliest due time or lease deadline (ms), or -1.
var nextDueScript = redis.NewScript(`
local a = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local b = redis.call('ZRANGE', ARGV[1] .. 'lease', 0, 0, 'WITHSCORES')
local best = -1
if a[2] then best = tonumber(a[2]) end
if b[2] and (best < 0 or tonumber(b[2]) < best) then best = tonumber(b[2]) end
return tostring(best)
`)
