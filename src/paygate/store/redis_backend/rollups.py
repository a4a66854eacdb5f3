"""Call rollups on Redis (the CallRollups role): the same sums at several levels (`LEVELS`, as on SQLite),
each a set of HASHes: one per hour (`{prefix}:ru:hk:<hour>`, `…:ru:h:<hour>`, `…:ru:hn:<hour>`), per day
(`…:ru:d:<day>`, `…:ru:dn:<day>`, `…:ru:dk:<day>`), for all time (`…:ru:t`, `…:ru:a`, `…:ru:at`), or per key
(`…:ru:k:<key>:<day>`, `…:ru:ka:<key>`, read only for one key's reports). A field is the JSON list of the
level's other dimensions; its value the measures packed as text ("calls allowed denied failed credits refunded
duration_ms l0 … l11").
A batch is added to every level by one Lua script (atomic, like a MULTI), so every instance's batches add up
exactly; `{prefix}:ru:span` holds the first and last hour with any call.

A rotated key's rows keep its old hash; reads follow the `rotated` map (as the usage stream's do).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import orjson
import redis

from paygate.store.redis_backend.names import Names, as_text, guarded
from paygate.store.rollup_counts import check, distinct_of_rows, spread
from paygate.store.rollups import (
    BASE,
    BUCKETS,
    CallFact,
    Counted,
    Dim,
    Distinct,
    Level,
    Part,
    RollupQuery,
    RollupRow,
    fold,
    plan,
)

PER_KEY_HOURS = Level("k", "hour", ("key", "tool", "namespace", "reason"), key_access=True, key_only=True)
PER_KEY = Level("ka", "all", ("key", "tool", "namespace", "reason"), key_access=True, key_only=True)
LEVELS: tuple[Level, ...] = (
    Level("hk", "hour", ("key", "tool", "namespace", "reason")),
    Level("h", "hour", ("tool", "namespace", "reason")),
    Level("hn", "hour", ("namespace", "reason")),
    Level("d", "day", ("tool", "namespace", "reason")),
    Level("dn", "day", ("namespace", "reason")),
    Level("dk", "day", ("key", "namespace", "reason")),
    Level("t", "all", ("tool", "namespace", "reason")),
    Level("a", "all", ("key", "namespace", "reason")),
    Level("at", "all", ("key", "tool", "namespace", "reason")),
    PER_KEY_HOURS,  # a HASH per key and day, its fields [hour, tool, namespace, reason]
    PER_KEY,  # a HASH per key, its fields [tool, namespace, reason]
)
WIDTH = 7 + BUCKETS  # measures per value
_INDEX: dict[Dim, int] = {"key": 1, "tool": 2, "namespace": 3, "reason": 4}

# KEYS: the hashes; ARGV: first hour, last hour, then (hash number, field, packed measures) per field.
ADD = """
local span = KEYS[1]
local low, high = redis.call('HGET', span, 'first'), redis.call('HGET', span, 'last')
if not low or tonumber(low) > tonumber(ARGV[1]) then redis.call('HSET', span, 'first', ARGV[1]) end
if not high or tonumber(high) < tonumber(ARGV[2]) then redis.call('HSET', span, 'last', ARGV[2]) end
for i = 3, #ARGV, 3 do
  local name, field, add = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2]
  local held = redis.call('HGET', name, field)
  if held then
    local sums, n = {}, 0
    for v in string.gmatch(held, '%S+') do n = n + 1; sums[n] = tonumber(v) end
    n = 0
    for v in string.gmatch(add, '%S+') do n = n + 1; sums[n] = string.format('%.17g', sums[n] + tonumber(v)) end
    add = table.concat(sums, ' ')
  end
  redis.call('HSET', name, field, add)
end
return 1
"""


def _pack(measures: Sequence[Any]) -> str:
    return " ".join(repr(float(v)) if i == 6 else str(v) for i, v in enumerate(measures))


class RedisRollups:
    def __init__(self, client: redis.Redis, names: Names, successors: Callable[[], dict[str, str]]) -> None:
        self.client = client
        self.names = names
        self.span_name = names.sub("ru", "span")
        self._successors = successors
        self._add = client.register_script(ADD)

    def _bucket(self, level: Level, unit: int | None, key_hash: str | None = None) -> str:
        parts = [level.name] if key_hash is None else [level.name, key_hash]
        return self.names.sub("ru", *parts, *(() if unit is None else (str(unit),)))

    def _placed(self, level: Level, group: tuple[Any, ...]) -> tuple[str, str] | None:
        """A base group's bucket and field at `level` (None: the level keeps no such call)."""
        hour = group[0]
        if level.key_only:
            if group[1] is None:
                return None  # a call without a key is in no key's buckets
            if level.grain == "hour":
                rest = [hour, *group[2:]]
                return self._bucket(level, hour // 24, group[1]), orjson.dumps(rest).decode()
            return self._bucket(level, None, group[1]), orjson.dumps(list(group[2:])).decode()
        unit = {"hour": hour, "day": hour // 24, "all": None}[level.grain]
        field = orjson.dumps([group[_INDEX[d]] for d in level.dims]).decode()
        return self._bucket(level, unit), field

    def record(self, facts: Sequence[CallFact]) -> None:
        self.record_sums(fold(facts, RollupQuery(BASE)))

    def record_sums(self, base: Sequence[RollupRow]) -> None:
        if not base:
            return
        sums: dict[tuple[str, str], list[Any]] = {}
        for row in base:
            measures = [row.calls, row.allowed, row.denied, row.failed, row.credits, row.refunded, row.duration_ms]
            measures += row.latency
            for level in LEVELS:
                place = self._placed(level, row.group)
                if place is None:
                    continue
                held = sums.get(place)
                if held is None:
                    sums[place] = list(measures)
                else:
                    for i, value in enumerate(measures):
                        held[i] += value
        keys: dict[str, int] = {self.span_name: 1}
        hours = [int(row.group[0] or 0) for row in base]
        args: list[str | int] = [min(hours), max(hours)]
        for (bucket, field), measures in sums.items():
            number = keys.setdefault(bucket, len(keys) + 1)
            args += [number, field, _pack(measures)]
        guarded(lambda: self._add(keys=list(keys), args=args))

    def span(self) -> tuple[int, int] | None:
        low, high = guarded(lambda: self.client.hmget(self.span_name, ["first", "last"]))
        return None if low is None or high is None else (int(low), int(high))

    def plan(self, query: RollupQuery) -> list[Part]:
        return plan(query, LEVELS, self.span())

    def query(self, query: RollupQuery) -> list[RollupRow]:
        span = self.span()
        parts = plan(query, LEVELS, span)
        if not parts or span is None:
            return []
        successors = self._successors() if query.key_hash is not None or "key" in query.by else {}
        out: dict[tuple[Any, ...], list[Any]] = {}
        for part in parts:
            reads = list(self._reads(part, query, span, successors))
            pipe = self.client.pipeline(transaction=False)
            for name, _ in reads:
                pipe.hgetall(name)
            contents = guarded(pipe.execute)
            for (_, context), fields in zip(reads, contents, strict=True):
                self._fold(part, query, context, fields, successors, out)
        return [
            RollupRow(group, int(m[0]), int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), float(m[6]), m[7:])
            for group, m in out.items()
        ]

    def count_distinct(
        self,
        query: RollupQuery,
        of: Distinct = "key",
        *,
        admitted: bool = False,
        daily: bool = False,
        among: Collection[str] | None = None,
    ) -> Counted:
        """From the rows by key (the hashes hold no sets to count in Redis)."""
        check(query, of, daily)
        rows = self.query(spread(query, of))
        return distinct_of_rows(rows, query, of, admitted=admitted, daily=daily, among=among)

    def rekey(self, old_hash: str, new_hash: str) -> None:
        """Nothing to move: reads follow the store's `rotated` map."""

    def _reads(
        self, part: Part, query: RollupQuery, span: tuple[int, int], successors: dict[str, str]
    ) -> Iterator[tuple[str, int | None]]:
        """The hashes a part reads, each with its unit (hour or day; None for all time)."""
        level = part.level
        first, last = part.hours()
        low = span[0] if first is None else max(first, span[0])
        high = span[1] if last is None else min(last, span[1])
        if level.key_only:
            assert query.key_hash is not None
            # the key's own buckets and those of the keys it replaced (never a rotated key's own: it holds nothing)
            hashes = [h for h in {query.key_hash, *successors} if successors.get(h, h) == query.key_hash]
            for h in sorted(hashes):
                if level.grain == "all":
                    yield self._bucket(level, None, h), None
                else:
                    for day in range(low // 24, high // 24 + 1):
                        yield self._bucket(level, day, h), day
        elif level.grain == "all":
            yield self._bucket(level, None), None
        elif level.grain == "day":
            for day in range(low // 24, high // 24 + 1):
                yield self._bucket(level, day), day
        else:
            for hour in range(low, high + 1):
                yield self._bucket(level, hour), hour

    def _fold(
        self,
        part: Part,
        query: RollupQuery,
        context: int | None,
        fields: dict[Any, Any],
        successors: dict[str, str],
        out: dict[tuple[Any, ...], list[Any]],
    ) -> None:
        """Add one hash's fields to the query's groups."""
        level = part.level
        unit = context
        first, last = part.hours()
        for field, value in fields.items():
            stored = orjson.loads(field)
            values: dict[str, Any] = {}
            if level.key_only and level.grain == "hour":
                hour = stored.pop(0)
                if (first is not None and hour < first) or (last is not None and hour > last):
                    continue
                values["hour"], values["day"] = hour, hour // 24
            elif level.grain == "hour":
                values["hour"], values["day"] = unit, int(unit or 0) // 24
            elif level.grain == "day":
                values["day"] = unit
            dims = [d for d in level.dims if d != "key"] if level.key_only else list(level.dims)
            values.update(zip(dims, stored, strict=True))
            if level.key_only:
                values["key"] = query.key_hash
            elif "key" in values and values["key"] is not None:
                values["key"] = successors.get(values["key"], values["key"])
            if (
                (query.key_hash is not None and values["key"] != query.key_hash)
                or (query.tool is not None and values["tool"] != query.tool)
                or (query.namespace is not None and values["namespace"] != query.namespace)
            ):
                continue
            group = tuple(values[d] for d in query.by)
            measures = as_text(value).split(" ")
            held = out.get(group)
            if held is None:
                out[group] = [float(v) if i == 6 else int(v) for i, v in enumerate(measures)]
            else:
                for i, v in enumerate(measures):
                    held[i] += float(v) if i == 6 else int(v)
