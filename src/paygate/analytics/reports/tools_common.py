"""What the tools family's reports share: their query parameters, the scopes they filter to (a namespace, a
group), and the first and last hour a value was called in."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pydantic import Field

from paygate.analytics.engine import ReportParams
from paygate.analytics.facts import Facts
from paygate.analytics.window import Window
from paygate.core.records import KeyRecord
from paygate.store.rollups import DAY, Dim, RollupRow

DEFAULT_NAMESPACE = "default"
UNGROUPED = "ungrouped"


class ScopeParams(ReportParams):
    """Tool and namespace reports: `namespace` counts one namespace only; `limit` cuts the list (the summary
    still counts every row). Without a limit, every row: tools and namespaces are few."""

    namespace: str | None = Field(default=None, min_length=1, max_length=100)
    limit: int | None = Field(default=None, ge=1, le=1000)


class GroupParams(ReportParams):
    """Group reports: `group` (an id or a name) counts one group only; `limit` as above."""

    group: str | None = Field(default=None, min_length=1, max_length=100)
    limit: int | None = Field(default=None, ge=1, le=1000)


def cut(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    return rows if limit is None else rows[:limit]


def namespace_of(record: KeyRecord) -> str:
    return record.namespace or DEFAULT_NAMESPACE


def live_in(f: Facts, namespace: str | None) -> list[KeyRecord]:
    """Keys that can call, in `namespace` now (all when None)."""
    return [k for k in f.live_keys() if namespace is None or namespace_of(k) == namespace]


def admitted_by(rows: Iterable[RollupRow]) -> dict[str, set[str]]:
    """For the rows of a `rollup("key", dim)`: the keys with an admitted call, by value of `dim` (calls
    without a valid key are no one's)."""
    keys: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        key_hash, value = row.group
        if row.allowed and isinstance(key_hash, str):
            keys[str(value)].add(key_hash)
    return keys


def summed(rows: Iterable[RollupRow], at: int = 0) -> dict[str, RollupRow]:
    """Rows merged by the value at `at` of their group."""
    out: dict[str, RollupRow] = {}
    for row in rows:
        name = str(row.group[at])
        out.setdefault(name, RollupRow((name,))).merge(row)
    return out


def _day_window(window: Window, day: int) -> Window:
    """One UTC day, within the request's range."""
    since, until = day * DAY, day * DAY + DAY - 1
    if window.since is not None:
        since = max(since, int(window.since))
    if window.until is not None:
        until = min(until, int(window.until))
    return Window(window.now, since, until)


def first_last_hours(f: Facts, dim: Dim, namespace: str | None = None) -> dict[str, tuple[int, int]]:
    """The first and last hour each value of `dim` had an admitted call in, within the range.

    Read by day first, then by hour only on the days that hold a first or a last call: a range of months
    has thousands of hours per tool, and but a few such days."""
    days: dict[str, list[int]] = {}
    for row in f.rollup(dim, "day", namespace=namespace):
        if row.allowed:
            days.setdefault(str(row.group[0]), []).append(int(row.group[1] or 0))
    span = {name: (min(d), max(d)) for name, d in days.items()}
    hours_on: dict[int, dict[str, list[int]]] = {}
    for day in {d for pair in span.values() for d in pair}:
        on_day: dict[str, list[int]] = defaultdict(list)
        for row in f.rollup(dim, "hour", window=_day_window(f.window, day), namespace=namespace):
            if row.allowed:
                on_day[str(row.group[0])].append(int(row.group[1] or 0))
        hours_on[day] = on_day
    return {name: (min(hours_on[first][name]), max(hours_on[last][name])) for name, (first, last) in span.items()}
