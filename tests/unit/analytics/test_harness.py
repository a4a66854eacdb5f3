"""The harness the report property tests use, checked once on the example report."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from paygate.store.rollups import CallFact
from tests.unit.analytics.harness import world

NOW = 1_790_000_000.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.sampled_from(["a", "b", "c"]), st.booleans()), max_size=40))
def test_system_overview_counts_every_fact(calls: list[tuple[int, str, bool]]) -> None:
    with world(NOW) as w:
        k = w.key("x", credits=10, total_spent=7)
        w.facts(
            [
                CallFact(NOW - age * 60, k.key_hash, tool, "default", "" if ok else "rate_limited")
                for age, tool, ok in calls
            ]
        )
        out = w.run("system-overview")
        assert out["activity"]["totalCalls"] == len(calls)
        assert out["activity"]["uniqueTools"] == len({tool for _, tool, _ in calls})
        assert out["credits"] == {
            "totalAllocated": 17,
            "totalSpent": 7,
            "totalRemaining": 10,
            "utilizationPercent": round(100 * 7 / 17, 2),
        }
