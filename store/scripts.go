package store

import "github.com/redis/go-redis/v9"

// All keys share the hash tag of the prefix ("{pimbot}:..."), so every script touches one
// Redis Cluster slot. KEYS[1] is always the due set, which routes the script to that slot.

// commitScript applies one transition: version checks, open-lock checks and abuse limits
// first (nothing is written if any fails), then every write. ARGV[1] is the key prefix,
// ARGV[2] the transaction as JSON.
var commitScript = redis.NewScript(`
local P = ARGV[1]
local tx = cjson.decode(ARGV[2])
local puts = tx.puts or {}
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
  if L.maxOpen > 0 and redis.call('SCARD', P .. 'openu:' .. L.user) >= L.maxOpen then
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
  if p.expect == 0 then
    local uk = P .. 'user:' .. p.user
    redis.call('ZADD', uk, p.created, p.id)
    redis.call('ZREMRANGEBYSCORE', uk, '-inf', p.created - tx.retention * 1000)
    redis.call('EXPIRE', uk, tx.retention)
  end
end
for _, l in ipairs(tx.lock or {}) do
  redis.call('HSET', P .. 'open', l.key, l.id)
  redis.call('SADD', P .. 'openu:' .. l.user, l.key)
end
for _, l in ipairs(tx.unlock or {}) do
  if redis.call('HGET', P .. 'open', l.key) == l.id then
    redis.call('HDEL', P .. 'open', l.key)
  end
  redis.call('SREM', P .. 'openu:' .. l.user, l.key)
end
for _, id in ipairs(tx.ack or {}) do
  redis.call('ZREM', P .. 'lease', id)
  if not redis.call('ZSCORE', KEYS[1], id) then redis.call('HDEL', P .. 'job', id) end
end
for _, id in ipairs(tx.unschedule or {}) do
  redis.call('ZREM', KEYS[1], id)
  if not redis.call('ZSCORE', P .. 'lease', id) then redis.call('HDEL', P .. 'job', id) end
end
for _, j in ipairs(tx.schedule or {}) do
  redis.call('ZADD', KEYS[1], j.due, j.id)
  redis.call('HSET', P .. 'job', j.id, j.body)
end
for _, a in ipairs(tx.audit or {}) do
  redis.call('XADD', P .. 'audit', 'MAXLEN', '~', tx.auditMax, '*', 'r', a)
end
return {'OK'}
`)

// claimScript leases due jobs (and jobs whose lease ran out) to the caller and returns,
// for each, its id, body, the request record it concerns and whether it was taken over.
// ARGV: prefix, now (ms), limit, lease deadline (ms).
var claimScript = redis.NewScript(`
local P = ARGV[1]
local now, limit, leaseUntil = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out = {}
local function add(id, takenOver)
  redis.call('ZADD', P .. 'lease', leaseUntil, id)
  local body = redis.call('HGET', P .. 'job', id)
  if not body then
    redis.call('ZREM', P .. 'lease', id)
    return
  end
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

// retryScript moves a leased job back to the due set at a later time with a new body.
// ARGV: prefix, id, due (ms), body.
var retryScript = redis.NewScript(`
local P = ARGV[1]
redis.call('ZREM', P .. 'lease', ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('HSET', P .. 'job', ARGV[2], ARGV[4])
end
return 1
`)

// releaseScript hands leased jobs back, due at once. ARGV: prefix, due (ms), ids...
var releaseScript = redis.NewScript(`
local P = ARGV[1]
for i = 3, #ARGV do
  if redis.call('ZREM', P .. 'lease', ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[i])
  end
end
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
