"""Call rollups: what the analytics reports count, as the store keeps it.

Every gated tool call (one `gate.allow` or `gate.deny` event) becomes one `CallFact`; a deferred
subscriber of the event bus hands them to the store in batches (`record`), off the tool-call path. The
store keeps them summed per UTC hour, key, tool, namespace and outcome, so a report over millions of calls
reads sums, never rows. `query` answers one `RollupQuery`: the sums grouped by the dimensions it names,
over whole hours.

`fold` is the definition: the sums a store must return are those `fold` computes from the same facts
(tests/unit/store_contract checks every store against it). Every store provides one as `store.rollups`.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

HOUR = 3600
DAY = 86400
Dim = Literal["hour", "day", "key", "tool", "namespace", "reason"]
DIMS: tuple[Dim, ...] = ("hour", "day", "key", "tool", "namespace", "reason")
# Upper bounds (ms, inclusive) of the latency histogram's buckets; the last bucket has no bound.
LATENCY_BOUNDS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
BUCKETS = len(LATENCY_BOUNDS_MS) + 1
ALLOWED = ""  # the `reason` of an admitted call


@dataclass(frozen=True, slots=True)
class CallFact:
    """One gated call. `reason` is the deny reason, or "" when admitted (shadow mode's observed calls carry
    `shadow` / `shadow:<why>`, admitted and never charged). `credits` are net of refund and surcharge."""

    ts: float
    key_hash: str | None  # None: no valid key was presented
    tool: str
    namespace: str
    reason: str
    credits: int = 0
    refunded: int = 0
    failed: bool = False  # admitted, and the backend answered with an error
    duration_ms: float = 0.0

    @property
    def allowed(self) -> bool:
        return not self.reason or self.reason.startswith("shadow")


def hour_of(ts: float) -> int:
    """The UTC hour a time falls in, as hours since the epoch."""
    return int(ts // HOUR)


def bucket_of(duration_ms: float) -> int:
    return bisect.bisect_left(LATENCY_BOUNDS_MS, duration_ms)


@dataclass(frozen=True, slots=True)
class RollupQuery:
    """Sums grouped by `by`, over the hours from `since_hour` to `until_hour` (inclusive; None: unbounded),
    optionally of one key, tool or namespace."""

    by: tuple[Dim, ...] = ()
    since_hour: int | None = None
    until_hour: int | None = None
    key_hash: str | None = None
    tool: str | None = None
    namespace: str | None = None
    # False: the rows' `duration_ms` and `latency` may be left at 0 (the counts and credits are exact either
    # way), so the store may answer from levels that keep no timings (cheaper to keep, and to read)
    timing: bool = True

    def __post_init__(self) -> None:
        unknown = [d for d in self.by if d not in DIMS]
        if unknown or len(set(self.by)) != len(self.by):
            raise ValueError(f"bad rollup dimensions {self.by!r}")

    def covers(self, fact: CallFact) -> bool:
        hour = hour_of(fact.ts)
        return (
            (self.since_hour is None or hour >= self.since_hour)
            and (self.until_hour is None or hour <= self.until_hour)
            and (self.key_hash is None or fact.key_hash == self.key_hash)
            and (self.tool is None or fact.tool == self.tool)
            and (self.namespace is None or fact.namespace == self.namespace)
        )


@dataclass(slots=True)
class RollupRow:
    """The sums of one group. `group` holds the values of the query's `by` dimensions, in order: an int for
    hour and day (hours / days since the epoch), the key hash (or None), tool, namespace, reason ("" for
    admitted calls)."""

    group: tuple[str | int | None, ...]
    calls: int = 0
    allowed: int = 0
    denied: int = 0
    failed: int = 0
    credits: int = 0
    refunded: int = 0
    duration_ms: float = 0.0  # the sum over the group's calls
    latency: list[int] = field(default_factory=lambda: [0] * BUCKETS)  # calls per LATENCY_BOUNDS_MS bucket

    def add(self, fact: CallFact) -> None:
        self.calls += 1
        if fact.allowed:
            self.allowed += 1
        else:
            self.denied += 1
        self.failed += fact.failed
        self.credits += fact.credits
        self.refunded += fact.refunded
        self.duration_ms += fact.duration_ms
        self.latency[bucket_of(fact.duration_ms)] += 1

    def merge(self, other: RollupRow) -> None:
        self.calls += other.calls
        self.allowed += other.allowed
        self.denied += other.denied
        self.failed += other.failed
        self.credits += other.credits
        self.refunded += other.refunded
        self.duration_ms += other.duration_ms
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]


def group_of(fact: CallFact, by: Sequence[Dim]) -> tuple[str | int | None, ...]:
    values: list[str | int | None] = []
    for dim in by:
        if dim == "hour":
            values.append(hour_of(fact.ts))
        elif dim == "day":
            values.append(int(fact.ts // DAY))
        elif dim == "key":
            values.append(fact.key_hash)
        elif dim == "tool":
            values.append(fact.tool)
        elif dim == "namespace":
            values.append(fact.namespace)
        else:
            values.append(fact.reason)
    return tuple(values)


def fold(facts: Iterable[CallFact], query: RollupQuery) -> list[RollupRow]:
    """The rows `query` asks for, computed from the facts one by one (the definition every store meets)."""
    rows: dict[tuple[str | int | None, ...], RollupRow] = {}
    for fact in facts:
        if not query.covers(fact):
            continue
        group = group_of(fact, query.by)
        row = rows.get(group)
        if row is None:
            row = rows[group] = RollupRow(group)
        row.add(fact)
    return list(rows.values())


Counted = dict[tuple[str | int | None, ...], int]  # distinct values per group (store/rollup_counts.py)
Distinct = Literal["key", "tool"]  # what `CallRollups.count_distinct` counts


BASE: tuple[Dim, ...] = ("hour", "key", "tool", "namespace", "reason")  # the finest grain a store keeps


def base_group(fact: CallFact) -> tuple[str | int | None, ...]:
    """`group_of(fact, BASE)`, without the loop (the feed sums every call with it)."""
    return (int(fact.ts // HOUR), fact.key_hash, fact.tool, fact.namespace, fact.reason)


class CallRollups(Protocol):
    """Per-call facts summed by hour, key, tool, namespace and outcome."""

    def record(self, facts: Sequence[CallFact]) -> None: ...  # one batch, applied whole
    # the same, already summed by BASE (`fold(facts, RollupQuery(BASE))`, or the feed's running sums)
    def record_sums(self, rows: Sequence[RollupRow]) -> None: ...
    def query(self, query: RollupQuery) -> list[RollupRow]: ...  # rows in no particular order
    # distinct keys (or tools) per group; `rollup_counts.fold_distinct` is the definition: a few rows where the
    # same query by key would be many
    def count_distinct(
        self,
        query: RollupQuery,
        of: Distinct = "key",
        *,
        admitted: bool = False,
        daily: bool = False,
        among: Collection[str] | None = None,
    ) -> Counted: ...
    def rekey(self, old_hash: str, new_hash: str) -> None: ...  # a rotated key's history follows it


# Levels and the planner --------------------------------------------------------------------------------------
# A store keeps the same sums at several levels, each coarser than `call_rollup`'s (hour, key, tool, namespace,
# reason): fewer dimensions, or days, or all time. `record` adds every batch to each level in one transaction;
# `plan` picks, for a query, the cheapest levels that hold its dimensions and its range exactly.
Grain = Literal["hour", "day", "all"]
STORED: tuple[Dim, ...] = ("key", "tool", "namespace", "reason")  # the dimensions a level may keep besides time
# Rough distinct values per dimension, for comparing levels (only the order of the costs matters).
CARDINALITY: dict[Dim, int] = {"key": 1000, "tool": 30, "namespace": 3, "reason": 4}


@dataclass(frozen=True, slots=True)
class Level:
    """Sums kept per `grain` (UTC hour, UTC day, or all time) and `dims`. `key_access`: a key filter reads
    only that key's rows (an index, a bucket per key); `key_only`: usable only with a key filter."""

    name: str
    grain: Grain
    dims: tuple[Dim, ...]
    key_access: bool = False
    key_only: bool = False
    timing: bool = True  # keeps duration_ms and the latency histogram (else only the counts and credits)

    def width(self, query: RollupQuery) -> int:
        rows = 1
        for dim in self.dims:
            rows *= CARDINALITY[dim]
        return rows // CARDINALITY["key"] if query.key_hash is not None and self.key_access else rows


@dataclass(frozen=True, slots=True)
class Part:
    """Read `level` over its units `first`..`last` (hours or days; None: unbounded; both None for all time)."""

    level: Level
    first: int | None = None
    last: int | None = None

    def hours(self) -> tuple[int | None, int | None]:
        """The hours this part covers (None: unbounded)."""
        if self.level.grain != "day":
            return self.first, self.last
        return (
            None if self.first is None else self.first * 24,
            None if self.last is None else self.last * 24 + 23,
        )


def needed_dims(query: RollupQuery) -> set[Dim]:
    dims: set[Dim] = {d for d in query.by if d != "hour" and d != "day"}
    for dim, value in (("key", query.key_hash), ("tool", query.tool), ("namespace", query.namespace)):
        if value is not None:
            dims.add(dim)  # type: ignore[arg-type]
    return dims


def plan(query: RollupQuery, levels: Sequence[Level], span: tuple[int, int] | None) -> list[Part]:
    """The parts to read (their sums added up answer `query`), or [] when nothing can be in range. `span`:
    the first and last hour holding any call (None: none); it only prices unbounded ranges."""
    if span is None:
        return []
    since, until = query.since_hour, query.until_hour
    if since is not None and until is not None and since > until:
        return []
    needed = needed_dims(query)
    usable = [
        lv
        for lv in levels
        if needed <= set(lv.dims)
        and (query.key_hash is not None or not lv.key_only)
        and not ("hour" in query.by and lv.grain != "hour")
        and not ("day" in query.by and lv.grain == "all")
        and (lv.timing or not query.timing)
    ]
    hourly = [lv for lv in usable if lv.grain == "hour"]
    if not hourly:
        raise ValueError(f"no rollup level answers {query!r}")
    best_hour = min(hourly, key=lambda lv: lv.width(query))
    plans: list[list[Part]] = [[Part(best_hour, since, until)]]
    for level in usable:
        if level.grain == "all" and since is None and until is None:
            plans.append([Part(level)])
        elif level.grain == "day":
            first_day = None if since is None else -(-since // 24)
            last_day = None if until is None else (until + 1) // 24 - 1
            if first_day is not None and last_day is not None and first_day > last_day:
                continue  # no whole day in the range
            parts = [Part(level, first_day, last_day)]
            if first_day is not None and since is not None and since < first_day * 24:
                parts.append(Part(best_hour, since, first_day * 24 - 1))
            if last_day is not None and until is not None and until > last_day * 24 + 23:
                parts.append(Part(best_hour, last_day * 24 + 24, until))
            plans.append(parts)
    return min(plans, key=lambda parts: sum(_cost(p, query, span) for p in parts))


def _cost(part: Part, query: RollupQuery, span: tuple[int, int]) -> int:
    if part.level.grain == "all":
        return part.level.width(query)
    first, last = part.hours()
    hours = (span[1] if last is None else last) - (span[0] if first is None else first) + 1
    units = hours if part.level.grain == "hour" else -(-hours // 24)
    return max(units, 1) * part.level.width(query)
