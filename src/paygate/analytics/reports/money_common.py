"""What the money reports share: their query models, which keys a request covers, and hourly series."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from paygate.analytics.engine import NamespaceParams
from paygate.analytics.facts import Facts
from paygate.analytics.shaping import allocated, key_label
from paygate.analytics.window import Window
from paygate.core.records import KeyRecord
from paygate.store.rollups import ALLOWED, HOUR, RollupRow, hour_of

TREND_HOURS = 24  # the hourly trend lists: the last 24 hours of the range, as the reference's
BURN_LOOKBACK_HOURS = 24  # a burn rate is the current rate: the last day's complete hours
FORECAST_LOOKBACK_HOURS = 168  # a trend needs more than a day (and a whole week evens out weekdays)


class CallParams(NamespaceParams):
    """Reports over calls: the range, `namespace` (the calls'), `key` (a key or its alias), `limit`."""

    key: str | None = Field(default=None, min_length=1, max_length=200)


class KeyStateParams(NamespaceParams):
    """Reports over key balances: `namespace` and `group` (id or name) select keys; `since` / `until` select
    the keys created in that range; `limit` caps the per-key lists."""

    group: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=100, ge=1, le=10_000, description="rows in the per-key lists")


class RateParams(NamespaceParams):
    """Burn rate and revenue forecast: the range is the hours the rate is measured over."""

    group: str | None = Field(default=None, min_length=1, max_length=200)


def scoped_keys(f: Facts, namespace: str | None, group: str | None, created_in_range: bool) -> list[KeyRecord]:
    """Live keys (not revoked, not suspended), of `namespace` and `group` when given, and created in the
    request's range when `created_in_range` (a cohort)."""
    gid = f.find_group(group) if group is not None else None
    w = f.window
    keys = []
    for k in f.live_keys():
        if namespace is not None and k.namespace != namespace:
            continue
        if gid is not None and k.group_id != gid:
            continue
        if created_in_range and not _created_in(k, w):
            continue
        keys.append(k)
    return keys


def _created_in(record: KeyRecord, w: Window) -> bool:
    hour = hour_of(record.created_at)
    return (w.since_hour is None or hour >= w.since_hour) and (w.until_hour is None or hour <= w.until_hour)


def balances(keys: Sequence[KeyRecord]) -> dict[str, int]:
    spent = sum(k.total_spent for k in keys)
    remaining = sum(k.credits for k in keys)
    return {"totalAllocated": spent + remaining, "totalSpent": spent, "totalRemaining": remaining}


def named(by_hash: Mapping[str, KeyRecord], key_hash: str | int | None) -> dict[str, Any] | None:
    """`{"name", "key"}` of a key hash from a rollup row; None for calls without a key or unknown keys."""
    record = by_hash.get(key_hash) if isinstance(key_hash, str) else None
    return None if record is None else key_label(record)


def is_allowed(reason: str | int | None) -> bool:
    """A rollup `reason` that admitted the call (shadow mode's observed calls included)."""
    return isinstance(reason, str) and (reason == ALLOWED or reason.startswith("shadow"))


def rate_hours(f: Facts, lookback: int, first_key_at: float | None) -> list[int]:
    """The complete hours a rate or trend is measured over: the range's hours when `since` is given, else
    the last `lookback` complete hours, then never before the first key was created (no call can precede it,
    and those empty hours would drag the rate down). Never the hour in progress: it would read low."""
    w = f.window
    current = hour_of(f.now)
    if w.since is not None:
        return [h for h in w.hours() if h < current]
    hours = [h for h in w.last_hours(lookback + 1).hours() if h < current][-lookback:]
    if first_key_at is not None:
        hours = [h for h in hours if h >= hour_of(first_key_at)]
    return hours


def hours_window(f: Facts, hours: Sequence[int]) -> Window:
    """The window covering exactly `hours` (consecutive)."""
    return Window(f.now, hours[0] * HOUR, hours[-1] * HOUR)


def hourly_credits(f: Facts, hours: Sequence[int], namespace: str | None, keys: set[str] | None) -> list[float]:
    """Credits charged in each of `hours` (zeros included), by the keys in `keys` when given."""
    if not hours:
        return []
    window = hours_window(f, hours)
    got: dict[Any, float] = defaultdict(float)
    if keys is None:
        for row in f.rollup("hour", window=window, namespace=namespace):
            got[row.group[0]] += row.credits
    else:
        for row in f.rollup("hour", "key", window=window, namespace=namespace):
            if row.group[1] in keys:
                got[row.group[0]] += row.credits
    return [got.get(h, 0.0) for h in hours]


def key_credits(f: Facts, hours: Sequence[int], namespace: str | None) -> dict[str, RollupRow]:
    """Each key's sums over `hours`, by key hash."""
    if not hours:
        return {}
    rows = f.rollup("key", window=hours_window(f, hours), namespace=namespace)
    return {row.group[0]: row for row in rows if isinstance(row.group[0], str)}


def earliest_creation(keys: Sequence[KeyRecord]) -> float | None:
    return min((k.created_at for k in keys), default=None)


def utilization(record: KeyRecord) -> float:
    """Spent / allocated as a fraction (0 when nothing was ever allocated)."""
    given = allocated(record)
    return record.total_spent / given if given else 0.0


class CallScope:
    """The calls a request covers: its range, and its `namespace` / `key` when given."""

    def __init__(self, f: Facts, p: CallParams) -> None:
        self.f = f
        self.namespace = p.namespace
        self.key: KeyRecord | None = f.find_key(p.key) if p.key is not None else None

    def rollup(self, *by: Any, trend: bool = False) -> list[RollupRow]:
        window = self.f.window.last_hours(TREND_HOURS) if trend else None
        key_hash = None if self.key is None else self.key.key_hash
        return self.f.rollup(*by, window=window, key_hash=key_hash, namespace=self.namespace)

    def totals(self) -> RollupRow:
        """Every call of the scope summed: from the per-tool rows the reports read anyway (Facts caches
        them), which saves a scan of the range."""
        total = RollupRow(())
        for row in self.rollup("tool"):
            total.merge(row)
        return total

    def trend_hours(self) -> list[tuple[int, RollupRow]]:
        """The last 24 hours of the range, oldest first, with zeros where nothing was called."""
        rows = {row.group[0]: row for row in self.rollup("hour", trend=True)}
        return [(h, rows.get(h) or RollupRow((h,))) for h in self.f.window.last_hours(TREND_HOURS).hours()]

    def live_keys(self) -> list[KeyRecord]:
        if self.key is not None:
            wanted = self.key.key_hash
            return [k for k in self.f.live_keys() if k.key_hash == wanted]
        return [k for k in self.f.live_keys() if self.namespace is None or k.namespace == self.namespace]

    def spenders(self, limit: int) -> list[tuple[dict[str, Any], RollupRow]]:
        """Keys by credits charged in the range (most first, then by name); keys that paid nothing left out."""
        by_hash = self.f.key_by_hash()  # a copy per call: taken once
        ranked = [(label, r) for r in self.rollup("key") if r.credits > 0 and (label := named(by_hash, r.group[0]))]
        ranked.sort(key=lambda lr: (-lr[1].credits, lr[0]["name"], lr[0]["key"]))
        return ranked[:limit]
