"""Call rollups on Redis (the CallRollups role): one HASH per UTC hour, `{prefix}:ru:<hour>`, its fields
`<group JSON>|<measure>` incremented with HINCRBY / HINCRBYFLOAT in one MULTI per batch, so every instance's
batches add up exactly; a SORTED SET `{prefix}:ru:hours` lists the hours that hold any. A rotated key's
rows keep its old hash; reads follow the `rotated` map (as the usage stream's do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import orjson
import redis

from paygate.store.redis_backend.names import Names, as_text, guarded
from paygate.store.rollups import (
    BUCKETS,
    CallFact,
    Dim,
    RollupQuery,
    RollupRow,
    fold,
)

STORED: tuple[Dim, ...] = ("hour", "key", "tool", "namespace", "reason")
COUNTS = ("calls", "allowed", "denied", "failed", "credits", "refunded", *(f"l{i}" for i in range(BUCKETS)))


class RedisRollups:
    def __init__(self, client: redis.Redis, names: Names, successors: Callable[[], dict[str, str]]) -> None:
        self.client = client
        self.names = names
        self.hours = names.sub("ru", "hours")
        self._successors = successors

    def _hash(self, hour: int) -> str:
        return self.names.sub("ru", str(hour))

    def record(self, facts: Sequence[CallFact]) -> None:
        rows = fold(facts, RollupQuery(STORED))
        if not rows:
            return
        pipe = self.client.pipeline(transaction=True)
        for row in rows:
            hour = int(row.group[0] or 0)
            group = orjson.dumps(row.group[1:]).decode()
            name = self._hash(hour)
            values = (row.calls, row.allowed, row.denied, row.failed, row.credits, row.refunded, *row.latency)
            for measure, value in zip(COUNTS, values, strict=True):
                if value:
                    pipe.hincrby(name, f"{group}|{measure}", value)
            if row.duration_ms:
                pipe.hincrbyfloat(name, f"{group}|duration_ms", row.duration_ms)
            pipe.zadd(self.hours, {str(hour): hour})
        guarded(pipe.execute)

    def query(self, query: RollupQuery) -> list[RollupRow]:
        low = "-inf" if query.since_hour is None else query.since_hour
        high = "+inf" if query.until_hour is None else query.until_hour
        hours = [int(as_text(h)) for h in guarded(lambda: self.client.zrangebyscore(self.hours, low, high))]
        if not hours:
            return []
        pipe = self.client.pipeline(transaction=False)
        for hour in hours:
            pipe.hgetall(self._hash(hour))
        contents = guarded(pipe.execute)
        successors = self._successors() if query.key_hash is not None or "key" in query.by else {}
        stored: dict[tuple[str | int | None, ...], RollupRow] = {}
        for hour, fields in zip(hours, contents, strict=True):
            for field, value in fields.items():
                group_text, _, measure = as_text(field).rpartition("|")
                key_hash, tool, namespace, reason = orjson.loads(group_text)
                key_hash = successors.get(key_hash, key_hash) if key_hash else None
                group = (hour, key_hash, tool, namespace, reason)
                row = stored.get(group)
                if row is None:
                    row = stored[group] = RollupRow(group)
                _add(row, measure, as_text(value))
        return _regroup(stored.values(), query)

    def rekey(self, old_hash: str, new_hash: str) -> None:
        """Nothing to move: reads follow the store's `rotated` map."""


def _add(row: RollupRow, measure: str, value: str) -> None:
    if measure == "duration_ms":
        row.duration_ms += float(value)
    elif measure.startswith("l"):
        row.latency[int(measure[1:])] += int(value)
    else:
        setattr(row, measure, getattr(row, measure) + int(value))


def _regroup(rows: Iterable[RollupRow], query: RollupQuery) -> list[RollupRow]:
    """Stored rows (hour, key, tool, namespace, reason) filtered and summed into the query's groups."""
    out: dict[tuple[str | int | None, ...], RollupRow] = {}
    for row in rows:
        hour, key_hash, tool, namespace, reason = row.group
        if (
            (query.key_hash is not None and key_hash != query.key_hash)
            or (query.tool is not None and tool != query.tool)
            or (query.namespace is not None and namespace != query.namespace)
        ):
            continue
        values: dict[str, str | int | None] = {
            "hour": hour,
            "day": int(hour or 0) // 24,
            "key": key_hash,
            "tool": tool,
            "namespace": namespace,
        }
        group = tuple(values.get(d, reason) for d in query.by)
        target = out.get(group)
        if target is None:
            target = out[group] = RollupRow(group)
        target.merge(row)
    return list(out.values())
