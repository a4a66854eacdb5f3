"""CallRollups: for random batches of call facts, every query (any dimensions, any range of hours, any
filters) answers what `fold` computes from the same facts, and its distinct keys and tools per group what
`fold_distinct` does, on every implementation, whichever levels the store reads; a rotated key's history is
the new key's (through the store's real rotation, `store.rekey`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygate.store.base import Store
from paygate.store.rollup_counts import fold_distinct
from paygate.store.rollups import DIMS, HOUR, CallFact, Distinct, RollupQuery, RollupRow, fold
from tests.unit.store_contract.conftest import IMPLEMENTATIONS, key

T0 = 1_700_000_000.0  # not on a day boundary: ranges cross days at odd hours
H0 = int(T0 // HOUR)
HOURS = 24 * 9
KEYS = ("ka", "kb", "kc")
TOOLS = ("search", "fetch", "write")
NAMESPACES = ("default", "prod")
REASONS = ("", "", "shadow", "insufficient_credits", "rate_limited")
DURATIONS = (0.0, 3.0, 7.5, 40.0, 120.25, 999.0, 20000.0)  # exact in binary: sums do not depend on order

FACT = st.builds(
    CallFact,
    ts=st.integers(0, HOURS * HOUR - 1).map(lambda s: T0 + s),
    key_hash=st.sampled_from((*KEYS, None)),
    tool=st.sampled_from(TOOLS),
    namespace=st.sampled_from(NAMESPACES),
    reason=st.sampled_from(REASONS),
    credits=st.integers(0, 5),
    refunded=st.integers(0, 2),
    failed=st.booleans(),
    duration_ms=st.sampled_from(DURATIONS),
)
HOUR_BOUND = st.one_of(st.none(), st.integers(H0 - 2, H0 + HOURS + 2))
QUERY = st.builds(
    RollupQuery,
    by=st.lists(st.sampled_from(DIMS), unique=True, max_size=3).map(tuple),
    since_hour=HOUR_BOUND,
    until_hour=HOUR_BOUND,
    key_hash=st.one_of(st.none(), st.sampled_from(KEYS)),
    tool=st.one_of(st.none(), st.sampled_from(TOOLS)),
    namespace=st.one_of(st.none(), st.sampled_from(NAMESPACES)),
)
# The same day-aligned and report-shaped ranges every time, besides the random ones.
SHAPES = [
    RollupQuery(by)
    for by in (("tool",), ("hour",), ("day",), ("namespace",), ("reason",), ("key",), ("hour", "key"), ())
] + [
    RollupQuery(("key", "tool"), since_hour=H0 + 30, until_hour=H0 + 24 * 5 + 7),
    RollupQuery(("tool", "reason"), since_hour=H0 + 3),
    RollupQuery(("key", "reason"), until_hour=H0 + 24 * 4 - 1),
    RollupQuery(("day", "key"), since_hour=(H0 // 24 + 2) * 24, until_hour=(H0 // 24 + 5) * 24 - 1),
    RollupQuery(("day", "tool"), since_hour=H0 + 30, until_hour=H0 + 24 * 5 + 7),  # day table and edge hours
    RollupQuery(("hour", "namespace"), since_hour=H0 + 20),
]


def normal(rows: Sequence[RollupRow], timing: bool = True) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    out = {}
    for r in rows:
        assert r.group not in out, f"group {r.group} twice"
        assert r.calls > 0
        out[r.group] = (r.calls, r.allowed, r.denied, r.failed, r.credits, r.refunded)
        if timing:
            out[r.group] += (r.duration_ms, *r.latency)
    return out


def assert_answers(store: Store, facts: Sequence[CallFact], queries: Sequence[RollupQuery]) -> None:
    """Each query as asked (with timings), and without timings (the counts must still be exact); and the
    distinct keys and tools per group (any call, admitted calls, per hour of the day, among some keys)."""
    for asked in queries:
        for q in (replace(asked, timing=True), replace(asked, timing=False)):
            assert normal(store.rollups.query(q), q.timing) == normal(fold(facts, q), q.timing), q
        for of in ("key", "tool"):
            assert_counts(store, facts, asked, of)


def assert_counts(store: Store, facts: Sequence[CallFact], asked: RollupQuery, of: Distinct) -> None:
    if of in asked.by:
        with pytest.raises(ValueError):
            store.rollups.count_distinct(asked, of)
        return
    for admitted, daily in ((False, False), (True, False), (False, True), (True, True)):
        if daily and "hour" not in asked.by:
            continue
        counted = store.rollups.count_distinct(asked, of, admitted=admitted, daily=daily)
        assert counted == fold_distinct(facts, asked, of, admitted=admitted, daily=daily), (asked, of, admitted, daily)
    some = {f.key_hash for f in facts[::2] if f.key_hash} | {"no-such-key"}  # only some keys count
    assert store.rollups.count_distinct(asked, of, among=some) == fold_distinct(facts, asked, of, among=some), asked
    assert store.rollups.count_distinct(asked, of, among=()) == {}


@contextmanager
def fresh_store(name: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A new empty store per hypothesis example (a fresh directory, and so a fresh Redis prefix)."""
    implementation = IMPLEMENTATIONS[name]
    url = str(request.getfixturevalue("redis_url")) if implementation.server else ""
    directory = Path(tempfile.mkdtemp(prefix="paygate_rollups_"))
    store = implementation.make(directory, url)
    store.open()
    try:
        yield store
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)


def batches(facts: list[CallFact], cuts: list[int]) -> list[list[CallFact]]:
    points = sorted({0, len(facts), *(c % (len(facts) + 1) for c in cuts)})
    return [facts[a:b] for a, b in pairwise(points)]


EVERY = pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.e2e] if i.server else []) for n, i in sorted(IMPLEMENTATIONS.items())]
)


@EVERY
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    facts=st.lists(FACT, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    queries=st.lists(QUERY, min_size=1, max_size=12),
)
def test_every_query_equals_the_fold_of_the_facts(
    name: str, facts: list[CallFact], cuts: list[int], queries: list[RollupQuery], request: pytest.FixtureRequest
) -> None:
    with fresh_store(name, request) as store:
        for batch in batches(facts, cuts):
            store.rollups.record(batch)
        assert_answers(store, facts, [*queries, *SHAPES])


@EVERY
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.lists(FACT, max_size=25),
    after=st.lists(FACT, max_size=10),
    queries=st.lists(QUERY, min_size=1, max_size=8),
)
def test_a_rotated_keys_history_is_the_new_keys(
    name: str, before: list[CallFact], after: list[CallFact], queries: list[RollupQuery], request: pytest.FixtureRequest
) -> None:
    """`ka` is rotated to a new key between two batches (twice: a rotation of a rotation); the answers are those
    of the facts with every old hash replaced by the newest."""
    with fresh_store(name, request) as store:
        records = {h: key() for h in KEYS}
        for record in records.values():
            store.create_key(record)
        current = {h: r.key_hash for h, r in records.items()}
        recorded: list[CallFact] = []
        retired: list[str] = []
        for batch, rotate in ((before, True), (after[:5], True), (after[5:], False)):
            facts = [replace(f, key_hash=current[f.key_hash]) if f.key_hash else f for f in batch]
            store.rollups.record(facts)
            recorded += facts
            if rotate:
                fresh = key()
                store.rekey(current["ka"], fresh)
                retired.append(current["ka"])
                current["ka"] = fresh.key_hash

        newest = current["ka"]
        expected = [replace(f, key_hash=newest) if f.key_hash in retired else f for f in recorded]
        queries = [_renamed(q, current) for q in [*queries, *SHAPES]]
        assert_answers(store, expected, queries)
        for old in retired:  # the old hashes hold nothing any more
            assert store.rollups.query(RollupQuery(("tool",), key_hash=old)) == []


def _renamed(query: RollupQuery, names: dict[str, str]) -> RollupQuery:
    if query.key_hash is None:
        return query
    return RollupQuery(query.by, query.since_hour, query.until_hour, names[query.key_hash], query.tool, query.namespace)
