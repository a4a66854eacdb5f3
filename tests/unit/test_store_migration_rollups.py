"""store_migration_rollups without Redis: the source is read in ranges of hours that cover every hour with calls
exactly once, whatever the range size; a copy between two SQLite stores answers as its source; the check names
what differs."""

from __future__ import annotations

from itertools import pairwise

import pytest

from paygate.store.rollups import BASE, HOUR, CallFact, RollupQuery
from paygate.store.sqlite import MEMORY, SQLiteStore
from paygate.store_migration_rollups import copy_rollups, hour_ranges, verify_rollups

T0 = 1_700_000_000.0


@pytest.fixture
def store(memory_store: SQLiteStore) -> SQLiteStore:
    return memory_store


def spread(n: int) -> list[CallFact]:
    """n calls over hours with gaps, several per hour, two keys and none, a denial, a failure."""
    return [
        CallFact(
            T0 + (i * 7 % 50) * HOUR + i,
            ("ka", "kb", None)[i % 3],
            ("search", "fetch")[i % 2],
            "default",
            "insufficient_credits" if i % 11 == 0 else "",
            credits=i % 4,
            failed=i % 13 == 0,
            duration_ms=float(i % 5) * 2.5,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("size", [1, 3, 10, 1000])
def test_the_ranges_cover_every_hour_with_calls_once(store: SQLiteStore, size: int) -> None:
    store.rollups.record(spread(120))
    hours = sorted(int(r.group[0] or 0) for r in store.rollups.query(RollupQuery(("hour",))))
    ranges = list(hour_ranges(store.rollups, size))
    assert all(a <= b for a, b in ranges) and all(b < c for (_, b), (c, _) in pairwise(ranges))
    assert [h for h in hours if any(a <= h <= b for a, b in ranges)] == hours
    for a, b in ranges:  # at most `size` calls each, unless one hour holds more
        calls = sum(r.calls for r in store.rollups.query(RollupQuery((), since_hour=a, until_hour=b)))
        assert calls <= size or a == b
    assert list(hour_ranges(store.rollups, 10**9)) == [(hours[0], hours[-1])]


def test_a_copy_answers_as_its_source_and_a_difference_is_named(store: SQLiteStore) -> None:
    store.rollups.record(spread(300))
    into = SQLiteStore(MEMORY)
    into.open()
    try:
        read = copy_rollups(store.rollups, into.rollups.record_sums, {"ka": "kz"})
        assert read.calls == 300 and read.rows == len(store.rollups.query(RollupQuery(BASE)))
        assert verify_rollups(into.rollups, read) == []
        for by in (("key",), ("tool",), ("hour", "reason"), ("day",)):
            got = {r.group: (r.calls, r.credits, r.duration_ms, r.latency) for r in into.rollups.query(RollupQuery(by))}
            want = {
                tuple("kz" if g == "ka" else g for g in r.group): (r.calls, r.credits, r.duration_ms, r.latency)
                for r in store.rollups.query(RollupQuery(by))
            }
            assert got == want, by

        into.rollups.record([CallFact(T0, "kb", "write", "default", "", credits=2, duration_ms=1.0)])
        assert verify_rollups(into.rollups, read) == [
            "rollups of key kb…: calls/allowed/denied/failed/credits/refunded "
            f"{_slash(read.by_key['kb'], 2)} in the destination, the source had {_slash(read.by_key['kb'])}",
            "rollups of tool write: calls/allowed/denied/failed/credits/refunded 1/1/0/0/2/0 in the destination, "
            "the source had 0/0/0/0/0/0",
            "rollups of all calls: calls/allowed/denied/failed/credits/refunded "
            f"{_slash(read.overall, 2)} in the destination, the source had {_slash(read.overall)}",
            f"rollups of all calls: latency buckets {_bumped(read.latency)} and {read.duration_ms + 1:.3f} ms in the "
            f"destination, the source had {read.latency} and {read.duration_ms:.3f} ms",
        ]
    finally:
        into.close()


def _slash(counts: tuple[int, ...], credits: int = 0) -> str:
    """The counts as the check shows them; with `credits`, plus one allowed call of that many credits."""
    if credits:
        counts = (counts[0] + 1, counts[1] + 1, counts[2], counts[3], counts[4] + credits, counts[5])
    return "/".join(str(n) for n in counts)


def _bumped(latency: list[int]) -> list[int]:
    return [n + 1 if i == 0 else n for i, n in enumerate(latency)]
