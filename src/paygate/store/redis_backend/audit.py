"""The audit log on Redis, shared by every gateway of a fleet (`AuditLog`, as `store/sqlite_audit.py` on SQLite).

Layout (all under `{prefix}:audit:`):
- `e`: HASH id -> `[ts, type, actor]` JSON, a newline, the data JSON (the header is what Lua reads);
- `all`, `c:traffic`, `c:auth`, `c:other`, `t:<type>`, `a:<actor>`: ZSETs of ids scored by id (every entry,
  the three retention classes, per type, per actor), so "newest first" is a reverse range and prune by count
  is a range from the front;
- `ts`: ZSET of ids scored by timestamp (age prune, stats, time-only counts);
- `nt` / `na`: HASH type / actor -> number of entries (stats without a scan).
Every write is one Lua script, so the indexes never disagree. Ids come from `names.event_ids`, the counter the
fleet's event buses reserve blocks from: an id allocated here never collides with one a bus handed out.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any, TypeVar, cast

import orjson
import redis

from paygate.store.audit_log import (
    AUTH_FAILURE_MAX_ENTRIES,
    AUTH_FAILURE_TYPES,
    TRAFFIC_TYPES,
    AuditEntry,
    AuditFilter,
    AuditStats,
)
from paygate.store.errors import StoreUnavailable
from paygate.store.redis_backend.names import Names, guarded

T = TypeVar("T")
CHUNK = 500  # ids read or deleted per round trip: bounded work per call, whatever the log's size
TS_FETCH_MAX = 10_000  # a time range this small is read whole (then sorted by id) rather than scanned for


def redis_call(call: Callable[[], T]) -> T:
    """`guarded`, and any other refusal of the server (OOM, READONLY during a failover…) is StoreUnavailable
    too: callers handle one error, and our scripts fail before their first write in those cases."""
    try:
        return guarded(call)
    except redis.exceptions.RedisError as exc:
        raise StoreUnavailable(f"redis refused the command: {exc}") from exc


def require_bytes(client: redis.Redis) -> None:
    if client.get_connection_kwargs().get("decode_responses"):
        raise ValueError("the redis client must return bytes (decode_responses=False): bodies are kept byte-exact")


def _lua_set(names: Iterable[str]) -> str:
    return "{" + ", ".join(f'["{n}"] = true' for n in names) + "}"


# KEYS: counter, e, all, ts, c:traffic, c:auth, c:other, nt, na; ARGV[1]: the `{prefix}:audit` base.
_COMMON = f"""
local counter, e, all, tsz, nt, na = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[8], KEYS[9]
local base = ARGV[1]
local TRAFFIC, AUTH = {_lua_set(TRAFFIC_TYPES)}, {_lua_set(AUTH_FAILURE_TYPES)}
local function class(t)
  if TRAFFIC[t] then return KEYS[5] elseif AUTH[t] then return KEYS[6] else return KEYS[7] end
end
local function uncount(h, field)
  if redis.call('HINCRBY', h, field, -1) <= 0 then redis.call('HDEL', h, field) end
end
local function drop(id)
  local v = redis.call('HGET', e, id)
  if not v then return 0 end
  local head = cjson.decode(string.sub(v, 1, string.find(v, '\\n', 1, true) - 1))
  local t, a = head[2], head[3]
  redis.call('HDEL', e, id)
  for _, z in ipairs({{all, tsz, class(t), base .. ':t:' .. t, base .. ':a:' .. a}}) do redis.call('ZREM', z, id) end
  uncount(nt, t)
  uncount(na, a)
  return 1
end
"""

# ARGV[2..]: (id or "", ts, type, actor, value) per row. Returns the ids, in order.
_APPEND = (
    _COMMON
    + """
local ids = {}
for i = 2, #ARGV, 5 do
  local id, ts, t, a = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if id == '' then
    id = tostring(redis.call('INCR', counter))
  else
    if tonumber(id) > tonumber(redis.call('GET', counter) or '0') then
      redis.call('SET', counter, id)  -- later allocations start above a caller's id
    end
    drop(id)  -- a restored row replaces the entry with its id
  end
  redis.call('HSET', e, id, ARGV[i + 4])
  for _, z in ipairs({all, class(t), base .. ':t:' .. t, base .. ':a:' .. a}) do redis.call('ZADD', z, id, id) end
  redis.call('ZADD', tsz, ts, id)
  redis.call('HINCRBY', nt, t, 1)
  redis.call('HINCRBY', na, a, 1)
  ids[#ids + 1] = id
end
return ids
"""
)

# ARGV[2]: mode, ARGV[3]: its bound, ARGV[4]: how many at most. Deletes one chunk; returns how many went.
_DELETE_CHUNK = (
    _COMMON
    + """
local mode, bound, chunk = ARGV[2], ARGV[3], tonumber(ARGV[4])
local ids
if mode == 'age' then
  ids = redis.call('ZRANGEBYSCORE', tsz, '-inf', '(' .. bound, 'LIMIT', 0, chunk)
elseif mode == 'through' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', bound, 'LIMIT', 0, chunk)
else  -- keep the newest `bound` of the class KEYS[mode]
  local z = KEYS[tonumber(mode)]
  local excess = math.min(redis.call('ZCARD', z) - tonumber(bound), chunk)
  if excess <= 0 then return 0 end
  ids = redis.call('ZRANGE', z, 0, excess - 1)
end
local n = 0
for _, id in ipairs(ids) do n = n + drop(id) end
return n
"""
)


def _decode(raw_id: int, value: bytes) -> AuditEntry:
    head, _, data = value.partition(b"\n")
    ts, type_, actor = orjson.loads(head)
    return AuditEntry(raw_id, float(ts), str(type_), str(actor), orjson.loads(data))


def _matches(e: AuditEntry, where: AuditFilter) -> bool:
    return (
        (not where.types or e.type in where.types)
        and (where.actor is None or e.actor == where.actor)
        and (where.since is None or e.timestamp >= where.since)
        and (where.until is None or e.timestamp <= where.until)
    )


def _names_key(entry: AuditEntry, masked: str) -> bool:
    # as SQLite's `json_each … key LIKE '%keymasked'`: top-level fields, ASCII case-insensitive, text values
    return any(k.lower().endswith("keymasked") and v == masked for k, v in entry.data.items() if isinstance(v, str))


class RedisAuditLog:
    """Implements `paygate.store.audit_log.AuditLog` on a shared Redis."""

    def __init__(self, client: redis.Redis, names: Names) -> None:
        require_bytes(client)
        self._r = client
        self._names = names
        self._base = names.sub("audit")
        self._e = names.sub("audit", "e")
        self._all = names.sub("audit", "all")
        self._ts = names.sub("audit", "ts")
        self._traffic = names.sub("audit", "c", "traffic")
        self._auth = names.sub("audit", "c", "auth")
        self._other = names.sub("audit", "c", "other")
        self._nt = names.sub("audit", "nt")
        self._na = names.sub("audit", "na")
        self._keys = [
            names.event_ids,
            self._e,
            self._all,
            self._ts,
            self._traffic,
            self._auth,
            self._other,
            self._nt,
            self._na,
        ]
        self._append = client.register_script(_APPEND)
        self._delete_chunk = client.register_script(_DELETE_CHUNK)

    def _type_key(self, type_: str) -> str:
        return f"{self._base}:t:{type_}"

    def _actor_key(self, actor: str) -> str:
        return f"{self._base}:a:{actor}"

    # writes ----------------------------------------------------------------------------------------------
    def reserve_ids(self, count: int) -> int:
        """The first of `count` fresh ids, unique across the fleet (an event bus numbers its events with them)."""
        if count < 1:
            raise ValueError("reserve at least one id")
        last = redis_call(lambda: self._r.incrby(self._names.event_ids, count))
        return int(last) - count + 1

    def append(self, ts: float, type_: str, actor: str, data: dict[str, Any]) -> int:
        return self._write([(None, ts, type_, actor, data)])[0]

    def append_many(self, rows: Sequence[tuple[int | None, float, str, str, dict[str, Any]]]) -> None:
        """Insert `(id, ts, type, actor, data)` rows in one script; an id of None gets a fresh one."""
        if rows:
            self._write(rows)

    def _write(self, rows: Sequence[tuple[int | None, float, str, str, dict[str, Any]]]) -> list[int]:
        args: list[str | bytes] = [self._base]
        for id_, ts, type_, actor, data in rows:
            # default=str: an event field of an unexpected type is recorded as text rather than lost.
            value = orjson.dumps([float(ts), type_, actor]) + b"\n" + orjson.dumps(data, default=str)
            args += ["" if id_ is None else str(int(id_)), repr(float(ts)), type_, actor, value]
        ids = redis_call(lambda: self._append(keys=self._keys, args=args))
        return [int(i) for i in ids]

    def delete_traffic_through(self, last_id: int) -> int:
        return self._delete_all("through", str(int(last_id)))

    def prune(
        self, now: float, max_entries: int, max_age_seconds: float, max_auth_failures: int = AUTH_FAILURE_MAX_ENTRIES
    ) -> int:
        """As SQLite: older than the age, then each class (traffic, auth failures, the rest) down to its
        budget. Chunk by chunk, each chunk atomic: a large prune never blocks the server for long."""
        removed = self._delete_all("age", repr(float(now - max_age_seconds)))
        for class_index, keep in ((5, max_entries), (6, max_auth_failures), (7, max_entries)):
            removed += self._delete_all(str(class_index), str(max(0, int(keep))))
        return removed

    def _delete_all(self, mode: str, bound: str) -> int:
        removed = 0
        while True:
            n = int(redis_call(partial(self._delete_chunk, keys=self._keys, args=[self._base, mode, bound, CHUNK])))
            removed += n
            if n < CHUNK:
                return removed

    # reads -----------------------------------------------------------------------------------------------
    def traffic_ids(self, limit: int) -> list[int]:
        if limit <= 0:
            return []
        ids = cast("list[bytes]", redis_call(lambda: self._r.zrevrange(self._traffic, 0, limit - 1)))
        return [int(i) for i in reversed(ids)]

    def max_id(self) -> int:
        """The highest id handed out (by a reservation too), so a process seeding from it never reuses one."""

        def read() -> list[Any]:
            with self._r.pipeline(transaction=True) as p:
                p.get(self._names.event_ids)
                p.zrevrange(self._all, 0, 0)
                return p.execute()

        counter, top = redis_call(read)
        return max(int(counter or 0), int(top[0]) if top else 0)

    def query(self, where: AuditFilter, limit: int) -> list[AuditEntry]:
        """Matching entries, newest first, at most `limit` (negative: no limit, as SQLite's LIMIT -1)."""
        limit = sys.maxsize if limit < 0 else limit
        if limit == 0:
            return []
        candidates = self._candidates(where, self._plan(where))
        return list(islice((e for e in self._entries(candidates, limit) if _matches(e, where)), limit))

    def about_key(self, masked: str, limit: int) -> list[AuditEntry]:
        """Admin entries (auth failures and the rest, never traffic) naming `masked` in a `…keyMasked` field,
        newest first: a scan, as on SQLite, over the retention-bounded non-traffic classes only."""
        if limit <= 0:
            return []
        scans = [self._newest_first(self._auth), self._newest_first(self._other)]
        ids = heapq.merge(*scans, reverse=True)
        return list(islice((e for e in self._entries(ids, limit) if _names_key(e, masked)), limit))

    def count(self, where: AuditFilter) -> int:
        plan = self._plan(where)
        if plan.exact:
            return plan.size
        return sum(1 for e in self._entries(self._candidates(where, plan)) if _matches(e, where))

    def stats(self, top_actors: int) -> AuditStats:
        def read() -> list[Any]:
            with self._r.pipeline(transaction=True) as p:
                p.zcard(self._all)
                p.zrange(self._ts, 0, 0, withscores=True)
                p.zrange(self._ts, -1, -1, withscores=True)
                p.hgetall(self._nt)
                p.hgetall(self._na)
                return p.execute()

        total, oldest, newest, types, actors = redis_call(read)

        def ranked(counts: dict[bytes, bytes]) -> list[tuple[str, int]]:
            return sorted(((k.decode(), int(n)) for k, n in counts.items()), key=lambda kv: (-kv[1], kv[0]))

        return AuditStats(
            int(total),
            float(oldest[0][1]) if oldest else None,
            float(newest[0][1]) if newest else None,
            dict(ranked(types)),
            dict(ranked(actors)[: max(0, top_actors)]),
        )

    # scanning --------------------------------------------------------------------------------------------
    def _plan(self, where: AuditFilter) -> _Plan:
        """The cheapest index to take candidates from: an exact one if any (a count is then its size)."""
        types = sorted(set(where.types))
        timed = where.since is not None or where.until is not None
        lo, hi = _score_range(where)

        def sizes() -> list[Any]:
            with self._r.pipeline(transaction=False) as p:
                p.zcard(self._all)
                for t in types:
                    p.zcard(self._type_key(t))
                if where.actor is not None:
                    p.zcard(self._actor_key(where.actor))
                if timed:
                    p.zcount(self._ts, lo, hi)
                return p.execute()

        counts = [int(n) for n in redis_call(sizes)]
        options = [_Plan([self._all], counts[0], exact=not (timed or types or where.actor is not None))]
        at = 1
        if types:
            exact = where.actor is None and not timed
            options.append(_Plan([self._type_key(t) for t in types], sum(counts[at : at + len(types)]), exact))
            at += len(types)
        if where.actor is not None:
            options.append(_Plan([self._actor_key(where.actor)], counts[at], exact=not types and not timed))
            at += 1
        if timed:
            options.append(_Plan([self._ts], counts[at], exact=not types and where.actor is None, by_time=True))
        exact_plans = [o for o in options if o.exact]
        if exact_plans:
            return exact_plans[0]
        # a time range is read whole, then sorted by id: only when it is small
        usable = [o for o in options if not o.by_time or o.size <= TS_FETCH_MAX]
        return min(usable, key=lambda o: o.size)

    def _candidates(self, where: AuditFilter, plan: _Plan) -> Iterator[int]:
        """Ids that may match, newest first: bounded chunks of one index (a superset of the matches)."""
        if plan.by_time and plan.size <= TS_FETCH_MAX:
            lo, hi = _score_range(where)
            ids = cast("list[bytes]", redis_call(lambda: self._r.zrangebyscore(self._ts, lo, hi)))
            return iter(sorted((int(i) for i in ids), reverse=True))
        if plan.by_time:  # an exact but large time range: scan every entry by id instead
            return self._newest_first(self._all)
        return heapq.merge(*(self._newest_first(k) for k in plan.keys), reverse=True)

    def _newest_first(self, key: str) -> Iterator[int]:
        top = "+inf"
        while True:
            ids = cast(
                "list[bytes]", redis_call(partial(self._r.zrevrangebyscore, key, top, "-inf", start=0, num=CHUNK))
            )
            yield from (int(i) for i in ids)
            if len(ids) < CHUNK:
                return
            top = f"({int(ids[-1])}"

    def _entries(self, ids: Iterable[int], first: int = CHUNK) -> Iterator[AuditEntry]:
        """The entries of `ids`, in order, read a chunk at a time (one deleted meanwhile is skipped); chunks
        start at `first` (the caller's limit) and double, so a small query reads little."""
        it = iter(ids)
        size = max(1, min(first, CHUNK))
        while chunk := list(islice(it, size)):
            values = cast("list[bytes | None]", redis_call(partial(self._r.hmget, self._e, chunk)))
            yield from (_decode(i, v) for i, v in zip(chunk, values, strict=True) if v is not None)
            size = min(size * 2, CHUNK)


@dataclass(frozen=True, slots=True)
class _Plan:
    """Candidates of a filter: the union of `keys` scanned by id, or (`by_time`) the ids of a time range;
    `exact` when every candidate matches."""

    keys: list[str]
    size: int
    exact: bool
    by_time: bool = False


def _score_range(where: AuditFilter) -> tuple[str, str]:
    lo = "-inf" if where.since is None else repr(float(where.since))
    hi = "+inf" if where.until is None else repr(float(where.until))
    return lo, hi
