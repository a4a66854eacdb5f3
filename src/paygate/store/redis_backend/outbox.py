"""The webhook outbox on Redis (`Outbox`, as `store/sqlite_outbox.py` on SQLite), one partition per process.

Each gateway's webhook service mirrors and schedules its own queued events and batches in memory, so each
owner (one gateway instance) has a partition of its own, under `{prefix}:outbox:<owner>:`:
- `ev`: HASH event id -> `[ts, kind, type]` JSON, a newline, the event JSON as given;
- `qd`: SET of destinations with queued events; `q:<dest>`: ZSET of their event ids, scored by id;
- `bs`: ZSET of batch ids; `b:<id>`: HASH of one batch (dest, body, n, types, attempt, next_at, created, error);
  `retry`: SET of the batch ids that failed at least once;
- `ds`: ZSET of dead-letter ids; `d:<id>`: HASH of one dead letter (a batch's fields and attempts, failed_at,
  status).
Ids come from one shared HASH of counters (`{prefix}:outbox-ids`), so they are unique across owners and an
adopted partition merges into another without a clash; `{prefix}:outbox-owners` lists the partitions.
Every move is one Lua script (or MULTI), so an event is always in exactly one place; bodies are stored and
returned as the bytes given. Timestamps travel as `repr(float)` strings and come back exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import orjson
import redis

from paygate.store.outbox import Batch, DeadLetter, OutboxRow, OutboxState, QueuedEvent
from paygate.store.redis_backend.audit import redis_call, require_bytes
from paygate.store.redis_backend.names import Names

# Lua 5.1's unpack() has a stack limit: delete many fields or keys a slice at a time.
_DEL_SLICED = """
local function del_sliced(cmd, key, items)
  for i = 1, #items, 1000 do
    if key then redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
    else redis.call(cmd, unpack(items, i, math.min(i + 999, #items))) end
  end
end
"""

# KEYS: counters, owners, qd, ev. ARGV: partition, owner, then (dest, value) per event.
_ENQUEUE = """
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
_OLDEST = """
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local values = {}
for i, id in ipairs(ids) do values[i] = redis.call('HGET', KEYS[2], id) end
return {ids, values}
"""

# KEYS: q, ev. ARGV: after_id. The value of the first event after an id, or nil.
_NEXT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, 1)
if #ids == 0 then return false end
return redis.call('HGET', KEYS[2], ids[1])
"""

# KEYS: counters, owners, qd, ev, q, bs. ARGV: partition, owner, dest, through_id, body, n, types JSON, now.
_FORM_BATCH = (
    _DEL_SLICED
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
_RESCHEDULE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'attempt', ARGV[2], 'next_at', ARGV[3], 'error', ARGV[4])
if tonumber(ARGV[2]) > 0 then redis.call('SADD', KEYS[2], ARGV[1]) else redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
"""

# KEYS: counters, b, bs, retry, ds. ARGV: partition, batch id, attempts, error, status, now. The batch's hash
# is renamed, not copied: its body moves untouched.
_DEAD_LETTER = """
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

_BATCH_FIELDS = ("dest", "n", "types", "attempt", "next_at", "created", "error")
_DEAD_FIELDS = ("dest", "body", "n", "types", "attempts", "created", "failed_at", "error", "status")

# KEYS: qd, ev, bs, ds. ARGV: partition, then the batch fields. {pending (dest, n, oldest value)…, batches
# (id, fields…)…, dead (dest, n)…}.
_STATE = f"""
local p, pending, batches, dead, per_dest = ARGV[1], {{}}, {{}}, {{}}, {{}}
for _, dest in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local q = p .. ':q:' .. dest
  local first = redis.call('ZRANGE', q, 0, 0)[1]
  if first then pending[#pending + 1] = {{dest, redis.call('ZCARD', q), redis.call('HGET', KEYS[2], first)}} end
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  batches[#batches + 1] = {{id, redis.call('HMGET', p .. ':b:' .. id, {", ".join(f"'{f}'" for f in _BATCH_FIELDS)})}}
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local dest = redis.call('HGET', p .. ':d:' .. id, 'dest')
  if dest then per_dest[dest] = (per_dest[dest] or 0) + 1 end
end
for dest, n in pairs(per_dest) do dead[#dead + 1] = {{dest, n}} end
return {{pending, batches, dead}}
"""

# KEYS: ds. ARGV: partition. Every dead letter, oldest first: {(id, fields…)…}.
_DEAD_LETTERS = f"""
local out = {{}}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = {{id, redis.call('HMGET', ARGV[1] .. ':d:' .. id, {", ".join(f"'{f}'" for f in _DEAD_FIELDS)})}}
end
return out
"""

# KEYS: ds. ARGV: partition.
_CLEAR_DEAD = (
    _DEL_SLICED
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
_DELETE_DEAD = """
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('DEL', ARGV[1] .. ':d:' .. ARGV[i])
end
return n
"""

# KEYS: counters, owners, bs, ds. ARGV: partition, owner, now, then (letter id, dest, body, n, types, created)
# per letter. As on SQLite the batch is made of the letter as given; its stored copy is removed.
_REPLAY = """
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
_ADOPT = """
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
_OWNERS = """
local out = {}
for _, o in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local p = ARGV[1] .. ':' .. o
  if redis.call('EXISTS', p .. ':qd', p .. ':bs', p .. ':ds') > 0 then out[#out + 1] = o
  else redis.call('SREM', KEYS[1], o) end
end
return out
"""


def check_owner(owner: str) -> str:
    if not owner or any(c in owner for c in "{}: \n\t"):
        raise ValueError(f"an outbox owner must be a plain word, not {owner!r}")
    return owner


def _ts(value: float) -> str:
    return repr(float(value))


def _queued(raw_id: bytes | int, value: bytes) -> QueuedEvent:
    head, _, event = value.partition(b"\n")
    ts, kind, type_ = orjson.loads(head)
    return QueuedEvent(int(raw_id), float(ts), str(kind), str(type_), event.decode())


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _batch(raw_id: bytes, f: list[Any]) -> Batch:  # f: _BATCH_FIELDS
    return Batch(
        int(raw_id), f[0].decode(), int(f[1]), orjson.loads(f[2]), int(f[3]), float(f[4]), float(f[5]), _text(f[6])
    )


def _dead_letter(raw_id: bytes, f: list[Any]) -> DeadLetter:  # f: _DEAD_FIELDS
    return DeadLetter(
        int(raw_id),
        f[0].decode(),
        f[1],
        int(f[2]),
        orjson.loads(f[3]),
        int(f[4]),
        float(f[5]),
        float(f[6]),
        _text(f[7]),
        int(f[8]),
    )


class RedisOutbox:
    """Implements `paygate.store.outbox.Outbox`: the partition of `owner` (this gateway instance)."""

    def __init__(self, client: redis.Redis, names: Names, owner: str) -> None:
        require_bytes(client)
        self._r = client
        self.owner = check_owner(owner)
        self._root = names.sub("outbox")
        self._p = names.sub("outbox", owner)
        self._counters = names.sub("outbox-ids")
        self._owners = names.sub("outbox-owners")
        self._qd, self._ev = f"{self._p}:qd", f"{self._p}:ev"
        self._bs, self._retry, self._ds = f"{self._p}:bs", f"{self._p}:retry", f"{self._p}:ds"
        script = client.register_script
        self._enqueue, self._oldest, self._next = script(_ENQUEUE), script(_OLDEST), script(_NEXT)
        self._form, self._reschedule, self._dead = script(_FORM_BATCH), script(_RESCHEDULE), script(_DEAD_LETTER)
        self._state, self._letters, self._clear = script(_STATE), script(_DEAD_LETTERS), script(_CLEAR_DEAD)
        self._replay, self._adopt, self._list = script(_REPLAY), script(_ADOPT), script(_OWNERS)
        self._delete_dead = script(_DELETE_DEAD)

    def _q(self, dest: str) -> str:
        return f"{self._p}:q:{dest}"

    def _b(self, batch_id: int) -> str:
        return f"{self._p}:b:{int(batch_id)}"

    # events ----------------------------------------------------------------------------------------------
    def enqueue(self, rows: Sequence[OutboxRow]) -> None:
        if not rows:
            return
        args: list[str | bytes] = [self._p, self.owner]
        for dest, ts, kind, type_, event in rows:
            args += [dest, orjson.dumps([float(ts), kind, type_]) + b"\n" + event.encode()]
        redis_call(partial(self._enqueue, keys=[self._counters, self._owners, self._qd, self._ev], args=args))

    def oldest(self, dest: str, limit: int) -> list[QueuedEvent]:
        if limit <= 0:
            return []
        ids, values = redis_call(partial(self._oldest, keys=[self._q(dest), self._ev], args=[limit]))
        return [_queued(i, v) for i, v in zip(ids, values, strict=True) if v is not None]

    def next_ts(self, dest: str, after_id: int) -> float | None:
        value = redis_call(partial(self._next, keys=[self._q(dest), self._ev], args=[int(after_id)]))
        return None if value is None else _queued(0, value).ts

    # batches ---------------------------------------------------------------------------------------------
    def form_batch(
        self, dest: str, through_id: int, body: bytes, event_count: int, event_types: list[str], now: float
    ) -> int:
        keys = [self._counters, self._owners, self._qd, self._ev, self._q(dest), self._bs]
        args: list[str | bytes | int] = [
            self._p,
            self.owner,
            dest,
            int(through_id),
            body,
            event_count,
            orjson.dumps(event_types),
            _ts(now),
        ]
        return int(redis_call(partial(self._form, keys=keys, args=args)))

    def batch_body(self, batch_id: int) -> bytes | None:
        return cast("bytes | None", redis_call(partial(self._r.hget, self._b(batch_id), "body")))

    def delivered(self, batch_id: int) -> None:
        def move() -> None:
            with self._r.pipeline(transaction=True) as p:
                p.delete(self._b(batch_id))
                p.zrem(self._bs, int(batch_id))
                p.srem(self._retry, int(batch_id))
                p.execute()

        redis_call(move)

    def reschedule(self, batch_id: int, attempt: int, next_at: float, error: str) -> None:
        args: list[str | int] = [int(batch_id), int(attempt), _ts(next_at), error]
        redis_call(partial(self._reschedule, keys=[self._b(batch_id), self._retry], args=args))

    def dead_letter(self, batch_id: int, attempts: int, error: str, status: int, now: float) -> None:
        keys = [self._counters, self._b(batch_id), self._bs, self._retry, self._ds]
        args: list[str | int] = [self._p, int(batch_id), int(attempts), error, int(status), _ts(now)]
        redis_call(partial(self._dead, keys=keys, args=args))

    # dead letters ----------------------------------------------------------------------------------------
    def dead_letters(self) -> list[DeadLetter]:
        rows = redis_call(partial(self._letters, keys=[self._ds], args=[self._p]))
        return [_dead_letter(i, f) for i, f in rows]

    def clear_dead(self) -> int:
        return int(redis_call(partial(self._clear, keys=[self._ds], args=[self._p])))

    def delete_dead(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        args: list[str | int] = [self._p, *(int(i) for i in ids)]
        return int(redis_call(partial(self._delete_dead, keys=[self._ds], args=args)))

    def replay(self, letters: Sequence[DeadLetter], now: float) -> list[int]:
        if not letters:
            return []
        args: list[str | bytes | int] = [self._p, self.owner, _ts(now)]
        for d in letters:
            args += [int(d.id), d.dest, d.body, int(d.event_count), orjson.dumps(d.event_types), _ts(d.created)]
        ids = redis_call(partial(self._replay, keys=[self._counters, self._owners, self._bs, self._ds], args=args))
        return [int(i) for i in ids]

    # the partition ---------------------------------------------------------------------------------------
    def state(self) -> OutboxState:
        pending, batches, dead = redis_call(
            partial(self._state, keys=[self._qd, self._ev, self._bs, self._ds], args=[self._p])
        )
        return OutboxState(
            {d.decode(): (int(n), _queued(0, v).ts) for d, n, v in pending if v is not None},
            [_batch(i, f) for i, f in batches],
            {d.decode(): int(n) for d, n in dead},
        )

    def health(self) -> tuple[int, int]:
        """(batches waiting for a retry, dead letters) of this partition."""

        def read() -> list[Any]:
            with self._r.pipeline(transaction=True) as p:
                p.scard(self._retry)
                p.zcard(self._ds)
                return p.execute()

        retries, dead = redis_call(read)
        return int(retries), int(dead)

    def adopt(self, dead_owner: str) -> int:
        """Move everything of `dead_owner`'s partition (queued events, batches, dead letters) into this one, in
        one atomic script; how many items moved. For an instance that died: its webhooks are not lost. The
        caller reloads its mirrors afterwards (`WebhookQueue.load`)."""
        if check_owner(dead_owner) == self.owner:
            raise ValueError("an outbox cannot adopt its own partition")
        args = [self._p, self.owner, f"{self._root}:{dead_owner}", dead_owner]
        return int(redis_call(partial(self._adopt, keys=[self._owners], args=args)))

    def owners(self) -> list[str]:
        """The owners whose partition holds anything (queued events, batches or dead letters), sorted."""
        found = redis_call(partial(self._list, keys=[self._owners], args=[self._root]))
        return sorted(o.decode() for o in found)
