"""Latency reports: the histogram's estimates on known histograms, and against random facts (counts and
averages exact, bounds and percentiles inside what the histogram allows)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.analytics.reports.traffic_common import duration_bounds, percentile
from paygate.store.rollups import CallFact, RollupRow
from tests.unit.analytics.harness import world

NOW = 1_790_000_000.0
EDGES = (0.0, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf)


def naive_bucket(ms: float) -> int:
    """Bucket i holds (EDGES[i], EDGES[i + 1]]; the first from 0."""
    for i in range(len(EDGES) - 1):
        if ms <= EDGES[i + 1]:
            return i
    raise AssertionError(ms)


def row_of(durations: list[float]) -> RollupRow:
    row = RollupRow(())
    for d in durations:
        row.add(CallFact(NOW, "k", "t", "default", "", duration_ms=d))
    return row


def test_percentiles_interpolate_inside_the_bucket() -> None:
    # 50 calls in (0, 5], 50 in (5, 10]: the 50th falls at the end of the first bucket, the 95th 45/50 of
    # the way through the second.
    row = row_of([1.0] * 50 + [7.0] * 50)
    assert percentile(row, 50) == 5.0
    assert percentile(row, 95) == 9.5
    assert percentile(row, 99) == pytest.approx(9.9)
    assert duration_bounds(row) == (0.0, 10.0)


def test_bounds_are_exact_for_one_call_and_narrow_the_open_bucket() -> None:
    assert duration_bounds(row_of([12.0])) == (12.0, 12.0)
    assert percentile(row_of([20000.0]), 99) == 20000.0
    # 10 calls of 1 ms and one of 30 s: the slowest is at most the sum less the others' lower edges (0).
    row = row_of([1.0] * 10 + [30000.0])
    fastest, slowest = duration_bounds(row) or (0, 0)
    assert fastest == 0.0 and slowest == 30010.0
    assert 10000 <= (percentile(row, 99) or 0) <= slowest


def test_empty_histogram() -> None:
    assert percentile(RollupRow(()), 50) is None and duration_bounds(RollupRow(())) is None


durations = st.one_of(st.sampled_from([0.0, 5.0, 5.001, 10.0, 250.0, 10000.0, 10000.5]), st.floats(0, 30000))
specs = st.lists(st.tuples(st.sampled_from(("search", "fetch")), durations, st.booleans()), max_size=30)


def stats_ok(out: dict[str, Any], values: list[float]) -> None:
    assert out["totalCalls"] == len(values)
    if not values:
        assert out["minDurationMs"] is None and out["p95DurationMs"] is None
        return
    assert out["avgDurationMs"] == round(sum(values) / len(values), 2)
    assert out["minDurationMs"] <= min(values) + 0.01
    assert out["maxDurationMs"] >= max(values) - 0.01
    ordered = sorted(values)
    for p in (50, 95, 99):
        # the nearest-rank value's bucket bounds the estimate
        true = ordered[max(math.ceil(p / 100 * len(values)) - 1, 0)]
        i = naive_bucket(true)
        assert EDGES[i] - 0.01 <= out[f"p{p}DurationMs"] <= min(EDGES[i + 1], out["maxDurationMs"]) + 0.01


@settings(max_examples=25, deadline=None)
@given(specs)
def test_latency_reports_match_the_facts(calls: list[tuple[str, float, bool]]) -> None:
    with world(NOW) as w:
        k = w.key("alice")
        w.facts(
            [
                CallFact(NOW - 60, k.key_hash, tool, "default", "" if ok else "rate_limited", duration_ms=d)
                for tool, d, ok in calls
            ]
        )
        admitted = [(tool, d) for tool, d, ok in calls if ok]  # denied calls' durations are not counted
        out = w.run("latency", limit=100)
        stats_ok(out["summary"], [d for _, d in admitted])
        for t in out["byTool"]:
            stats_ok(t, [d for tool, d in admitted if tool == t["tool"]])
        assert {t["tool"] for t in out["byTool"]} == {tool for tool, _ in admitted}
        avgs = [t["avgDurationMs"] for t in out["byTool"]]
        assert avgs == sorted(avgs, reverse=True)
        assert [(e["name"], e["totalCalls"]) for e in out["byKey"]] == ([("alice", len(admitted))] if admitted else [])

        dist = w.run("response-time-distribution")
        expected: dict[int, int] = {}
        for _, d in admitted:
            expected[naive_bucket(d)] = expected.get(naive_bucket(d), 0) + 1
        assert [(b["fromMs"], b["count"]) for b in dist["buckets"]] == [
            (EDGES[i], n) for i, n in sorted(expected.items())
        ]
        assert dist["summary"]["totalRequests"] == len(admitted)
        assert sum(b["count"] for b in dist["buckets"]) == len(admitted)
