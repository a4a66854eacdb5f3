"""The Lua scripts: every change to money or key records is one script, so it is atomic in Redis.

`MONEY` runs a batch of operations for one *lane* (an instance's hot-path charges, or its other writes)
with the lane's next batch number; `tell` says whether to publish the balances it moved (the hot path
publishes at most every few milliseconds, then `TELL` says the rest: a message per call would wake every
instance's listener per call). Redis remembers the last batch number applied per lane and its reply:
a batch sent again (a retry after a lost reply) is answered from that memory and applied at most once.
`FENCE` settles a batch whose reply was lost for good: it is either already applied, or can never be.

Numbers: Redis's Lua has doubles only, exact for integers up to 2^53, far above any balance. Timestamps
and memos arrive as JSON text from Python and are pasted into ledger entries unparsed, so they keep every
digit. Replies are text: one line per operation (`1 credits spent calls last_used version`; `0` and the
same when refused; `conflict what`; `once`: `new|dup requested moved` and the state, or `none`).
"""

from __future__ import annotations

MONEY = r"""
local P, lane, batch, cap, inst, tell = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6] == '1'
local applied = P .. ':applied'
local function fmt(x) return string.format('%d', x) end
local done = tonumber(redis.call('HGET', applied, lane) or '0')
if batch <= done then
  return redis.call('GET', P .. ':last:' .. lane) or ''
end
local function key(h) return P .. ':k:' .. h end
local function state(k)
  local f = redis.call('HMGET', k, 'c', 's', 'n', 'u', 'v')
  return f[1] .. ' ' .. f[2] .. ' ' .. f[3] .. ' ' .. f[4] .. ' ' .. f[5]
end
local function ledger(h, delta, kind, bal, ts, memo)
  local seq = redis.call('INCR', P .. ':seq')
  redis.call('ZADD', P .. ':l:' .. h, seq,
    '[' .. fmt(seq) .. ',' .. ts .. ',' .. fmt(delta) .. ',"' .. kind .. '",' .. fmt(bal) .. ',' .. memo .. ']')
end
local function usage(field, row)
  redis.call('XADD', P .. ':usage', 'MAXLEN', '~', cap, '*', field, row)
end
-- quota counters per subject (a key hash, or team:<id>): the day and month they count, calls and credits
local function counters(subject, day, month)
  local f = redis.call('HMGET', P .. ':q:' .. subject, 'd', 'dc', 'dk', 'm', 'mc', 'mk', 'spent')
  local c = {0, 0, 0, 0, tonumber(f[7]) or 0}
  if f[1] == day then c[1], c[3] = tonumber(f[2]) or 0, tonumber(f[3]) or 0 end
  if f[4] == month then c[2], c[4] = tonumber(f[5]) or 0, tonumber(f[6]) or 0 end
  return c  -- day calls, month calls, day credits, month credits, spent (all time)
end
local function over(c, lim, calls, credits)  -- lim: daily calls, monthly calls, daily credits, monthly credits
  return (lim[1] > 0 and c[1] + calls > lim[1]) or (lim[2] > 0 and c[2] + calls > lim[2])
    or (lim[3] > 0 and c[3] + credits > lim[3]) or (lim[4] > 0 and c[4] + credits > lim[4])
end
local function count(subject, day, month, calls, credits, c)  -- negative for a refund; never below zero
  c = c or counters(subject, day, month)
  local function floor0(x) if x < 0 then return 0 end return x end
  redis.call('HSET', P .. ':q:' .. subject, 'd', day, 'm', month,
    'dc', fmt(floor0(c[1] + calls)), 'mc', fmt(floor0(c[2] + calls)),
    'dk', fmt(floor0(c[3] + credits)), 'mk', fmt(floor0(c[4] + credits)), 'spent', fmt(floor0(c[5] + credits)))
end
-- limits: spending_limit dc mc dk mk day month team team_budget tdc tmc tdk tmk (13 fields at `at`).
-- Reads each counter once: the refusal (or nil) and the counters read, for `counted` to write.
local function refusal(spent, h, at, calls, credits)
  local spend = tonumber(ARGV[at])
  local day, month, team = ARGV[at + 5], ARGV[at + 6], ARGV[at + 7]
  if spend > 0 and spent + credits > spend then return 'spending_limit_exceeded' end
  local kc = counters(h, day, month)
  local lim = {tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4])}
  if over(kc, lim, calls, credits) then return 'quota_exceeded' end
  local tc = nil
  if team ~= '' then
    tc = counters('team:' .. team, day, month)
    local budget = tonumber(ARGV[at + 8])
    if budget > 0 and tc[5] + credits > budget then return 'team_budget_exceeded' end
    local tl = {tonumber(ARGV[at + 9]), tonumber(ARGV[at + 10]), tonumber(ARGV[at + 11]), tonumber(ARGV[at + 12])}
    if over(tc, tl, calls, credits) then return 'team_quota_exceeded' end
  end
  return nil, kc, tc
end
local function counted(h, at, calls, credits, kc, tc)
  count(h, ARGV[at + 5], ARGV[at + 6], calls, credits, kc)
  if ARGV[at + 7] ~= '' then count('team:' .. ARGV[at + 7], ARGV[at + 5], ARGV[at + 6], calls, credits, tc) end
end
local out, moved, touched = {}, {}, {}
local i, n = 7, #ARGV
while i <= n do
  local op = ARGV[i]
  if op == 'charge' or op == 'many' then
    -- charge: h amount ts memo row LIMITS / many: h count ts LIMITS (amount memo row)*count; all or nothing
    local h, ts = ARGV[i + 1], ARGV[i + 3]
    local parts, total, calls, limits = {}, 0, 1, 0
    if op == 'charge' then
      parts[1] = {tonumber(ARGV[i + 2]), ARGV[i + 4], ARGV[i + 5]}
      limits = i + 6
      i = i + 19
    else
      calls = tonumber(ARGV[i + 2])
      limits = i + 4
      for j = 1, calls do
        local b = i + 17 + (j - 1) * 3
        parts[j] = {tonumber(ARGV[b]), ARGV[b + 1], ARGV[b + 2]}
      end
      i = i + 17 + calls * 3
    end
    for _, p in ipairs(parts) do total = total + p[1] end
    local k = key(h)
    -- one read and one write of the key's hash (each redis.call costs: ~3 us here)
    local f = redis.call('HMGET', k, 'c', 's', 'n', 'v', 'u')
    local why, kc, tc = nil, nil, nil
    if f[1] and tonumber(f[1]) < total then why = 'insufficient_credits' end
    if f[1] and not why then why, kc, tc = refusal(tonumber(f[2]), h, limits, calls, total) end
    if not f[1] then
      out[#out + 1] = '0 0'
    elseif why then
      out[#out + 1] = '0 ' .. f[1] .. ' ' .. f[2] .. ' ' .. f[3] .. ' ' .. f[5] .. ' ' .. f[4] .. ' ' .. why
    else
      local bal = tonumber(f[1])
      for _, p in ipairs(parts) do
        if p[1] > 0 then
          bal = bal - p[1]
          ledger(h, -p[1], 'charge', bal, ts, p[2])
        end
        usage('e', p[3])
      end
      local spent, count_, version = fmt(tonumber(f[2]) + total), fmt(tonumber(f[3]) + calls), fmt(tonumber(f[4]) + 1)
      redis.call('HSET', k, 'c', fmt(bal), 's', spent, 'n', count_, 'u', ts, 'v', version)
      counted(h, limits, calls, total, kc, tc)
      out[#out + 1] = '1 ' .. fmt(bal) .. ' ' .. spent .. ' ' .. count_ .. ' ' .. ts .. ' ' .. version
      moved[h] = true
    end
  elseif op == 'deny' then  -- row: a usage row only
    usage('e', ARGV[i + 1])
    out[#out + 1] = '1'
    i = i + 2
  elseif op == 'adjust' then  -- h delta kind memo spent_delta calls_delta ts day month team below
    local h, delta, kind, memo = ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
    local sd, cd, ts = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]), ARGV[i + 7]
    local day, month, team, below = ARGV[i + 8], ARGV[i + 9], ARGV[i + 10], tonumber(ARGV[i + 11])
    i = i + 12
    local k = key(h)
    local c = redis.call('HGET', k, 'c')
    if not c then
      out[#out + 1] = '0 0'
    elseif tonumber(c) + delta < 0 or (below >= 0 and tonumber(c) >= below) then
      out[#out + 1] = '0 ' .. state(k)
    else
      local bal = redis.call('HINCRBY', k, 'c', fmt(delta))
      redis.call('HINCRBY', k, 's', fmt(sd))
      local calls = tonumber(redis.call('HGET', k, 'n')) + cd
      if calls < 0 then calls = 0 end
      redis.call('HSET', k, 'n', fmt(calls))
      redis.call('HINCRBY', k, 'v', 1)
      ledger(h, delta, kind, bal, ts, memo)
      if kind == 'refund' then  -- the call is given back: its usage (for usage_sums) and its quota
        usage('r', '["' .. h .. '",' .. fmt(delta) .. ',' .. ts .. ']')
        count(h, day, month, -1, -delta)
        if team ~= '' then count('team:' .. team, day, month, -1, -delta) end
      end
      out[#out + 1] = '1 ' .. state(k)
      moved[h] = true
    end
  elseif op == 'once' then  -- h delta kind memo ts once_id: at most once per once_id (store/once.py)
    local h, delta, kind, memo, ts, oid = ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
      ARGV[i + 6]
    i = i + 7
    local k = key(h)
    local seen = redis.call('HGET', P .. ':once', oid)
    local c = redis.call('HGET', k, 'c')
    if seen then  -- 'requested moved': what the first one did
      out[#out + 1] = 'dup ' .. seen .. ' ' .. (c and state(k) or '0 0 0 - 0')
    elseif not c then
      out[#out + 1] = 'none'
    else
      local got = delta
      if tonumber(c) + delta < 0 then got = -tonumber(c) end  -- a take-back takes what is there
      redis.call('HSET', P .. ':once', oid, fmt(delta) .. ' ' .. fmt(got))
      if got ~= 0 then
        local bal = redis.call('HINCRBY', k, 'c', fmt(got))
        redis.call('HINCRBY', k, 'v', 1)
        ledger(h, got, kind, bal, ts, memo)
        moved[h] = true
      end
      out[#out + 1] = 'new ' .. fmt(delta) .. ' ' .. fmt(got) .. ' ' .. state(k)
    end
  elseif op == 'xfer' then  -- from to amount memo ts
    local a, b, amount, memo, ts = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5]
    i = i + 6
    local ca, cb = redis.call('HGET', key(a), 'c'), redis.call('HGET', key(b), 'c')
    if (not ca) or (not cb) or a == b or amount <= 0 or tonumber(ca) < amount then
      out[#out + 1] = '0'
    else
      local ba = redis.call('HINCRBY', key(a), 'c', fmt(-amount))
      local bb = redis.call('HINCRBY', key(b), 'c', fmt(amount))
      redis.call('HINCRBY', key(a), 'v', 1)
      redis.call('HINCRBY', key(b), 'v', 1)
      ledger(a, -amount, 'transfer_out', ba, ts, memo)
      ledger(b, amount, 'transfer_in', bb, ts, memo)
      out[#out + 1] = '1 ' .. state(key(a)) .. ' ' .. state(key(b))
      moved[a] = true
      moved[b] = true
    end
  elseif op == 'check' then  -- count hash* count alias*: stop the batch, writing nothing, if any is taken
    local nh = tonumber(ARGV[i + 1])
    local na = tonumber(ARGV[i + 2 + nh])
    local taken = nil
    for j = 1, nh do
      if redis.call('EXISTS', key(ARGV[i + 1 + j])) == 1 then taken = 'key ' .. ARGV[i + 1 + j] end
    end
    for j = 1, na do
      local alias = ARGV[i + 2 + nh + j]
      if redis.call('HEXISTS', P .. ':aliases', alias) == 1 then taken = 'alias ' .. alias end
    end
    i = i + 3 + nh + na
    if taken then
      out = {'conflict ' .. taken}
      break
    end
    out[#out + 1] = '1'
  elseif op == 'create' then  -- h alias record credits spent calls used kind ts
    local h, alias, rec = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local credits, kind, ts = tonumber(ARGV[i + 4]), ARGV[i + 8], ARGV[i + 9]
    local k = key(h)
    if redis.call('EXISTS', k) == 1 then
      out[#out + 1] = 'conflict key'
    elseif alias ~= '' and redis.call('HEXISTS', P .. ':aliases', alias) == 1 then
      out[#out + 1] = 'conflict alias'
    else
      redis.call('HSET', k, 'c', ARGV[i + 4], 's', ARGV[i + 5], 'n', ARGV[i + 6], 'u', ARGV[i + 7],
        'r', rec, 'a', alias, 'v', '1')
      redis.call('SADD', P .. ':keys', h)
      if alias ~= '' then redis.call('HSET', P .. ':aliases', alias, h) end
      if credits > 0 then ledger(h, credits, kind, credits, ts, 'null') end
      out[#out + 1] = '1 ' .. state(k)
      touched[#touched + 1] = h
    end
    i = i + 10
  elseif op == 'update' then  -- h alias record used: the policy fields, never money
    local h, alias, rec, used = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    i = i + 5
    local k = key(h)
    local old = redis.call('HGET', k, 'a')
    local owner = alias ~= '' and redis.call('HGET', P .. ':aliases', alias)
    if not old then
      out[#out + 1] = '0 missing'
    elseif owner and owner ~= h then
      out[#out + 1] = 'conflict alias'
    else
      if old ~= '' and old ~= alias then redis.call('HDEL', P .. ':aliases', old) end
      if alias ~= '' then redis.call('HSET', P .. ':aliases', alias, h) end
      redis.call('HSET', k, 'r', rec, 'a', alias, 'u', used)
      redis.call('HINCRBY', k, 'v', 1)
      out[#out + 1] = '1 ' .. state(k)
      touched[#touched + 1] = h
    end
  elseif op == 'rekey' then  -- old new record spent calls used retired_record memo ts
    local old, new, rec = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local retired, memo, ts = ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
    local ko, kn = key(old), key(new)
    local bal = redis.call('HGET', ko, 'c')
    if (not bal) or redis.call('EXISTS', kn) == 1 then
      out[#out + 1] = 'conflict key'
    else
      local alias = redis.call('HGET', ko, 'a')
      redis.call('HSET', kn, 'c', bal, 's', ARGV[i + 4], 'n', ARGV[i + 5], 'u', ARGV[i + 6], 'r', rec, 'a', alias,
        'v', '1')
      redis.call('SADD', P .. ':keys', new)
      redis.call('HSET', ko, 'c', '0', 'r', retired, 'a', '')
      redis.call('HINCRBY', ko, 'v', 1)
      if alias ~= '' then redis.call('HSET', P .. ':aliases', alias, new) end
      redis.call('HSET', P .. ':rotated', old, new)
      if tonumber(bal) > 0 then
        ledger(old, -tonumber(bal), 'rotate_out', 0, ts, memo)
        ledger(new, tonumber(bal), 'rotate_in', tonumber(bal), ts, memo)
      end
      out[#out + 1] = '1 ' .. state(kn)
      touched[#touched + 1] = old
      touched[#touched + 1] = new
    end
    i = i + 10
  elseif op == 'docif' then  -- kind id body field expected: written only if the stored field is expected
    local kind, id, body, field, expected = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    i = i + 6
    local stored = redis.call('HGET', P .. ':d:' .. kind, id)
    if stored and tostring(cjson.decode(stored)[field]) == expected then
      redis.call('HSET', P .. ':d:' .. kind, id, body)
      redis.call('PUBLISH', P .. ':events', 'd|' .. inst .. '|' .. kind .. '|' .. id)
      out[#out + 1] = '1'
    else
      out[#out + 1] = '0'
    end
  elseif op == 'docnew' then  -- kind id body: written only if no document has the id
    local kind, id, body = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    i = i + 4
    if redis.call('HSETNX', P .. ':d:' .. kind, id, body) == 1 then
      redis.call('SADD', P .. ':dockinds', kind)
      redis.call('PUBLISH', P .. ':events', 'd|' .. inst .. '|' .. kind .. '|' .. id)
      out[#out + 1] = '1'
    else
      out[#out + 1] = '0'
    end
  elseif op == 'doc' then  -- kind id body ('' deletes)
    local kind, id, body = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    i = i + 4
    if body == '' then
      out[#out + 1] = tostring(redis.call('HDEL', P .. ':d:' .. kind, id))
    else
      redis.call('HSET', P .. ':d:' .. kind, id, body)
      redis.call('SADD', P .. ':dockinds', kind)
      out[#out + 1] = '1'
    end
    redis.call('PUBLISH', P .. ':events', 'd|' .. inst .. '|' .. kind .. '|' .. id)
  else
    return redis.error_reply('unknown op ' .. tostring(op))
  end
end
local money = {}
for h in pairs(moved) do money[#money + 1] = h .. ' ' .. state(key(h)) end
if tell and #money > 0 then redis.call('PUBLISH', P .. ':events', 'm|' .. inst .. '|' .. table.concat(money, '|')) end
if #touched > 0 then redis.call('PUBLISH', P .. ':events', 'k|' .. inst .. '|' .. table.concat(touched, '|')) end
local reply = table.concat(out, '\n')
redis.call('HSET', applied, lane, batch)
redis.call('SET', P .. ':last:' .. lane, reply)
return reply
"""

# The balances of keys a batch moved without telling (MONEY's `tell` off): prefix instance hash...
TELL = r"""
local P, inst = ARGV[1], ARGV[2]
local money = {}
for j = 3, #ARGV do
  local f = redis.call('HMGET', P .. ':k:' .. ARGV[j], 'c', 's', 'n', 'u', 'v')
  if f[1] then
    money[#money + 1] = ARGV[j] .. ' ' .. f[1] .. ' ' .. f[2] .. ' ' .. f[3] .. ' ' .. f[4] .. ' ' .. f[5]
  end
end
if #money > 0 then redis.call('PUBLISH', P .. ':events', 'm|' .. inst .. '|' .. table.concat(money, '|')) end
return #money
"""

# A batch whose reply was lost for good: 'applied' (its reply follows) or 'fenced' (it can never apply now).
FENCE = r"""
local P, lane, batch = ARGV[1], ARGV[2], tonumber(ARGV[3])
local applied = P .. ':applied'
local done = tonumber(redis.call('HGET', applied, lane) or '0')
if batch <= done then return 'applied\n' .. (redis.call('GET', P .. ':last:' .. lane) or '') end
redis.call('HSET', applied, lane, batch)
redis.call('SET', P .. ':last:' .. lane, '')
return 'fenced'
"""

# Sliding-window rate limit: prefix subject key_hash limit mode(hit|peek) unique window_ms now_ms. The time is
# the caller's (the Store protocol passes it; instances keep their clocks in step with NTP, as any fleet
# enforcing per-minute limits must): tests move it at will, and Redis's own clock plays no part.
RATE = r"""
local P, subject, owner, limit, mode, unique, window = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6],
  tonumber(ARGV[7])
local now = tonumber(ARGV[8])
local z = P .. ':rw:' .. subject
redis.call('ZREMRANGEBYSCORE', z, '-inf', now - window)
local used = redis.call('ZCARD', z)
local reset = math.floor(window / 1000)
if used > 0 then
  local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
  reset = math.floor((tonumber(first[2]) + window - now) / 1000) + 1
end
if mode == 'hit' and used < limit then
  redis.call('ZADD', z, now, string.format('%d', now) .. '-' .. unique)
  redis.call('PEXPIRE', z, window * 2)
  local rs = P .. ':rs:' .. owner
  redis.call('SADD', rs, subject)
  redis.call('PEXPIRE', rs, window)
  return {1, limit - used - 1, reset}
end
if used < limit then return {1, limit - used, reset} end
return {0, 0, reset}
"""

# A rotated key's windows follow it: every subject of `old` (`old` and `old\0tool`) renamed for `new`.
RATE_MOVE = r"""
local P, old, new = ARGV[1], ARGV[2], ARGV[3]
local rs = P .. ':rs:' .. old
for _, subject in ipairs(redis.call('SMEMBERS', rs)) do
  local renamed = new .. string.sub(subject, #old + 1)
  if redis.call('EXISTS', P .. ':rw:' .. subject) == 1 then
    redis.call('RENAME', P .. ':rw:' .. subject, P .. ':rw:' .. renamed)
    redis.call('SADD', P .. ':rs:' .. new, renamed)
    redis.call('PEXPIRE', P .. ':rs:' .. new, 60000)
  end
end
redis.call('DEL', rs)
return 1
"""
