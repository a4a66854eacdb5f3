"""`migrate-store` copies the call rollups (in-process: `migrate` / `run_migrate`, on the real redis-server of the
`redis_url` fixture, so e2e): SQLite -> Redis -> SQLite answers every query shape as the source did, timings
included, a rotated key's history following it; a dry run counts and writes nothing; a copy that lost a row is
named and exits 1."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from paygate.core.records import KeyRecord
from paygate.store.base import Store
from paygate.store.redis_backend.history import RedisHistory
from paygate.store.redis_backend.store import RedisStore
from paygate.store.rollups import HOUR, CallFact, RollupQuery, RollupRow, fold
from paygate.store.sqlite import SQLiteStore
from paygate.store_migration import migrate, run_migrate

T0 = 1_700_000_000.0  # not on a day boundary
H0 = int(T0 // HOUR)
TOOLS = ("search", "fetch", "write")
REASONS = ("", "", "", "shadow", "insufficient_credits", "rate_limited")
DURATIONS = (0.0, 3.0, 7.5, 40.0, 120.25, 999.0, 20000.0)  # exact in binary: sums do not depend on order
SHAPES = [
    RollupQuery(by)
    for by in (("key",), ("tool",), ("hour",), ("day",), ("reason",), ("namespace",), ("hour", "key"), ())
] + [
    RollupQuery(("day", "key", "tool")),
    RollupQuery(("tool",), key_hash="kd"),  # the rotated key's successor: its history and its own
    RollupQuery(("hour",), key_hash="kb", since_hour=H0 + 5, until_hour=H0 + 40),
    RollupQuery(("key", "reason"), since_hour=H0 + 30, tool="search"),
    RollupQuery(("day", "namespace"), since_hour=(H0 // 24 + 1) * 24, until_hour=(H0 // 24 + 2) * 24 - 1),
]


def facts(n: int, seed: int = 7) -> list[CallFact]:
    """Calls over three days, four keys and no key, three tools, two namespaces; denied, failed, timed."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        reason = rnd.choice(REASONS)
        out.append(
            CallFact(
                T0 + rnd.randrange(72 * HOUR),
                rnd.choice(("ka", "kb", "kc", "kc", None)),
                rnd.choice(TOOLS),
                rnd.choice(("default", "prod")),
                reason,
                credits=0 if reason and reason != "shadow" else rnd.randrange(4),
                refunded=rnd.randrange(2),
                failed=not reason and rnd.random() < 0.1,
                duration_ms=rnd.choice(DURATIONS),
            )
        )
    return out


def normal(rows: Sequence[RollupRow], timing: bool) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    out = {}
    for r in rows:
        assert r.group not in out and r.calls > 0
        out[r.group] = (r.calls, r.allowed, r.denied, r.failed, r.credits, r.refunded)
        if timing:
            out[r.group] += (r.duration_ms, *r.latency)
    return out


def assert_same_answers(store: Store, expected: list[CallFact]) -> None:
    for shape in SHAPES:
        for q in (replace(shape, timing=True), replace(shape, timing=False)):
            assert normal(store.rollups.query(q), q.timing) == normal(fold(expected, q), q.timing), q


def build_sqlite(path: Path, recorded: list[CallFact]) -> list[CallFact]:
    """Keys ka, kb, kc (ka rotated to kd halfway), the facts recorded in batches; the facts as the store should
    answer them (ka's are kd's)."""
    store = SQLiteStore(path)
    store.open()
    try:
        for i, h in enumerate(("ka", "kb", "kc")):
            store.create_key(KeyRecord(h, "pg_", f"000{i}", f"key {h}", 100, T0))
        half = len(recorded) // 2
        for start in range(0, half, 300):
            store.rollups.record(recorded[start : min(start + 300, half)])
        store.rekey("ka", KeyRecord("kd", "pg_", "0003", "key ka", 0, T0 + 1))
        later = [replace(f, key_hash="kd") if f.key_hash == "ka" else f for f in recorded[half:]]
        store.rollups.record(later)
    finally:
        store.close()
    return [replace(f, key_hash="kd") if f.key_hash == "ka" else f for f in recorded]


class Echo:
    """What the command prints (its `echo`), line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str, err: bool = False) -> None:
        self.lines.append(text)


def opened_sqlite(path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    store.open()
    return store


def opened_redis(url: str, prefix: str) -> RedisStore:
    store = RedisStore(url, prefix=prefix)
    store.open()
    return store


def test_rollups_go_to_redis_and_back_answering_every_query_alike(redis_url: str, tmp_path: Path) -> None:
    recorded = facts(1500)  # over a thousand calls: the source is read in several ranges of hours
    original, back = tmp_path / "rollups.db", tmp_path / "rollups-back.db"
    expected = build_sqlite(original, recorded)
    source = opened_sqlite(original)
    try:
        assert_same_answers(source, expected)  # the source itself, as the contract says
    finally:
        source.close()

    outcome = migrate(str(original), redis_url, "rollups", dry_run=False)
    assert outcome.mismatches == [] and outcome.tally is not None
    assert outcome.tally.rollups.calls == len(recorded)
    rows = outcome.tally.rollups.rows
    assert rows == len(fold(expected, RollupQuery(("hour", "key", "tool", "namespace", "reason")))) > 1000

    on_redis = opened_redis(redis_url, "rollups")
    try:
        assert_same_answers(on_redis, expected)
        assert on_redis.rollups.query(RollupQuery(("tool",), key_hash="ka")) == []  # the old hash holds nothing
    finally:
        on_redis.close()

    outcome = migrate(redis_url, str(back), "rollups", dry_run=False)
    assert outcome.mismatches == [] and outcome.tally is not None
    assert (outcome.tally.rollups.rows, outcome.tally.rollups.calls) == (rows, len(recorded))
    returned = opened_sqlite(back)
    try:
        assert_same_answers(returned, expected)
        # the finest level holds the same rows as the original file's, timings included
        base = RollupQuery(("hour", "key", "tool", "namespace", "reason"))
        original_store = opened_sqlite(original)
        try:
            assert normal(returned.rollups.query(base), True) == normal(original_store.rollups.query(base), True)
        finally:
            original_store.close()
    finally:
        returned.close()


def test_rows_of_a_rotated_keys_old_hash_follow_it_into_redis(redis_url: str, tmp_path: Path) -> None:
    """A call fed after its key was rotated can sit under the old hash in SQLite: the copy files it under the
    successor (as Redis reads it anyway), and the check agrees."""
    path = tmp_path / "late.db"
    store = SQLiteStore(path)
    store.open()
    try:
        store.create_key(KeyRecord("ka", "pg_", "0001", "key ka", 10, T0))
        store.rollups.record([CallFact(T0, "ka", "search", "default", "", credits=1, duration_ms=3.0)])
        store.rekey("ka", KeyRecord("kz", "pg_", "0002", "key ka", 0, T0 + 1))
        store.rollups.record([CallFact(T0 + 5, "ka", "search", "default", "", credits=2, duration_ms=7.5)])
    finally:
        store.close()
    outcome = migrate(str(path), redis_url, "late", dry_run=False)
    assert outcome.mismatches == [], outcome.mismatches
    on_redis = opened_redis(redis_url, "late")
    try:
        (row,) = on_redis.rollups.query(RollupQuery(("key",)))
        assert (row.group, row.calls, row.credits, row.duration_ms) == (("kz",), 2, 3, 10.5)
    finally:
        on_redis.close()


def test_a_dry_run_counts_the_rollups_and_writes_nothing(redis_url: str, tmp_path: Path) -> None:
    path = tmp_path / "dry.db"
    recorded = facts(200, seed=3)
    expected = build_sqlite(path, recorded)
    before = path.read_bytes()
    echo = Echo()
    assert run_migrate(str(path), redis_url, prefix="dry-rollups", dry_run=True, as_json=True, echo=echo) == 0
    found = json.loads(echo.lines[0])["found"]
    rows = len(fold(expected, RollupQuery(("hour", "key", "tool", "namespace", "reason"))))
    assert (found["rollupRows"], found["rollupCalls"]) == (rows, 200)
    with redis.Redis.from_url(redis_url) as client:
        assert list(client.scan_iter(match="{dry-rollups}:*")) == []
    assert path.read_bytes() == before

    # and from Redis into a file not there yet: counted, nothing created
    assert migrate(str(path), redis_url, "dry-rollups-2", dry_run=False).mismatches == []
    fresh = tmp_path / "fresh.db"
    echo.lines.clear()
    assert run_migrate(redis_url, str(fresh), prefix="dry-rollups-2", dry_run=True, as_json=False, echo=echo) == 0
    assert f"call rollups: {rows} hourly rows (200 calls)" in echo.lines[0] and not fresh.exists()


def test_a_rollup_row_lost_on_the_way_is_named_and_exits_1(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lossy.db"
    build_sqlite(path, facts(50, seed=5))
    real = RedisHistory.write_rollups
    dropped: list[RollupRow] = []

    def lossy(self: RedisHistory, rows: Sequence[RollupRow]) -> None:
        if not dropped:
            dropped.append(rows[0])
        real(self, [r for r in rows if r is not dropped[0]])

    monkeypatch.setattr(RedisHistory, "write_rollups", lossy)
    echo = Echo()
    assert run_migrate(str(path), redis_url, prefix="lossy", dry_run=False, as_json=True, echo=echo) == 1
    report = json.loads(echo.lines[0])
    assert report["verified"] is False
    (lost,) = dropped
    key, tool = lost.group[1], lost.group[2]
    named = [m for m in report["mismatches"] if m.startswith("rollups of ")]
    label = "calls without a key:" if key is None else f"key {key}…:"
    assert any(label in m for m in named) and any(f"tool {tool}:" in m for m in named), named
    assert any(m.startswith("rollups of all calls:") for m in named), named


def test_a_sqlite_file_holding_only_rollups_is_not_empty(redis_url: str, tmp_path: Path) -> None:
    source, target = tmp_path / "src.db", tmp_path / "only-rollups.db"
    build_sqlite(source, facts(20, seed=9))
    assert migrate(str(source), redis_url, "into-full", dry_run=False).mismatches == []
    store = SQLiteStore(target)
    store.open()
    try:
        store.rollups.record([CallFact(T0, None, "search", "default", "")])
    finally:
        store.close()
    echo = Echo()
    code = run_migrate(redis_url, str(target), prefix="into-full", dry_run=False, as_json=True, echo=echo)
    assert code == 1 and "call rollup rows" in json.loads(echo.lines[0])["error"]
