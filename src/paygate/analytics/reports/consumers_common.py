"""What the consumer reports share: their query parameters, the keys a request selects (namespace, group,
one key), each key's sums over the range, and sums of the selected calls by other dimensions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from paygate.analytics.engine import ReportParams
from paygate.analytics.facts import Facts
from paygate.analytics.shaping import by_key
from paygate.analytics.window import Window
from paygate.core.records import KeyRecord
from paygate.store.rollups import HOUR, Dim, RollupRow, hour_of

MAX_LIST = 10_000  # rows a per-key list may ask for: every key of a large fleet, for a CSV export
# Up to this many keys, per-key facts (tool diversity) are read key by key: each read is one index range,
# where one query grouped by key and tool sums every key's rows.
PER_KEY_READS = 100


class ConsumerFilter(ReportParams):
    """The keys a consumer report covers: `namespace` (the key's), `group` (id or name), `key` (the key
    or its alias)."""

    namespace: str | None = Field(default=None, min_length=1, max_length=100)
    group: str | None = Field(default=None, min_length=1, max_length=200)
    key: str | None = Field(default=None, min_length=1, max_length=500)


class ConsumerParams(ConsumerFilter):
    limit: int = Field(default=100, ge=1, le=MAX_LIST, description="rows in the report's per-key list")


class TopTenParams(ConsumerFilter):
    limit: int = Field(default=10, ge=1, le=MAX_LIST, description="rows in each ranked list")


@dataclass(slots=True)
class Selection:
    """The keys a request covers (oldest first) and how to narrow the rollups to them."""

    keys: list[KeyRecord]
    namespace: str | None = None
    key_hash: str | None = None  # one key asked for
    grouped: bool = False  # a group was asked for: calls are narrowed to its keys after the query
    hashes: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.hashes = {k.key_hash for k in self.keys}


def select(f: Facts, p: ConsumerFilter, live: bool = True) -> Selection:
    """The keys the filters name: live ones (not revoked, not suspended), or every key with `live=False`."""
    keys = f.live_keys() if live else f.all_keys()
    key_hash = None
    if p.key is not None:
        key_hash = f.find_key(p.key).key_hash
        keys = [k for k in keys if k.key_hash == key_hash]
    if p.namespace is not None:
        keys = [k for k in keys if k.namespace == p.namespace]
    if p.group is not None:
        group_id = f.find_group(p.group)
        keys = [k for k in keys if k.group_id == group_id]
    return Selection(keys, p.namespace, key_hash, p.group is not None)


@dataclass(slots=True)
class KeyUsage:
    """One key's calls in the range: admitted (`calls`), all attempts, denied, credits spent (net)."""

    calls: int = 0
    attempts: int = 0
    denied: int = 0
    spent: int = 0

    @classmethod
    def of(cls, row: RollupRow | None) -> KeyUsage:
        if row is None:
            return cls()
        return cls(row.allowed, row.calls, row.denied, row.credits)


def usage(f: Facts, sel: Selection, hashes: Iterable[str] | None = None) -> dict[str, KeyUsage]:
    """Each selected key's sums over the range (keys without calls are absent); with `hashes`, only those
    keys' (read one by one when they are few)."""
    if hashes is not None:
        wanted = set(hashes) & sel.hashes
        if len(wanted) <= PER_KEY_READS:
            rows = {h: f.rollup(key_hash=h, namespace=sel.namespace) for h in sorted(wanted)}
            return {h: KeyUsage.of(r[0]) for h, r in rows.items() if r}
    rows_by_key = by_key(f.rollup("key", key_hash=sel.key_hash, namespace=sel.namespace))
    return {h: KeyUsage.of(row) for h, row in rows_by_key.items() if h is not None and h in sel.hashes}


def tools_used(f: Facts, sel: Selection, hashes: Iterable[str]) -> dict[str, int]:
    """For these selected keys: how many tools each called and was admitted to (the reference's tool
    diversity). A few keys are read one by one (the store indexes rollups by key); many, in one query."""
    wanted = set(hashes) & sel.hashes
    out: dict[str, int] = {}
    if len(wanted) <= PER_KEY_READS:
        for one in sorted(wanted):
            out[one] = sum(1 for row in f.rollup("tool", key_hash=one, namespace=sel.namespace) if row.allowed)
        return out
    for row in f.rollup("key", "tool", key_hash=sel.key_hash, namespace=sel.namespace):
        h = row.group[0]
        if isinstance(h, str) and h in wanted and row.allowed:
            out[h] = out.get(h, 0) + 1
    return out


def sums(f: Facts, sel: Selection, *by: Dim, window: Window | None = None) -> dict[tuple[Any, ...], RollupRow]:
    """The selected calls summed by `by`. Without a group, every call the namespace / key filters select
    (keyless calls included when no key is named); with one, only the calls of the group's keys."""
    if not sel.grouped:
        rows = f.rollup(*by, window=window, key_hash=sel.key_hash, namespace=sel.namespace)
        return {row.group: row for row in rows}
    out: dict[tuple[Any, ...], RollupRow] = {}
    for row in f.rollup("key", *by, window=window, key_hash=sel.key_hash, namespace=sel.namespace):
        if row.group[0] not in sel.hashes:
            continue
        group = row.group[1:]
        if group not in out:
            out[group] = RollupRow(group)
        out[group].merge(row)
    return out


def span_hours(f: Facts, record: KeyRecord) -> float:
    """Hours the key could spend in within the range: from its creation (or the range's first hour, if
    later) to the range's end (or now, if sooner); at least one, so a new key's first call is no spike."""
    w = f.window
    start = record.created_at
    if w.since_hour is not None:
        start = max(start, w.since_hour * HOUR)
    end = f.now if w.until is None else min(f.now, (hour_of(w.until) + 1) * HOUR)
    return max((end - start) / HOUR, 1.0)
