"""SQLiteStore.charge_deferred: decided at once in memory, committed once per event-loop pass."""

from __future__ import annotations

import asyncio
import time

import pytest

from paygate.core.records import UsageEvent
from paygate.store.base import ChargeNotRecorded
from paygate.store.sqlite import SQLiteStore


def event(n: int) -> UsageEvent:
    return UsageEvent(time.time(), "h", "pg_…wxyz", "k", "echo", 1, True, request_id=f"req_{n}")


def stored_credits(s: SQLiteStore) -> int:
    return int(s.db.execute("SELECT credits FROM keys WHERE key_hash = 'h'").fetchone()[0])


async def test_one_pass_of_charges_is_one_commit_and_never_overspends(store: SQLiteStore) -> None:
    results = [store.charge_deferred("h", 1, event(n)) for n in range(12)]
    assert [r.ok for r, _ in results] == [True] * 10 + [False] * 2  # decided at once, in order
    assert [fut is None for _, fut in results] == [False] * 10 + [True] * 2
    assert store.get_key("h").credits == 0  # type: ignore[union-attr]
    assert stored_credits(store) == 10  # nothing written yet
    await asyncio.gather(*(fut for _, fut in results if fut is not None))
    assert stored_credits(store) == 0
    assert [e.balance_after for e in store.ledger("h") if e.kind == "charge"] == list(range(9, -1, -1))
    assert [e.request_id for e in store.query_usage()] == [f"req_{n}" for n in range(10)]
    row = store.db.execute("SELECT total_spent, total_calls FROM keys WHERE key_hash = 'h'").fetchone()
    assert tuple(row) == (10, 10)


async def test_a_failed_commit_undoes_the_batch_and_tells_every_caller(store: SQLiteStore) -> None:
    store.db.execute("CREATE TRIGGER full BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    pending = [store.charge_deferred("h", 3, event(n))[1] for n in range(3)]
    assert store.get_key("h").credits == 1  # type: ignore[union-attr]
    for fut in pending:
        assert fut is not None
        with pytest.raises(ChargeNotRecorded, match="disk full"):
            await fut
    record = store.get_key("h")
    assert record is not None and (record.credits, record.total_spent, record.total_calls) == (10, 0, 0)
    assert stored_credits(store) == 10


async def test_other_writes_flush_pending_charges_first(store: SQLiteStore) -> None:
    _, fut = store.charge_deferred("h", 4, event(1))
    assert store.topup("h", 5, "more").balance == 11  # 10 - 4 + 5: the charge went first
    assert fut is not None and fut.done() and fut.exception() is None
    assert stored_credits(store) == 11
    assert [(e.kind, e.balance_after) for e in store.ledger("h")][-2:] == [("charge", 6), ("topup", 11)]


def test_outside_an_event_loop_it_is_a_plain_charge(store: SQLiteStore) -> None:
    result, fut = store.charge_deferred("h", 2, event(1))
    assert result.ok and fut is None and stored_credits(store) == 8
