"""What the traffic reports share: their query parameters, which rows count as admitted, distinct keys per
group, the hourly window, and the latency histogram's estimates (docs/analytics-traffic.md, "Latency")."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from paygate.analytics.engine import NamespaceParams
from paygate.analytics.facts import Facts
from paygate.analytics.window import Window
from paygate.store.rollups import BUCKETS, LATENCY_BOUNDS_MS, Dim, RollupRow

TREND_HOURS = 24  # the "last 24 hours" of the reference's hourly trends


class TrafficParams(NamespaceParams):
    """`since`, `until`, `format`, `namespace` (calls made by keys of that namespace) and `limit`."""


def admitted_reason(reason: object) -> bool:
    """Whether a rollup row grouped by `reason` holds admitted calls ("" or shadow mode's `shadow…`)."""
    return isinstance(reason, str) and (not reason or reason.startswith("shadow"))


def denied_reason(reason: object) -> bool:
    return isinstance(reason, str) and not admitted_reason(reason)


def rollup(
    f: Facts, p: TrafficParams, *by: Dim, window: Window | None = None, timing: bool | None = None
) -> list[RollupRow]:
    """`f.rollup` restricted to the `namespace` parameter."""
    return f.rollup(*by, window=window, namespace=p.namespace, timing=timing)


def merged(rows: Iterable[RollupRow], group: tuple[Any, ...] = ()) -> RollupRow:
    out = RollupRow(group)
    for row in rows:
        out.merge(row)
    return out


def admitted_by(rows: Iterable[RollupRow], reason_at: int, *, keep: int | None = None) -> dict[Any, RollupRow]:
    """Rows grouped by (`keep`, reason) summed over their admitted reasons, by the value at `keep`
    (everything under `None` when `keep` is None)."""
    out: dict[Any, RollupRow] = {}
    for row in rows:
        if not admitted_reason(row.group[reason_at]):
            continue
        name = None if keep is None else row.group[keep]
        if name not in out:
            out[name] = RollupRow((name,))
        out[name].merge(row)
    return out


def distinct_keys(
    f: Facts, p: TrafficParams, dim: Dim, *, window: Window | None = None, daily: bool = False
) -> dict[Hashable, int]:
    """How many distinct keys made a call per value of `dim` (calls without a valid key are no consumer; `daily`:
    per hour of the day), in the `namespace` parameter: counted by the store."""
    counted = f.count_distinct(dim, window=window, namespace=p.namespace, daily=daily)
    return {group[0]: n for group, n in counted.items()}


def distinct_values(rows: Iterable[RollupRow], value_at: int, group_at: int) -> dict[Hashable, int]:
    seen: dict[Hashable, set[Any]] = defaultdict(set)
    for row in rows:
        seen[row.group[group_at]].add(row.group[value_at])
    return {g: len(v) for g, v in seen.items()}


def trend_window(f: Facts) -> Window:
    """The last 24 hours of the range (the current hour included)."""
    return f.window.last_hours(TREND_HOURS)


def series_window(f: Facts) -> Window:
    """An hourly series' range: the request's, or the last 24 hours when it gives no `since` (a series
    over all history would be a list of every hour ever served)."""
    return f.window if f.window.since is not None else trend_window(f)


def peak(rows: Sequence[RollupRow]) -> RollupRow | None:
    """The busiest group (most calls; the earliest / smallest group value on a tie)."""
    return min(rows, key=lambda r: (-r.calls, r.group), default=None)


def ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# latency ---------------------------------------------------------------------------------------------
def bucket_edges(i: int) -> tuple[float, float]:
    """Bucket `i` holds durations in (lower, upper] (the first from 0, the last unbounded)."""
    lower = 0.0 if i == 0 else float(LATENCY_BOUNDS_MS[i - 1])
    upper = float(LATENCY_BOUNDS_MS[i]) if i < len(LATENCY_BOUNDS_MS) else math.inf
    return lower, upper


def duration_bounds(row: RollupRow) -> tuple[float, float] | None:
    """(a lower bound of the fastest call, an upper bound of the slowest) from the histogram and the sum:
    every call lies inside its bucket, so the fastest is at least the lowest non-empty bucket's lower edge
    and at least the sum less the other calls' upper edges; the slowest at most the highest non-empty
    bucket's upper edge and at most the sum less the other calls' lower edges (exact for a single call)."""
    counts = row.latency
    used = [i for i in range(BUCKETS) if counts[i]]
    if not used:
        return None
    low_i, high_i = used[0], used[-1]

    def others(edge: int, skip: int) -> float:
        """The sum of one edge (0 lower, 1 upper) over every call but one of bucket `skip`."""
        return sum((counts[i] - (i == skip)) * bucket_edges(i)[edge] for i in used if counts[i] - (i == skip))

    low_lower, low_upper = bucket_edges(low_i)
    high_lower, high_upper = bucket_edges(high_i)
    fastest = min(max(low_lower, row.duration_ms - others(1, low_i)), low_upper)
    slowest = max(min(high_upper, row.duration_ms - others(0, high_i)), high_lower)
    return fastest, slowest


def percentile(row: RollupRow, p: float) -> float | None:
    """The p-th percentile (0-100) estimated from the histogram: the rank p/100 * calls falls in one
    bucket; the value is interpolated linearly between that bucket's edges (narrowed to the bounds of
    `duration_bounds`, so the open last bucket ends at the slowest call's bound)."""
    total = sum(row.latency)
    bounds = duration_bounds(row)
    if not total or bounds is None:
        return None
    fastest, slowest = bounds
    rank = p / 100 * total
    before = 0
    for i, count in enumerate(row.latency):
        if count and before + count >= rank:
            lower, upper = bucket_edges(i)
            lower, upper = max(lower, fastest), min(upper, slowest)
            share = max(rank - before, 0) / count
            return lower + (upper - lower) * share
        before += count
    return slowest


def avg_ms(row: RollupRow) -> float:
    """The average duration, from the exact sum (ms, 2 decimals)."""
    return round(row.duration_ms / row.calls, 2) if row.calls else 0.0


def latency_stats(row: RollupRow) -> dict[str, Any]:
    """Calls, average (from the exact sum), bounds and percentiles of a row of admitted calls."""
    bounds = duration_bounds(row)
    return {
        "totalCalls": row.calls,
        "avgDurationMs": avg_ms(row),
        "minDurationMs": ms(bounds[0]) if bounds else None,
        "maxDurationMs": ms(bounds[1]) if bounds else None,
        "p50DurationMs": ms(percentile(row, 50)),
        "p95DurationMs": ms(percentile(row, 95)),
        "p99DurationMs": ms(percentile(row, 99)),
    }
