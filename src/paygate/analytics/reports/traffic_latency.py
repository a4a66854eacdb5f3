"""Traffic reports: how long admitted calls took (docs/analytics-traffic.md): latency,
response-time-distribution. Both read the rollups' latency histogram and duration sums of admitted calls."""

from __future__ import annotations

import math
from typing import Any

from paygate.analytics.engine import Report
from paygate.analytics.facts import Facts
from paygate.analytics.reports.traffic_common import (
    TrafficParams,
    admitted_by,
    avg_ms,
    bucket_edges,
    latency_stats,
    merged,
    ms,
    percentile,
    rollup,
)
from paygate.analytics.shaping import key_label, percent
from paygate.store.rollups import BUCKETS


def latency(f: Facts, p: TrafficParams) -> dict[str, Any]:
    overall = merged(admitted_by(rollup(f, p, "reason"), 0).values())
    tools = [
        {"tool": name, **latency_stats(row)}
        for name, row in admitted_by(rollup(f, p, "tool", "reason"), 1, keep=0).items()
    ]
    tools.sort(key=lambda t: (-t["avgDurationMs"], str(t["tool"])))
    names = f.key_by_hash()
    per_key = [
        (avg_ms(row), key_label(names[h]), row)
        for h, row in admitted_by(rollup(f, p, "key", "reason", timing=True), 1, keep=0).items()
        if isinstance(h, str) and h in names
    ]
    per_key.sort(key=lambda a: (-a[0], a[1]["name"], a[1]["key"]))
    # The full statistics only for the keys shown: ten thousand keys' percentiles cost seconds.
    keys = [{**label, **latency_stats(row)} for _, label, row in per_key[: p.limit]]
    return {
        "summary": latency_stats(overall),
        "byTool": tools,
        "slowestTools": [
            {"tool": t["tool"], "avgDurationMs": t["avgDurationMs"], "totalCalls": t["totalCalls"]}
            for t in tools[: p.limit]
        ],
        "byKey": keys,
        **f.window.echo(),
    }


def _range_label(i: int) -> str:
    lower, upper = bucket_edges(i)
    return f"{lower:g}ms+" if math.isinf(upper) else f"{lower:g}-{upper:g}ms"


def response_time_distribution(f: Facts, p: TrafficParams) -> dict[str, Any]:
    row = merged(admitted_by(rollup(f, p, "reason"), 0).values())
    buckets = []
    for i in range(BUCKETS):
        if row.latency[i]:
            lower, upper = bucket_edges(i)
            buckets.append(
                {
                    "range": _range_label(i),
                    "fromMs": lower,
                    "toMs": None if math.isinf(upper) else upper,
                    "count": row.latency[i],
                    "percentage": percent(row.latency[i], row.calls),
                }
            )
    return {
        "buckets": buckets,
        "summary": {
            "totalRequests": row.calls,
            "avgResponseTime": round(row.duration_ms / row.calls, 2) if row.calls else 0.0,
            "p50": ms(percentile(row, 50)),
            "p95": ms(percentile(row, 95)),
            "p99": ms(percentile(row, 99)),
        },
        **f.window.echo(),
    }


REPORTS: tuple[Report, ...] = (
    Report(
        "latency",
        latency,
        "Admitted calls' durations: average, bounds and percentiles overall, per tool (slowest first) and per key.",
        TrafficParams,
        "byTool",
    ),
    Report(
        "response-time-distribution",
        response_time_distribution,
        "Histogram of admitted calls' durations with p50 / p95 / p99 and the average.",
        TrafficParams,
        "buckets",
    ),
)
