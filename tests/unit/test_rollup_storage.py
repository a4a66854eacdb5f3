"""SQLite rollups: the backfill of a state file from before the rollups, the planner's choices (each report's
usual query reads a small level), and rotation inside the store's transaction."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from paygate.core.records import KeyRecord, UsageEvent
from paygate.store import sqlite as sqlite_module
from paygate.store import sqlite_rollups
from paygate.store.rollups import HOUR, CallFact, RollupQuery, RollupRow, fold
from paygate.store.schema import MIGRATIONS
from paygate.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0
H0 = int(T0 // HOUR)


def _key(h: str, namespace: str = "default") -> KeyRecord:
    return KeyRecord(h, "pg_test", h[-4:], f"name-{h}", 100, T0, namespace=namespace)


def _usage(key: KeyRecord, tool: str, credits: int, ts: float, allowed: bool, reason: str | None) -> UsageEvent:
    return UsageEvent(ts, key.key_hash, key.masked, key.name, tool, credits, allowed, reason, key.namespace)


def test_a_state_file_from_before_the_rollups_is_backfilled_from_its_usage_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS[:4])  # the schema before the rollups
    old = SQLiteStore(path)
    old.open()
    alice, bob = _key("halice"), _key("hbob0", namespace="prod")
    for k in (alice, bob):
        old.create_key(k)
    events = [
        _usage(alice, "search", 3, T0 + 10, True, None),
        _usage(alice, "search", 2, T0 + 20, True, None),
        _usage(alice, "fetch", 0, T0 + 30, False, "insufficient_credits"),
        _usage(bob, "search", 0, T0 + 3 * HOUR, True, "shadow:rate_limited"),
        _usage(bob, "write", 5, T0 + 30 * HOUR, True, None),
        _usage(bob, "write", 0, T0 + 30 * HOUR + 1, False, None),
    ]
    for e in events:
        old.record_denial(e) if not e.allowed or e.deny_reason else old.charge(e.key_hash, e.credits, e)
    old.close()
    assert "call_rollup" not in {r[0] for r in _tables(path)}

    monkeypatch.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS)
    store = SQLiteStore(path)
    store.open()
    try:
        facts = [
            CallFact(T0 + 10, "halice", "search", "default", "", credits=3),
            CallFact(T0 + 20, "halice", "search", "default", "", credits=2),
            CallFact(T0 + 30, "halice", "fetch", "default", "insufficient_credits"),
            CallFact(T0 + 3 * HOUR, "hbob0", "search", "prod", "shadow:rate_limited"),
            CallFact(T0 + 30 * HOUR, "hbob0", "write", "prod", "", credits=5),
            CallFact(T0 + 30 * HOUR + 1, "hbob0", "write", "prod", "unknown"),
        ]
        for by in [(), ("tool",), ("key", "reason"), ("hour", "key", "tool"), ("day", "namespace"), ("key",)]:
            for since in (None, H0 + 2):
                q = RollupQuery(by, since_hour=since)
                assert _normal(store.rollups.query(q)) == _normal(fold(facts, q)), q
        # and it goes on from there
        later = CallFact(T0 + 31 * HOUR, "halice", "search", "default", "", credits=1, duration_ms=30.0)
        store.rollups.record([later])
        assert _normal(store.rollups.query(RollupQuery(("key",)))) == _normal(
            fold([*facts, later], RollupQuery(("key",)))
        )
    finally:
        store.close()


def test_the_per_key_level_gains_its_timings_on_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Migration 6 rebuilds `rollup_key` with durations and the latency histogram from `call_rollup`."""
    path = tmp_path / "v5.db"
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS[:5])  # the rollups, per-key counts only
    # and the writes of that version, to match: rollup_key without its timings
    v5 = [replace(lv, timing=False) if lv.name == "rollup_key" else lv for lv in sqlite_rollups.LEVELS]
    monkeypatch.setattr(
        sqlite_rollups, "_WRITES", [*(sqlite_rollups._add_batch(lv) for lv in v5), sqlite_rollups._CLEAR]
    )
    old = SQLiteStore(path)
    old.open()
    facts = [
        CallFact(T0 + 10, "ka", "search", "default", "", credits=3, duration_ms=7.5),
        CallFact(T0 + 20, "ka", "fetch", "default", "", credits=2, failed=True, duration_ms=3000.0),
        CallFact(T0 + 5 * HOUR, "ka", "fetch", "default", "rate_limited"),
        CallFact(T0 + 30 * HOUR, "kb", "write", "prod", "", credits=5, refunded=1, duration_ms=120.25),
        CallFact(T0 + 31 * HOUR, None, "write", "prod", "", duration_ms=40.0),
    ]
    old.rollups.record(facts)
    old.close()

    monkeypatch.undo()
    store = SQLiteStore(path)
    store.open()
    try:
        for by in [("key",), ("key", "reason"), ("key", "namespace")]:
            query = RollupQuery(by)
            assert store.rollups.plan(query)[0].level.name == "rollup_key"
            assert _normal(store.rollups.query(query)) == _normal(fold(facts, query)), query
    finally:
        store.close()


def _tables(path: Path) -> list[tuple[str]]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return list(db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    finally:
        db.close()


def _normal(rows: list[RollupRow]) -> dict[object, tuple[object, ...]]:
    return {
        r.group: (r.calls, r.allowed, r.denied, r.failed, r.credits, r.refunded, r.duration_ms, *r.latency)
        for r in rows
    }


@pytest.mark.parametrize(
    ("query", "tables"),
    [
        (RollupQuery(("tool",)), ["rollup_tool"]),
        (RollupQuery(("day",)), ["rollup_day_ns"]),
        (RollupQuery(("hour",)), ["rollup_hour_ns"]),
        (RollupQuery(("namespace",)), ["rollup_tool"]),
        (RollupQuery(("reason",)), ["rollup_tool"]),
        (RollupQuery(("key",), timing=False), ["rollup_key"]),
        (RollupQuery(("key",)), ["rollup_key"]),  # keys' latency over all history (migration 6)
        (RollupQuery(("key",), since_hour=H0 + 24 * 60), ["call_rollup"]),  # over a range: the finest level
        (RollupQuery(("key", "tool"), timing=False), ["rollup_key_tool"]),
        (RollupQuery(("key", "reason"), timing=False), ["rollup_key"]),
        (RollupQuery(("tool", "reason")), ["rollup_tool"]),
        (RollupQuery(("hour", "key"), since_hour=H0 + 24 * 60), ["call_rollup"]),
        (RollupQuery(("tool",), since_hour=H0 + 24 * 60 + 5), ["rollup_day", "rollup_hour"]),
        (RollupQuery(("hour",), since_hour=H0 + 24 * 80), ["rollup_hour_ns"]),
        (RollupQuery(("key",), since_hour=H0 + 24 * 60 + 5, timing=False), ["rollup_key_day", "call_rollup"]),
        (RollupQuery(("tool",), key_hash="k1", timing=False), ["rollup_key_tool"]),
        (RollupQuery(("hour",), key_hash="k1", since_hour=H0 + 24 * 80), ["call_rollup"]),
    ],
)
def test_the_usual_queries_read_small_levels(query: RollupQuery, tables: list[str]) -> None:
    store = SQLiteStore()
    store.open()
    try:
        store.rollups.record(
            [CallFact(T0, "k1", "t", "default", ""), CallFact(T0 + 90 * 86400, "k1", "t", "default", "")]
        )
        assert [p.level.name for p in store.rollups.plan(query)] == tables  # type: ignore[attr-defined]
    finally:
        store.close()


def test_a_failed_rotation_leaves_the_rollups_as_they_were(monkeypatch: pytest.MonkeyPatch) -> None:
    """`rekey` runs inside the store's rotation transaction: when the rotation fails after it, no rollup row has
    moved; when it succeeds, every level names the new key."""
    store = SQLiteStore()
    store.open()
    try:
        store.create_key(_key("hold0"))
        store.rollups.record([CallFact(T0, "hold0", "t", "default", "", credits=2)])
        real = store.rollups.rekey

        def moved_then_failed(old_hash: str, new_hash: str) -> None:
            real(old_hash, new_hash)
            raise RuntimeError("disk full")

        monkeypatch.setattr(store.rollups, "rekey", moved_then_failed)
        with pytest.raises(RuntimeError):
            store.rekey("hold0", _key("hnew0"))
        by_key = RollupQuery(("key",))
        assert [(r.group, r.calls) for r in store.rollups.query(by_key)] == [(("hold0",), 1)]
        monkeypatch.setattr(store.rollups, "rekey", real)
        store.rekey("hold0", _key("hnew1"))
        for level in ("call_rollup", "rollup_key_day", "rollup_key", "rollup_key_tool"):
            assert [r[0] for r in store.db.execute(f"SELECT DISTINCT key_hash FROM {level}")] == ["hnew1"]
    finally:
        store.close()
