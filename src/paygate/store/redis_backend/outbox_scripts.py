"""The Lua scripts of the Redis webhook outbox (redis_backend/outbox.py): each move of an event, batch or
dead letter is one script, so an event is always in exactly one place."""

from __future__ import annotations

# Lua 5.1's unpack() has a stack limit: delete many fields or keys a slice at a time.
DEL_SLICED = """
local function del_sliced(cmd, key, items)
  for i = 1, #items, 1000 do
    if key then redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
    else redis.call(cmd, unpack(items, i, math.min(i + 999, #items))) end
  end
end
"""

# KEYS: counters, owners, qd, ev. ARGV: partition, owner, then (dest, value) per event.
ENQUEUE = """
local n = (#ARGV - 2) / 2
if n == 0 then return 0 end
local first = redis.call('HINCRBY', KEYS[1], 'event', n) - n + 1
for i = 0, n - 1 do
  local dest, id = ARGV[3 + 2 * i], first + i
  redis.call('HSET', KEYS[4], id, ARGV[4 + 2 * i])
  redis.call('ZADD', ARGV[1] .. ':q:' .. dest, id, id)
  redis.call('SADD', KEYS[3], dest)
end
redis.call('SADD', KEYS[2], ARGV[2])
return n
"""

# KEYS: q, ev. ARGV: limit. The oldest events of one destination: {ids, values}.
OLDEST = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local values = {}
for i, id in ipairs(ids) do values[i] = redis.call('HGET', KEYS[2], id) end
return {ids, values}
"""

# KEYS: q, ev. ARGV: after_id. The value of the first event after an id, or nil.
NEXT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, 1)
if #ids == 0 then return false end
return redis.call('HGET', KEYS[2], ids[1])
"""

# KEYS: counters, owners, qd, ev, q, bs. ARGV: partition, owner, dest, through_id, body, n, types JSON, now.
FORM_BATCH = (
    DEL_SLICED
    + """
local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[4])
del_sliced('HDEL', KEYS[4], gone)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[4])
if redis.call('EXISTS', KEYS[5]) == 0 then redis.call('SREM', KEYS[3], ARGV[3]) end
local id = redis.call('HINCRBY', KEYS[1], 'batch', 1)
redis.call('HSET', ARGV[1] .. ':b:' .. id, 'dest', ARGV[3], 'body', ARGV[5], 'n', ARGV[6], 'types', ARGV[7],
  'attempt', 0, 'next_at', ARGV[8], 'created', ARGV[8])
redis.call('ZADD', KEYS[6], id, id)
redis.call('SADD', KEYS[2], ARGV[2])
return id
"""
)

# KEYS: b, retry. ARGV: batch id, attempt, next_at, error. A batch already gone is left alone.
RESCHEDULE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'attempt', ARGV[2], 'next_at', ARGV[3], 'error', ARGV[4])
if tonumber(ARGV[2]) > 0 then redis.call('SADD', KEYS[2], ARGV[1]) else redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""

# KEYS: counters, b, bs, retry, ds. ARGV: partition, batch id, attempts, error, status, now. The batch's hash
# is renamed, not copied: its body moves untouched.
DEAD_LETTER = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local id = redis.call('HINCRBY', KEYS[1], 'dead', 1)
local d = ARGV[1] .. ':d:' .. id
redis.call('RENAME', KEYS[2], d)
redis.call('HDEL', d, 'attempt', 'next_at')
redis.call('HSET', d, 'attempts', ARGV[3], 'error', ARGV[4], 'status', ARGV[5], 'failed_at', ARGV[6])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('SREM', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[5], id, id)
return id
"""

BATCH_FIELDS = ("dest", "n", "types", "attempt", "next_at", "created", "error")
DEAD_FIELDS = ("dest", "body", "n", "types", "attempts", "created", "failed_at", "error", "status")

# KEYS: qd, ev, bs, ds. ARGV: partition, then the batch fields. {pending (dest, n, oldest value)…, batches
# (id, fields…)…, dead (dest, n)…}.
STATE = f"""
local p, pending, batches, dead, per_dest = ARGV[1], {{}}, {{}}, {{}}, {{}}
for _, dest in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local q = p .. ':q:' .. dest
  local first = redis.call('ZRANGE', q, 0, 0)[1]
  if first then pending[#pending + 1] = {{dest, redis.call('ZCARD', q), redis.call('HGET', KEYS[2], first)}} end
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  batches[#batches + 1] = {{id, redis.call('HMGET', p .. ':b:' .. id, {", ".join(f"'{f}'" for f in BATCH_FIELDS)})}}
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local dest = redis.call('HGET', p .. ':d:' .. id, 'dest')
  if dest then per_dest[dest] = (per_dest[dest] or 0) + 1 end
end
for dest, n in pairs(per_dest) do dead[#dead + 1] = {{dest, n}} end
return {{pending, batches, dead}}
"""

# KEYS: ds. ARGV: partition. Every dead letter, oldest first: {(id, fields…)…}.
DEAD_LETTERS = f"""
local out = {{}}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = {{id, redis.call('HMGET', ARGV[1] .. ':d:' .. id, {", ".join(f"'{f}'" for f in DEAD_FIELDS)})}}
end
return out
"""

# KEYS: ds. ARGV: partition.
CLEAR_DEAD = (
    DEL_SLICED
    + """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. ':d:' .. id end
del_sliced('DEL', nil, keys)
redis.call('DEL', KEYS[1])
return #ids
"""
)

# KEYS: ds. ARGV: partition, then letter ids. How many of them were there (and are gone now).
DELETE_DEAD = """
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('DEL', ARGV[1] .. ':d:' .. ARGV[i])
end
return n
"""

# KEYS: counters, owners, bs, ds. ARGV: partition, owner, now, then (letter id, dest, body, n, types, created)
# per letter. As on SQLite the batch is made of the letter as given; its stored copy is removed.
REPLAY = """
local ids = {}
for i = 4, #ARGV, 6 do
  local id = redis.call('HINCRBY', KEYS[1], 'batch', 1)
  redis.call('HSET', ARGV[1] .. ':b:' .. id, 'dest', ARGV[i + 1], 'body', ARGV[i + 2], 'n', ARGV[i + 3],
    'types', ARGV[i + 4], 'attempt', 0, 'next_at', ARGV[3], 'created', ARGV[i + 5])
  redis.call('ZADD', KEYS[3], id, id)
  redis.call('DEL', ARGV[1] .. ':d:' .. ARGV[i])
  redis.call('ZREM', KEYS[4], ARGV[i])
  ids[#ids + 1] = id
end
if #ids > 0 then redis.call('SADD', KEYS[2], ARGV[2]) end
return ids
"""

# KEYS: owners. ARGV: this partition, this owner, the dead partition, the dead owner. Ids are unique across
# owners, so everything keeps its id.
ADOPT = """
local mine, theirs, moved = ARGV[1], ARGV[3], 0
for _, dest in ipairs(redis.call('SMEMBERS', theirs .. ':qd')) do
  local q = theirs .. ':q:' .. dest
  for _, id in ipairs(redis.call('ZRANGE', q, 0, -1)) do
    local v = redis.call('HGET', theirs .. ':ev', id)
    if v then
      redis.call('HSET', mine .. ':ev', id, v)
      redis.call('ZADD', mine .. ':q:' .. dest, id, id)
      redis.call('SADD', mine .. ':qd', dest)
      moved = moved + 1
    end
  end
  redis.call('DEL', q)
end
for _, id in ipairs(redis.call('ZRANGE', theirs .. ':bs', 0, -1)) do
  redis.call('RENAME', theirs .. ':b:' .. id, mine .. ':b:' .. id)
  redis.call('ZADD', mine .. ':bs', id, id)
  if redis.call('SISMEMBER', theirs .. ':retry', id) == 1 then redis.call('SADD', mine .. ':retry', id) end
  moved = moved + 1
end
for _, id in ipairs(redis.call('ZRANGE', theirs .. ':ds', 0, -1)) do
  redis.call('RENAME', theirs .. ':d:' .. id, mine .. ':d:' .. id)
  redis.call('ZADD', mine .. ':ds', id, id)
  moved = moved + 1
end
for _, k in ipairs({'qd', 'ev', 'bs', 'retry', 'ds'}) do redis.call('DEL', theirs .. ':' .. k) end
redis.call('SREM', KEYS[1], ARGV[4])
if moved > 0 then redis.call('SADD', KEYS[1], ARGV[2]) end
return moved
"""

# KEYS: owners. ARGV: `{prefix}:outbox`. The owners whose partition holds anything; the others are forgotten.
OWNERS = """
local out = {}
for _, o in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local p = ARGV[1] .. ':' .. o
  if redis.call('EXISTS', p .. ':qd', p .. ':bs', p .. ':ds') > 0 then out[#out + 1] = o
  else redis.call('SREM', KEYS[1], o) end
end
return out
"""
